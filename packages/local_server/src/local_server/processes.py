"""Child processes we start, tracked by PID: start, wait until healthy, stop; free ports.

One lifecycle for every child the local stack runs (the Prefect server, its reaper, the demo
partner API) and for the tests' own servers: each is started here, remembered by its PID
(and process group, when it has one of its own), and ended by that PID or group only, never
by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


class ChildFailed(RuntimeError):
    """A child exited or hung before it was healthy; the message is one line."""


def running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone meanwhile, or no /proc: trust the signal
    except OSError:
        return True


def parent_pids() -> dict[int, int]:
    """Each live process's parent, from /proc (Linux)."""
    out: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            out[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return out


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren...): what a command started,
    for a check that nothing of it outlived its stop."""
    children: dict[int, list[int]] = {}
    for child, parent in parent_pids().items():
        children.setdefault(parent, []).append(child)
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.add(child)
            todo.append(child)
    return out


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (not listen) the way uvicorn does, so a port check and the server agree."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(host: str, port: int) -> bool:
    try:
        bind_socket(host, port).close()
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for tests and ad-hoc runs)."""
    with bind_socket(host, 0) as sock:
        return int(sock.getsockname()[1])


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for this thread until the block ends (then they are delivered):
    a stop that must finish whole is not cut in the middle by a second Ctrl-C."""
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def end_group(pgid: int, timeout: float = 15.0, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group ``pgid``, then SIGKILL whatever is left after ``timeout``.
    A stopped group (SIGSTOP) is continued, so it gets its SIGTERM at once rather than after
    ``timeout``.

    With ``leader`` (the group's first process, our child) we wait on it, which also reaps
    it; without (the reaper, whose group is not its child) we poll the group until it is empty.
    """

    def gone() -> bool:
        if leader is not None:
            return leader.poll() is not None
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.1)
    # The leader may be gone while members of its group (uvicorn workers, services) are not.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if leader is not None:
        leader.wait(timeout=5)


@dataclass
class Child:
    """One child process, known by its PID (and its own process group if ``own_group``).

    Its output goes to ``log_path`` (appended) or, when there is none, to a temporary file
    kept so that a failure can quote the child's last line.
    """

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    log_path: Path | None = None
    own_group: bool = False
    quiet: bool = False  # discard output entirely (the reaper)
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _output: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        out: Any
        if self.quiet:
            out = subprocess.DEVNULL
        elif self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self._output = open(self.log_path, "ab")
        else:
            out = self._output = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_group,  # its own process group: we stop all it spawned
        )

    def last_line(self) -> str:
        """The child's last line of output ('' when there is none or it was discarded)."""
        if self.log_path is not None:
            try:
                text = self.log_path.read_bytes()[-8192:].decode(errors="replace")
            except OSError:
                return ""
        elif self._output is not None:
            self._output.seek(0)
            text = self._output.read().decode(errors="replace")
        else:
            return ""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    def wait_healthy(self, healthy: Callable[[], bool], timeout: float, poll: float = 0.2) -> float:
        """Block until ``healthy()``; seconds waited. ChildFailed if it exits or times out."""
        if self.proc is None:
            raise ChildFailed(f"{self.name} was not started")
        started = time.monotonic()
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ChildFailed(
                    f"{self.name} exited with code {code} before it was healthy: {self.last_line() or 'no output'}"
                )
            if healthy() and self.proc.poll() is None:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise ChildFailed(
                    f"{self.name} (pid {self.proc.pid}) not healthy after {timeout:.0f} s; "
                    f"last output: {self.last_line() or 'none'}"
                )
            time.sleep(poll)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (its group, if it has one), then SIGKILL after ``timeout``: this child only."""
        proc, self.proc = self.proc, None
        try:
            if proc is None or proc.poll() is not None:
                return
            if self.own_group:
                end_group(proc.pid, timeout, leader=proc)
                return
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        finally:
            if self._output is not None:
                self._output.close()
                self._output = None
