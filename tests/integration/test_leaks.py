"""A leaked slot, made the honest way: a served flow run holding `database` slots is killed
(SIGKILL, like an OOM kill). The inspector flags the slots as held by a run that is gone, the
other flow still completes, the leases expire on their own, and `slots repair` frees such
slots at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from uuid import UUID

import pytest

from support import ROOT, Stack, engine_pid_for, run_cli, script, slot_usage, stop_with_ctrl_c, wait_final

pytestmark = pytest.mark.integration




def _kill_ingest_while_holding(client, serve_pid: int, with_reports: bool = True) -> UUID | None:  # type: ignore[no-untyped-def]
    """Trigger ingest (and reports); SIGKILL ingest's process once it holds database slots.
    Returns the reports run, if one was triggered."""
    runs = {}
    for name in ("ingest/local", "reports/local") if with_reports else ("ingest/local",):
        deployment = client.read_deployment_by_name(name)
        runs[name] = client.create_flow_run_from_deployment(deployment.id).id
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "ingest never held a database slot"
        holders = client.read_concurrency_limit_by_tag("database").active_slots
        if holders:
            from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId

            held = client.read_task_runs(task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=holders)))
            if any(t.flow_run_id == runs["ingest/local"] for t in held):
                pid = engine_pid_for(serve_pid, runs["ingest/local"])
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    return runs.get("reports/local")
        time.sleep(0.2)




def test_killed_flow_run_is_flagged_then_recovers_and_repair_frees_at_once(stack: Stack, prefect_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = open(tmp_path / "serve.log", "w+")
    serve = subprocess.Popen([script("serve-all")], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                             env=stack.env(), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while "being served" not in (tmp_path / "serve.log").read_text():
            assert serve.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.5)

        # 1. Kill ingest mid-run: flagged by the inspector, reports still completes.
        killed_at = time.monotonic()
        reports_run = _kill_ingest_while_holding(prefect_client, serve.pid)
        flagged = None
        while time.monotonic() - killed_at < 60:
            check = run_cli("slots", "--json", "--check")
            if check.returncode == 1:
                flagged = json.loads(check.stdout)
                break
        assert flagged is not None, "the inspector never flagged the killed run's slots"
        print("\nflagged:", flagged["anomalies"])
        assert any("database" in a and ("CRASHED" in a or "FAILED" in a or "no live holder" in a)
                   for a in flagged["anomalies"]), flagged["anomalies"]
        assert wait_final(prefect_client, [reports_run])[reports_run].state_type.value == "COMPLETED"

        # 2. Without any repair, the leases expire and the slots come back.
        deadline = time.monotonic() + 150
        while slot_usage(stack.api_url)[0] > 0:
            assert time.monotonic() < deadline, f"slots still taken {time.monotonic() - killed_at:.0f} s after the kill"
            time.sleep(1)
        recovered = time.monotonic() - killed_at
        print(f"\nslots of the killed run were free again {recovered:.0f} s after SIGKILL (lease expiry)")

        # 3. Kill ingest alone (so every holder is dead: repair never revokes beside a live
        #    holder), then `slots repair --yes`: free within seconds, long before the leases
        #    would expire. (Waiting for a concurrent reports run first let the leases expire
        #    on a slow machine, leaving nothing to repair.)
        killed_at = time.monotonic()
        _kill_ingest_while_holding(prefect_client, serve.pid, with_reports=False)
        repaired = None
        result = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            result = run_cli("slots", "repair", "--yes")
            assert result.returncode == 0, result.stdout + result.stderr
            if "done: tag:database" in result.stdout:
                repaired = time.monotonic() - killed_at
                break
            time.sleep(1)
        assert repaired is not None, f"repair never freed the killed run's slots: {result and result.stdout}"
        assert slot_usage(stack.api_url) == (0, 0)
        print(f"slots repair freed them {repaired:.0f} s after SIGKILL")
        assert repaired < 50, f"freed only {repaired:.0f} s after the kill: lease expiry, not the repair"
        assert run_cli("slots", "--check").returncode == 0
    finally:
        stop_with_ctrl_c(serve)
