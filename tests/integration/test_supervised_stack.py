"""serve-all supervises what it started: the local Prefect server SIGKILLed while both flows
hold slots is restarted on the same data (one WARNING line), the runs end in a final state
instead of hanging, every slot comes back with nobody typing a repair, and Ctrl-C then leaves
nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from common.prefect_api import not_ready
from support import (
    ROOT,
    SERVING,
    Stack,
    descendants,
    free_port,
    left_running,
    linked_data_dir,
    script,
    slot_usage,
    stop_with_ctrl_c,
    trigger_at,
    wait_final_at,
    wait_for_text,
)

pytestmark = pytest.mark.integration


def test_a_killed_prefect_server_is_restarted_and_nothing_leaks(stack: Stack, tmp_path: Path) -> None:
    data = linked_data_dir(stack, tmp_path)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = stack.env(ETL_DATA_DIR=str(data), ETL_DEMO_API_PORT=str(free_port()), ETL_BOARD_PORT=str(free_port()))
    env.pop("PREFECT_API_URL")
    log = tmp_path / "serve-all.log"
    proc = subprocess.Popen([script("serve-all"), "--port", str(port)], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    started: set[int] = set()
    pgdata = str(data / "prefect" / "pgdata").encode()
    try:
        wait_for_text(log, SERVING, proc, timeout=180)
        started = descendants(proc.pid)
        runs = [trigger_at(api, name) for name in ("ingest/local", "reports/local")]
        deadline = time.monotonic() + 120
        while slot_usage(api)[1] == 0:
            assert time.monotonic() < deadline, "the runs never held a database slot"
            time.sleep(0.2)
        old = int((data / "prefect" / "server.pid").read_text())
        os.killpg(old, signal.SIGKILL)  # the server and everything in its process group
        killed = time.monotonic()

        while not_ready(api, timeout=2) is not None or int((data / "prefect" / "server.pid").read_text()) == old:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() - killed < 60, "no ready server 60 s after the kill"
            time.sleep(0.5)
        back = time.monotonic() - killed
        text = log.read_text()
        assert "the local Prefect server on" in text and "died (" in text and "restarting it" in text, text[-3000:]

        states = {str(i): r.state_type for i, r in wait_final_at(api, runs, timeout=240).items()}
        # Never hanging: each run is over. Prefect marks a run CRASHED (not FAILED) when its
        # process ends on an engine error it could not report while the server was away.
        assert set(states.values()) <= {"COMPLETED", "FAILED", "CRASHED"}, states
        deadline = killed + 180
        while slot_usage(api) != (0, 0) or slot_usage(api, "api") != (0, 0):
            assert time.monotonic() < deadline, f"slots still taken 3 min after the kill: {slot_usage(api)}"
            time.sleep(1)
        print(f"\nready server back {back:.1f} s after SIGKILL; runs ended {states}; every slot free "
              f"{time.monotonic() - killed:.0f} s after the kill")

        # The served deployments kept polling: a run triggered now runs and completes.
        after = trigger_at(api, "reports/local")
        state = wait_final_at(api, [after], timeout=240)[after].state_type
        assert state == "COMPLETED", log.read_text()[-3000:]
        stop_with_ctrl_c(proc)
        assert proc.returncode == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The restarted server is not among the PIDs found before the kill: look for it by its port too.
    assert left_running(started, pgdata, f"--port\x00{port}\x00".encode()) == [], "serve-all left processes running"
