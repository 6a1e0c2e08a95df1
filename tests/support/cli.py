"""Running the workspace's console scripts as a user does: as processes, from the repository."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def script(name: str) -> str:
    """A console script of this workspace's environment (``uv run <name>`` without uv)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"console script {name} missing: run `uv sync`"
    return str(path)


IN_PROCESS = ("slots", "limits")  # the operator commands: one Typer root, slot_tools.cli.app


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a console script and return what the user saw (exit status, stdout, stderr).

    ``slots`` and ``limits`` in this process's own environment (no ``env``) run in-process
    through Typer's runner on the app their console scripts call: a Python start-up (about
    2 s of CPU) saved on each of some thirty calls. Their console-script path stays covered by
    every call that passes ``env`` and by the fresh-terminal test of serve-all's banner."""
    if env is None and args[0] in IN_PROCESS and "--watch" not in args:
        return _in_process(*args)
    return subprocess.run(
        [script(args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or dict(os.environ),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def _in_process(*args: str) -> subprocess.CompletedProcess[str]:
    from typer.testing import CliRunner

    from slot_tools.cli import app

    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a crash shows as itself, not as an exit status
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def stop_with_ctrl_c(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Stop a serve process we started the way a user does (SIGINT), killing it by PID only
    if it ignores that for ``timeout`` seconds."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for_text(path: Path, text: str, proc: subprocess.Popen | None, timeout: float = 180) -> None:
    """Block until the log file ``path`` of ``proc`` shows ``text``; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        assert proc is None or proc.poll() is None, f"exited early:\n{path.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} after {timeout:.0f} s:\n{path.read_text()[-3000:]}"
        time.sleep(0.5)


@dataclass
class CliRun:
    """A CLI process started now; :meth:`finish` waits and returns what the user saw."""

    args: tuple[str, ...]
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path
    started: float
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""

    @classmethod
    def start(cls, folder: Path, *args: str, env: dict[str, str]) -> CliRun:
        folder.mkdir(parents=True, exist_ok=True)
        out, err = folder / "stdout.txt", folder / "stderr.txt"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(
                [script(args[0]), *args[1:]], stdout=o, stderr=e, env=env, cwd=ROOT, stdin=subprocess.DEVNULL
            )
        run = cls(args, proc, out, err, time.monotonic())
        threading.Thread(target=run._clock, daemon=True).start()
        return run

    def _clock(self) -> None:
        """Note when the process ended (runs started together are finished one by one)."""
        self.proc.wait()
        self.seconds = time.monotonic() - self.started

    def finish(self, timeout: float = 240) -> CliRun:
        try:
            self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{' '.join(self.args)} still running after {timeout:.0f} s") from None
        deadline = time.monotonic() + 5
        while not self.seconds and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stdout = self.out_path.read_text(errors="replace")
        self.stderr = self.err_path.read_text(errors="replace")
        return self

    @property
    def code(self) -> int:
        return int(self.proc.returncode)

    @property
    def error_lines(self) -> list[str]:
        """The lines a user reads as the outcome: ``error: ...`` on stderr."""
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def describe(self) -> str:
        return f"{' '.join(self.args)} -> {self.code}\n{self.stdout[-1500:]}\n{self.stderr[-3000:]}"
