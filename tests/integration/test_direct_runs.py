"""Each flow on its own (`uv run ingest`, `uv run reports`) against the shared server, and
`uv run slots` naming who holds and who waits while a run is in flight."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from common.settings import get_settings
from support import ROOT, Stack, lake_checksums, run_cli, script

pytestmark = pytest.mark.integration




def test_direct_ingest_is_bound_by_the_limit_and_visible_in_slots(stack: Stack, prefect_client) -> None:  # type: ignore[no-untyped-def]
    from common.resources import get_registry
    from slot_tools.snapshot import take_snapshot

    registry = get_registry()
    proc = subprocess.Popen(
        [script("ingest")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=stack.env(), stdin=subprocess.DEVNULL,
    )
    seen_holders: list[dict] = []
    seen_waiters = 0
    max_used = 0
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            snap = take_snapshot(registry, stack.api_url)
            database = next(v for v in snap.limits if v.tag == "database")
            max_used = max(max_used, database.used, len(database.holders))
            seen_holders += [h.__dict__ for h in database.holders if h.flow]
            seen_waiters = max(seen_waiters, len(database.waiters))
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out[out.index("{"):])
    assert len(summary["rows"]) == 22  # 20 tables + 2 reference datasets
    assert max_used <= 3
    assert seen_holders, "slots never showed a holder of the database limit"
    holder = seen_holders[0]
    assert holder["flow"] == "ingest" and holder["flow_run"] and holder["task_run"].startswith("extract-table")
    assert seen_waiters > 0, "slots never showed a task run waiting for a database slot"
    assert "waited" in err and "for a 'database' slot" in err, "no INFO line telling how long a task waited"


def test_slots_json_matches_the_server(stack: Stack, prefect_client) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("slots", "--json", "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    by_tag = {v["tag"]: v for v in data["limits"]}
    assert set(by_tag) == {"database", "api"}
    for tag, view in by_tag.items():
        gcl = prefect_client.read_global_concurrency_limit_by_name(f"tag:{tag}")
        assert view["server_slots"] == gcl.limit and view["active"] is gcl.active
        assert view["used"] == len(view["holders"]) == 0  # nothing runs now
    assert data["anomalies"] == []


def test_reruns_are_idempotent_and_reports_use_the_lake(stack: Stack) -> None:
    from flow_reports.catalog import REPORTS

    first = run_cli("ingest", timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    before = lake_checksums(get_settings().lake_dir)
    second = run_cli("ingest", timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert lake_checksums(get_settings().lake_dir) == before, "re-running ingest changed the lake"

    reports = run_cli("reports", timeout=300)
    assert reports.returncode == 0, reports.stderr[-3000:]
    summary = json.loads(reports.stdout[reports.stdout.index("{"):])
    assert summary["skipped"] == {}
    assert set(summary["rows"]) == set(REPORTS)
    folder = get_settings().reports_dir
    assert {p.stem for p in folder.glob("*.csv")} >= set(REPORTS)
    assert all(n > 0 for n in summary["rows"].values())
