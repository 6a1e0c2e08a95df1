"""Each flow on its own (`uv run ingest`, `uv run reports`) against the shared server, and
`uv run slots` naming who holds and who waits while a run is in flight."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from common.settings import get_settings
from support import ROOT, CliRun, Stack, Terminal, edited_limits, flow_run_id, lake_checksums, run_cli, script

pytestmark = pytest.mark.integration

LOWERED = 1  # the database limit while ingest runs, lowered from the file's 3 once tasks wait


@dataclass
class DirectIngest:
    """One `uv run ingest` on all tables, watched with `slots` readings while it ran; its
    database limit was lowered to ``LOWERED`` on the server once task runs were waiting.
    ``held_at_lowering``: the task runs holding database leases right after the change (they
    took their slots under the old limit; a task run's Running state is recorded a moment
    after its slot is granted, so the records alone cannot tell them from later grants)."""

    code: int
    out: str
    err: str
    holders: list[dict]
    waiters: int
    lowered_at: datetime | None
    held_at_lowering: frozenset[str] = frozenset()


def run_summary(stdout: str) -> dict:
    """The JSON summary a direct run prints last (after its one-line notes on the demo parts)."""
    return json.loads(stdout[stdout.index("{") :])


@pytest.fixture(scope="module")
def direct_ingest(stack: Stack, prefect_client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DirectIngest]:
    from common.resources import get_registry, load_registry
    from slot_tools.limits_sync import sync
    from slot_tools.snapshot import take_snapshot

    registry = get_registry()
    lowered = load_registry(edited_limits(tmp_path_factory.mktemp("limits") / "limits.toml", "database", slots=LOWERED))
    httpx.post(f"{stack.demo_api_url}/stats/reset", timeout=5).raise_for_status()
    proc = subprocess.Popen(
        [script("ingest")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=stack.env(),
        stdin=subprocess.DEVNULL,
    )
    holders: list[dict] = []
    waiters = 0
    lowered_at = None
    held_at_lowering: frozenset[str] = frozenset()
    try:
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            snap = take_snapshot(registry, stack.api_url)
            database = next(v for v in snap.limits if v.tag == "database")
            holders += [h.__dict__ for h in database.holders if h.flow]
            waiters = max(waiters, len(database.waiters))
            if lowered_at is None and len(database.waiters) >= 3:
                # A limit changed while tasks wait applies at once: no restart of anything.
                sync(prefect_client, lowered)
                lowered_at = datetime.now(UTC)
                after = next(v for v in take_snapshot(registry, stack.api_url).limits if v.tag == "database")
                held_at_lowering = frozenset(h.task_run_id for h in after.holders)
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sync(prefect_client, registry)
    yield DirectIngest(proc.returncode, out, err, holders, waiters, lowered_at, held_at_lowering)


def test_direct_ingest_is_bound_by_the_limit_and_visible_in_slots(
    direct_ingest: DirectIngest, stack: Stack, rest
) -> None:
    from common.resources import get_registry
    from slot_tools.history import peak_concurrency, read_intervals, wait_until_recorded

    run_ = direct_ingest
    assert run_.code == 0, run_.err[-3000:]
    summary = run_summary(run_.out)
    assert len(summary["rows"]) == 22  # 20 tables + 2 reference datasets
    # The limit held, from the server's own records of every task run (not samples)...
    run = UUID(flow_run_id(run_.err))
    assert wait_until_recorded(rest, [run])
    for tag, limit in get_registry().tag_limits().items():
        peak, at = peak_concurrency(read_intervals(rest, [tag], flow_run_ids=[run]))
        assert 0 < peak <= limit, f"{tag}: {peak} task runs held slots at once at {at}, limit {limit}"
    # ...and from a witness outside Prefect: the partner API never had more in flight than its capacity.
    stats = httpx.get(f"{stack.demo_api_url}/stats", timeout=5).json()
    assert stats["requests"] > 0 and stats["rejected_429"] == 0 and stats["max_in_flight"] <= stats["capacity"], stats
    assert run_.holders, "slots never showed a holder of the database limit"
    holder = run_.holders[0]
    assert holder["flow"] == "ingest" and holder["flow_run"] and holder["task_run"].startswith("extract-table")
    assert run_.waiters > 0, "slots never showed a task run waiting for a database slot"
    assert "waited" in run_.err and "for a 'database' slot" in run_.err, "no INFO line telling how long a task waited"


def test_a_limit_lowered_while_tasks_wait_applies_without_a_restart(direct_ingest: DirectIngest, rest) -> None:
    """Every extract that took a slot after the limit went from 3 to 1 held it alone, from
    the server's records; and some did (the check is not vacuous). The records' intervals
    (Running to Completed) lie inside the holds (slot granted to slot released), so an
    overlap in them is a real one."""
    from slot_tools.history import read_intervals, wait_until_recorded

    assert direct_ingest.code == 0 and direct_ingest.lowered_at is not None, "the run never had 3 waiters"
    run = UUID(flow_run_id(direct_ingest.err))
    assert wait_until_recorded(rest, [run])
    intervals = read_intervals(rest, ["database"], flow_run_ids=[run])
    later = [
        iv
        for iv in intervals
        if iv.start > direct_ingest.lowered_at and iv.task_run_id not in direct_ingest.held_at_lowering
    ]
    assert len(later) >= 2, f"only {len(later)} extracts started after the limit was lowered"
    for iv in later:
        beside = [o.task_run for o in intervals if o is not iv and o.start <= iv.start < (o.end or iv.start)]
        assert len(beside) < LOWERED, f"{iv.task_run} took a slot beside {beside} after the limit went to {LOWERED}"


def test_slots_json_matches_the_server(stack: Stack, prefect_client) -> None:
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


# The rerun: both enriched tables (so both reference datasets too) and the largest plain one.
RERUN_TABLES = ("orders", "payments", "page_views")


def test_reruns_are_idempotent_and_reports_use_the_lake(direct_ingest: DirectIngest) -> None:
    from flow_reports.catalog import REPORTS

    assert direct_ingest.code == 0, direct_ingest.err[-3000:]
    lake = get_settings().lake_dir
    before = lake_checksums(lake)
    files = {p.stem: p.stat().st_ino for p in lake.glob("*.parquet")}
    second = run_cli("ingest", *(a for t in RERUN_TABLES for a in ("--table", t)), timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    rerun = set(run_summary(second.stdout)["rows"])
    assert rerun == {*RERUN_TABLES, "ref_fx_rates", "ref_countries"}, rerun
    # Each was published again (a new file renamed into place), with the same content.
    replaced = {p.stem for p in lake.glob("*.parquet") if p.stat().st_ino != files.get(p.stem)}
    assert replaced == rerun, replaced
    assert lake_checksums(lake) == before, "re-running ingest changed the lake"

    reports = run_cli("reports", timeout=300)
    assert reports.returncode == 0, reports.stderr[-3000:]
    summary = run_summary(reports.stdout)
    assert summary["skipped"] == {}
    assert set(summary["rows"]) == set(REPORTS)
    folder = get_settings().reports_dir
    assert {p.stem for p in folder.glob("*.csv")} >= set(REPORTS)
    assert all(n > 0 for n in summary["rows"].values())


def test_slots_watch_refreshes_with_holders_and_stops_on_ctrl_c(stack: Stack, tmp_path: Path) -> None:
    """`slots --watch` in a terminal while a run holds slots: the table is redrawn with the
    holders, and Ctrl-C ends it cleanly."""
    # Four large tables that need no partner data: seconds of extracts, no reference pages.
    tables = [
        arg for t in ("web_sessions", "order_items", "page_views", "inventory_movements") for arg in ("--table", t)
    ]
    run = CliRun.start(tmp_path / "ingest", "ingest", *tables, env=stack.env())
    watch = Terminal([script("slots"), "--watch"], stack.env(COLUMNS="160", LINES="60"), tmp_path / "watch.log")
    try:
        deadline = time.monotonic() + 120
        while not re.search(r"holds\s.*ingest", watch.text):
            assert watch.proc.poll() is None, watch.text[-2000:]
            assert run.proc.poll() is None and time.monotonic() < deadline, "never showed a holder while ingest ran"
            time.sleep(0.3)
        drawn = watch.text.count("tag:database")
        redraw = time.monotonic() + 30  # a bound on a hang: the refresh period is about a second
        while watch.text.count("tag:database") <= drawn:
            assert time.monotonic() < redraw and watch.proc.poll() is None, "the display was not refreshed"
            time.sleep(0.2)
        os.killpg(watch.proc.pid, signal.SIGINT)
        assert watch.proc.wait(timeout=15) == 0, watch.text[-2000:]
        assert "Traceback" not in watch.text
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()
        assert run.finish(300).code == 0, run.describe()
