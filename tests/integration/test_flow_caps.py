"""Reserved capacity per flow: with `database = 3` and ingest capped at 2, a flooding ingest
cannot keep reports from the database. Enforced by Prefect itself: ingest's tasks also carry
the tag `database:ingest` (limit 2), acquired atomically with `database`."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
import time
from pathlib import Path

import pytest

from support import ROOT, Stack, run_cli, script

pytestmark = pytest.mark.integration

CAPPED = """
[resources.database]
slots = 3
description = "The shared SQL database."
flows = { ingest = 2 }

[resources.api]
slots = 10
description = "The partner API."
"""


def _start(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([script(name)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env, stdin=subprocess.DEVNULL)


def test_flooding_ingest_leaves_a_slot_for_reports(stack: Stack, prefect_client, rest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    from slot_tools.history import peak_concurrency, read_intervals, wait_until_recorded

    limits = tmp_path / "limits.toml"
    limits.write_text(CAPPED)
    env = stack.env(ETL_LIMITS_FILE=str(limits))
    synced = run_cli("limits", "sync", env=env)
    assert synced.returncode == 0 and "tag:database:ingest" in synced.stdout, synced.stdout + synced.stderr
    started_at = datetime.now(timezone.utc)
    ingest = _start("ingest", env)
    reports = None
    try:
        deadline = time.monotonic() + 120
        while prefect_client.read_global_concurrency_limit_by_name("tag:database:ingest").active_slots < 2:
            assert ingest.poll() is None and time.monotonic() < deadline, "ingest never took its 2 slots"
            time.sleep(0.2)
        reports = _start("reports", env)
        for proc in (ingest, reports):
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in (ingest, reports):
            if proc is not None and proc.poll() is None:
                proc.kill()
        assert run_cli("limits", "sync", "--prune").returncode == 0

    runs = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started_at))
    )
    ids = [r.id for r in runs]
    assert wait_until_recorded(rest, ids)
    intervals = read_intervals(rest, ["database"], flow_run_ids=ids)
    by_flow = {f: [iv for iv in intervals if iv.flow == f] for f in ("ingest", "reports")}
    assert peak_concurrency(by_flow["ingest"])[0] == 2, "ingest held more (or fewer) than its cap"
    assert peak_concurrency(intervals)[0] <= 3
    first = min(by_flow["reports"], key=lambda iv: iv.start)
    still_waiting = [iv for iv in by_flow["ingest"] if iv.pending_at and iv.pending_at < first.start < iv.start]
    print(f"\nreports' first database task waited {first.waited:.2f} s while "
          f"{len(still_waiting)} ingest extracts were still waiting for a slot")
    assert still_waiting, "reports only got a slot after ingest's flood drained"
    # the cap limit is gone again after the prune
    assert "database:ingest" not in {g.name.removeprefix("tag:") for g in prefect_client.read_global_concurrency_limits()}
