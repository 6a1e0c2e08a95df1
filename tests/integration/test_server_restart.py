"""A server restart while tasks hold slots leaks nothing: the local server keeps leases on
disk (filesystem lease storage), so the counter returns to zero when the work ends, with no
repair. With Prefect's default in-memory storage the same restart leaks the held slots for
good (DESIGN.md fact 5; `uv run python -m bench.restart_contrast`; many restarts:
`uv run python -m bench.restart_leases`)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from local_server.prefect_server import LocalPrefectServer
from support import ROOT, Stack, free_port, run_cli, script, slot_usage

pytestmark = pytest.mark.integration

LEASE_SECONDS = 60  # Prefect 3.9.1's slot lease (DESIGN.md fact 4)


def test_restart_while_slots_are_held_leaks_nothing(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    server = LocalPrefectServer(home=tmp_path / "prefect", port=port)
    server.start()
    ingest = None
    try:
        server.wait_healthy(timeout=120)
        env = stack.env(PREFECT_API_URL=server.api_url)
        assert run_cli("limits", "sync", env=env).returncode == 0
        staging = stack.data_dir / "lake" / ".staging"
        before = set(staging.iterdir()) if staging.exists() else set()  # earlier tests' leftovers
        ingest = subprocess.Popen([script("ingest")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while slot_usage(server.api_url)[1] == 0:
            assert ingest.poll() is None and time.monotonic() < deadline, "ingest never held a slot"
            time.sleep(0.2)
        held_before = slot_usage(server.api_url)

        server.stop()  # the same way serve-all stops it
        server = LocalPrefectServer(home=tmp_path / "prefect", port=port)
        server.start()
        server.wait_healthy(timeout=120)
        used_after_restart, holders_after_restart = slot_usage(server.api_url)

        out, err = ingest.communicate(timeout=300)
        # No repair here, by hand or by a watchdog: with leases on disk every slot comes back
        # by itself, at once when the run's releases reach the server, at worst when a lease
        # of a release that did not expires (60 s + the repossessor's 5 s).
        deadline = time.monotonic() + LEASE_SECONDS + 30
        while slot_usage(server.api_url) != (0, 0) and time.monotonic() < deadline:
            time.sleep(0.5)
        after_run = slot_usage(server.api_url)
        print(f"\nheld before restart {held_before}, after restart {used_after_restart, holders_after_restart}, "
              f"ingest exit {ingest.returncode}, counter after the run {after_run}")
        assert after_run == (0, 0), "slots leaked across the restart"
        # The tasks that asked for a slot while the server was down got a connection error:
        # the run fails, cleans up and says why in one line naming the server.
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert ingest.returncode == 1 and len(errors) == 1, err[-3000:]
        assert f"127.0.0.1:{port}" in errors[0] or "connect" in errors[0].lower(), errors[0]
        left = (set(staging.iterdir()) if staging.exists() else set()) - before
        assert not left, f"the run left its staging folder: {left}"
    finally:
        if ingest is not None and ingest.poll() is None:
            ingest.kill()
        server.stop()
