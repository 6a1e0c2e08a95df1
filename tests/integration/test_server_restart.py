"""A server restart while tasks hold slots leaks nothing for good: the local server keeps
leases on disk (filesystem lease storage) and the counter returns to zero when the work ends;
any slot the counter shows without a live lease is flagged by `slots` and freed by repair. With Prefect's default in-memory storage the same restart leaks the held
slots for good (DESIGN.md fact 5; the contrast is measured by `uv run python -m bench.restart_contrast`)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from local_server.prefect_server import LocalPrefectServer
from support import ROOT, Stack, free_port, run_cli, script, slot_usage

pytestmark = pytest.mark.integration


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
        deadline = time.monotonic() + 30
        while slot_usage(server.api_url)[0] > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        after_run = slot_usage(server.api_url)
        print(f"\nheld before restart {held_before}, after restart {used_after_restart, holders_after_restart}, "
              f"ingest exit {ingest.returncode}, counter after the run {after_run}")
        # Whatever the restart did to the run, it cleaned up and said why in one line.
        left = (set(staging.iterdir()) if staging.exists() else set()) - before
        assert not left, f"the run left its staging folder: {left}"
        if ingest.returncode != 0:
            errors = [line for line in err.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, err[-3000:]
            print(errors[0])
        if after_run != (0, 0):
            # Slots counted on the server with no live lease after the restart (seen in some
            # runs; see the issue note): the inspector must flag them and repair must free them.
            env_check = run_cli("slots", "--check", env=env)
            assert env_check.returncode == 1 and "live holders" in env_check.stdout, env_check.stdout
            assert run_cli("slots", "repair", "--yes", env=env).returncode == 0
        assert slot_usage(server.api_url) == (0, 0), "slots leaked across the restart"
    finally:
        if ingest is not None and ingest.poll() is None:
            ingest.kill()
        server.stop()
