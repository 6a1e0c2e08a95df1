"""serve-all's own lifecycle: it starts a Prefect server (embedded PostgreSQL), serves both
deployments so that `prefect deployment run` works, and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from local_server.processes import running
from support import ROOT, Stack, descendants, free_port, pids_with_arg, script

pytestmark = pytest.mark.integration






def test_serve_all_serves_triggered_runs_and_ctrl_c_leaves_nothing(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    env = stack.env(ETL_DATA_DIR=str(stack.data_dir))
    env.pop("PREFECT_API_URL")
    # its own Prefect home, so this server is not the session's
    env["ETL_DATA_DIR"] = str(tmp_path / "data")
    (tmp_path / "data" / "demo").mkdir(parents=True)
    os.link(stack.data_dir / "demo" / "shop.duckdb", tmp_path / "data" / "demo" / "shop.duckdb")
    log = open(tmp_path / "serve-all.log", "w+")
    proc = subprocess.Popen(
        [script("serve-all"), "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "serve-all.log").read_text()[-3000:]
            if "Your deployments are being served" in (tmp_path / "serve-all.log").read_text():
                break
            time.sleep(0.5)
        else:
            pytest.fail("serve-all never reached serving: " + (tmp_path / "serve-all.log").read_text()[-3000:])
        started = descendants(proc.pid)
        assert started, "serve-all started no child processes?"
        pgdata = str(tmp_path / "data" / "prefect" / "pgdata").encode()
        assert pids_with_arg(pgdata), "no embedded PostgreSQL found for the Prefect server"

        limits = {g["name"]: g["limit"] for g in httpx.post(f"{api}/v2/concurrency_limits/filter", json={}).json()}
        assert limits["tag:database"] == 3 and limits["tag:api"] == 10

        run_env = dict(env, PREFECT_API_URL=api)
        triggered = subprocess.run(
            [script("prefect"), "deployment", "run", "reports/local", "--watch", "--watch-timeout", "240"],
            capture_output=True, text=True, timeout=300, env=run_env, cwd=ROOT, stdin=subprocess.DEVNULL,
        )
        assert triggered.returncode == 0, triggered.stdout[-2000:] + triggered.stderr[-2000:]
        assert "COMPLETED" in triggered.stdout.upper()

        # The server and the demo API listen on loopback only.
        listening = Path("/proc/net/tcp").read_text()
        assert f":{port:04X} " in listening
        assert f"00000000:{port:04X}" not in listening, "the Prefect server listens on all interfaces"

        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(running(p) for p in started):
        time.sleep(0.2)
    left = [p for p in started if running(p)]
    assert not left, f"serve-all left processes running: {left}"
    # PostgreSQL daemonizes (its parent is init), so look for it by its data folder.
    assert not [p for p in pids_with_arg(pgdata) if running(p)], "the embedded PostgreSQL was left running"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api}/health", timeout=2)


def test_a_killed_owner_leaves_no_server_or_postgres_behind(tmp_path: Path) -> None:
    """SIGKILL gives the process that started the local server no chance to stop it: the
    reaper beside the server ends the server's process group and its PostgreSQL."""
    import sys

    port = free_port()
    home = tmp_path / "prefect"
    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\n"
         "from pathlib import Path\n"
         "from local_server.prefect_server import LocalPrefectServer\n"
         f"server = LocalPrefectServer(home=Path({str(home)!r}), port={port})\n"
         "server.start(); server.wait_healthy(120)\n"
         "print(server.pid, flush=True)\n"
         "sys.stdin.read()  # until the test kills us\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
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
