"""serve-all's own lifecycle beside the default one (test_control_plane runs serve-all on its
defaults as a new user meets it): prefect.toml names its server, a SIGKILL of the process that
started a local server leaves nothing, serve-all on SQLite serves a run, restarts a demo API
that died and leaves nothing when it is SIGKILLed itself, and a part it cannot restart makes
it stop everything and exit 1 with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from common.prefect_api import PROJECT_API_URL
from demo_systems.partner_api.process import answers
from local_server.processes import port_is_free, running
from support import (
    ROOT,
    SERVING,
    Stack,
    descendants,
    free_port,
    fresh_terminal_env,
    left_running,
    linked_data_dir,
    pids_with_arg,
    script,
    trigger,
    wait_final,
    wait_for_text,
)

pytestmark = pytest.mark.integration


def test_prefect_toml_names_the_server_serve_all_starts_by_default() -> None:
    import tomllib

    settings = tomllib.loads((ROOT / "prefect.toml").read_text())
    assert settings["api"]["url"] == PROJECT_API_URL


def test_a_killed_owner_leaves_no_server_or_postgres_behind(tmp_path: Path) -> None:
    """SIGKILL gives the process that started the local server no chance to stop it: the
    reaper beside the server ends the server's process group and its PostgreSQL."""

    port = free_port()
    home = tmp_path / "prefect"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from pathlib import Path\n"
            "from local_server.prefect_server import LocalPrefectServer\n"
            f"server = LocalPrefectServer(home=Path({str(home)!r}), port={port})\n"
            "server.start(); server.wait_healthy(120)\n"
            "print(server.pid, flush=True)\n"
            "sys.stdin.read()  # until the test kills us\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    group = postmaster = None
    try:
        assert owner.stdout is not None
        group = int(owner.stdout.readline())
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        assert running(group) and running(postmaster)
    finally:
        owner.kill()
        owner.wait(timeout=10)
    try:
        deadline = time.monotonic() + 60
        while running(group) or running(postmaster):
            assert time.monotonic() < deadline, "server or PostgreSQL still running 60 s after their owner died"
            time.sleep(0.5)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
    finally:  # ours: never leave them running, even when the test fails
        for pid in (group, postmaster):
            if pid is not None and running(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_all_on_sqlite_serves_a_run_and_a_sigkill_of_it_leaves_nothing(stack: Stack, tmp_path: Path) -> None:
    """`serve-all --server-db sqlite` (Prefect's own default store) serves a run to
    completion; then serve-all itself is SIGKILLed (an OOM kill gives it no chance to stop
    anything): every process it started ends anyway, and its port is freed."""
    from prefect.client.orchestration import SyncPrefectClient

    port = free_port()
    proc, env, log = _serve_all_on_sqlite(stack, tmp_path, port)
    data = Path(env["ETL_DATA_DIR"])
    api = f"http://127.0.0.1:{port}/api"
    started: set[int] = set()
    try:
        wait_for_text(log, SERVING, proc, timeout=180)
        started = descendants(proc.pid)
        assert (data / "prefect").is_dir() and not (data / "prefect" / "pgdata").exists(), "not on SQLite"
        assert list((data / "prefect").rglob("*.db")), "no SQLite database in the server's home"
        with SyncPrefectClient(api) as client:  # Prefect's own client: it retries a busy SQLite's 503s
            run = trigger(client, "ingest/local", tables=["customers"])
            state = wait_final(client, [run])[run].state_type.value
        assert state == "COMPLETED", log.read_text(errors="replace")[-3000:]
        # the demo API dies: the supervisor restarts it on its port, with one WARNING line
        first = _demo_api_pid(proc.pid)
        os.kill(first, signal.SIGKILL)
        wait_for_text(log, "died: restarting it", proc, timeout=60)
        demo_url = f"http://127.0.0.1:{env['ETL_DEMO_API_PORT']}"
        deadline = time.monotonic() + 60
        while not answers(demo_url):
            assert time.monotonic() < deadline, f"the demo API never came back:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        assert _demo_api_pid(proc.pid) != first
        started = descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert left_running(started, grace=60) == [], "a SIGKILL of serve-all left processes running"
        assert port_is_free("127.0.0.1", port), f"port {port} still taken after serve-all was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in started:  # ours: never leave them running, even when the test fails
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def _demo_api_pid(serve_all: int) -> int:
    """The demo partner API serve-all started (one of its descendants)."""
    pids = set(pids_with_arg(b"demo_systems.partner_api")) & descendants(serve_all)
    assert len(pids) == 1, pids
    return pids.pop()


def _serve_all_on_sqlite(
    stack: Stack, tmp_path: Path, port: int, errors: Path | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, str], Path]:
    """`serve-all --server-db sqlite` on ``port`` in a terminal with nothing exported, its own
    data folder and ports; its output in a log (its stderr in ``errors`` when given)."""
    env = dict(
        fresh_terminal_env(tmp_path / "home"),
        ETL_DATA_DIR=str(linked_data_dir(stack, tmp_path)),
        ETL_DEMO_API_PORT=str(free_port()),
        ETL_BOARD_PORT=str(free_port()),
    )
    log = tmp_path / "serve-all.log"
    with open(log, "wb") as out, open(errors or os.devnull, "wb") as err:
        proc = subprocess.Popen(
            [script("serve-all"), "--server-db", "sqlite", "--port", str(port)],
            stdout=out,
            stderr=err if errors else subprocess.STDOUT,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    return proc, env, log


def test_a_part_that_cannot_be_restarted_stops_serve_all_with_exit_1(stack: Stack, tmp_path: Path) -> None:
    """The demo API dies and its port is taken before the supervisor can restart it: serve-all
    says so in one line, stops everything it started (never a half-alive stack) and exits 1."""
    import socket

    errors = tmp_path / "serve-all.err"
    proc, env, log = _serve_all_on_sqlite(stack, tmp_path, free_port(), errors=errors)
    demo_port = int(env["ETL_DEMO_API_PORT"])
    started: set[int] = set()
    squatter = socket.socket()
    try:
        wait_for_text(log, SERVING, proc, timeout=180)
        started = descendants(proc.pid)
        os.kill(_demo_api_pid(proc.pid), signal.SIGKILL)
        deadline = time.monotonic() + 10  # take the port the moment the dead API lets it go
        while True:
            try:
                squatter.bind(("127.0.0.1", demo_port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the dead demo API's port never came free"
                time.sleep(0.01)
        squatter.listen()
        code = proc.wait(timeout=120)
        lines = errors.read_text(errors="replace").strip().splitlines()
        error_lines = [line for line in lines if line.startswith("error: ")]
        assert code == 1, (code, lines[-20:])
        assert len(error_lines) == 1, lines[-20:]
        assert error_lines[0].startswith("error: the demo partner API died and could not be restarted"), error_lines
        assert left_running(started, grace=60) == [], "serve-all gave up and left processes running"
    finally:
        squatter.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in started:  # ours: never leave them running, even when the test fails
            if running(pid):
                os.kill(pid, signal.SIGKILL)
