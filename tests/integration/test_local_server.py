"""The local Prefect server's own lifecycle, with real faults: a server left half-alive (its
PostgreSQL gone) is named and, when this data folder started it, replaced; a second Ctrl-C
during a stop never leaves the server running without its database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from common.prefect_api import ServerUnavailableError, not_ready
from local_server.postgres import stop_postmaster
from local_server.prefect_server import LocalPrefectServer
from support import ROOT, free_port, running

pytestmark = pytest.mark.integration

OWNER = """
import sys
from pathlib import Path
from local_server.prefect_server import LocalPrefectServer
server = LocalPrefectServer(home=Path(sys.argv[1]), port=int(sys.argv[2]))
server.start(); server.wait_healthy(120)
print(server.pid, flush=True)
if sys.stdin.readline().strip() == "stop":
    server.stop(timeout=float(sys.argv[3]))
    print("stopped", flush=True)
sys.stdin.read()  # until the test kills us
"""


def _owner(home: Path, port: int, stop_timeout: float = 5.0) -> tuple[subprocess.Popen[str], int, int]:
    """A process that started a local server (and its reaper) on ``home``; (owner, server pid, postmaster)."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(home), str(port), str(stop_timeout)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert owner.stdout is not None
    server_pid = int(owner.stdout.readline())
    postmaster = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    return owner, server_pid, postmaster


def _gone(*pids: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(running(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def _end(pids: list[int | None]) -> None:
    """Ours: never leave them running, even when the test fails."""
    for pid in pids:
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


def test_a_half_alive_server_is_named_refused_when_foreign_and_replaced_when_ours(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "prefect"
    owner, stale_pid, postmaster = _owner(home, port)
    fresh = LocalPrefectServer(home=home, port=port)
    try:
        stop_postmaster(home / "pgdata")  # the server's database goes away; the server stays
        deadline = time.monotonic() + 60
        while not_ready(fresh.api_url) is None:
            assert time.monotonic() < deadline, "the server still says ready without its database"
            time.sleep(0.5)
        assert httpx.get(f"{fresh.api_url}/health", timeout=5).json() is True  # /health cannot tell

        with pytest.raises(ServerUnavailableError) as foreign:
            LocalPrefectServer(home=tmp_path / "another-folder", port=port).start()
        assert "not ready" in str(foreign.value) and "did not start it" in str(foreign.value)
        assert "\n" not in str(foreign.value)
        assert running(stale_pid), "a server this folder did not start was touched"

        assert fresh.start() is True
        assert len(fresh.notes) == 1 and f"pid {stale_pid}" in fresh.notes[0] and "not ready" in fresh.notes[0]
        fresh.wait_healthy(120)
        assert not_ready(fresh.api_url) is None
        assert _gone(stale_pid, timeout=5), "the stale server was not stopped"
        assert fresh.pid != stale_pid
    finally:
        fresh.stop()
        owner.kill()
        owner.wait(timeout=10)
        _end([stale_pid, postmaster])


def test_a_second_ctrl_c_during_stop_leaves_neither_server_nor_postgres(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "prefect"
    owner, server_pid, postmaster = _owner(home, port, stop_timeout=4.0)
    try:
        os.killpg(server_pid, signal.SIGSTOP)  # a server slow to stop: the stop has to wait for it
        assert owner.stdin is not None
        owner.stdin.write("stop\n")
        owner.stdin.flush()
        time.sleep(1.0)
        owner.send_signal(signal.SIGINT)  # the user presses Ctrl-C again while it stops
        owner.wait(timeout=60)
        assert _gone(server_pid, postmaster), "the stop was cut short: server or PostgreSQL left running"
    finally:
        owner.kill()
        owner.wait(timeout=10)
        _end([server_pid, postmaster])
