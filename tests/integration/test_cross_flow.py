"""The mission, end to end: both deployments served by serve-all, run at the same time in
separate processes, sharing the server-side ``database`` and ``api`` limits.

Everything asserted here comes from the server's own task-run records, the lake on disk,
the demo database and the demo API's counters.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import duckdb
import httpx
import pytest

from support import ROOT, Stack, chromium_dom, extract_matches_lake, free_port, script

pytestmark = pytest.mark.integration


@dataclass
class Board:
    """What the live slot board showed during the demo run: its data readings, and the DOM
    headless Chromium rendered from its page while both flows held database lanes."""

    readings: list[dict[str, Any]] = field(default_factory=list)
    dom: str | None = None
    dom_attempts: int = 0


def _holding(reading: dict[str, Any], tag: str) -> set[str]:
    view = next(v for v in reading["limits"] if v["tag"] == tag)
    return {h["flow"] for h in view["holders"]}


def _rendered_lanes(dom: str, tag: str) -> set[str]:
    """Flows of the held lanes in the limit's section of a rendered page."""
    section = re.search(rf'<section class="limit" data-tag="{tag}">(.*?)</section>', dom, re.S)
    return set(re.findall(r'class="lane held[^"]*" data-flow="([^"]+)"', section.group(1))) if section else set()


def _inline_reading(dom: str) -> dict[str, Any] | None:
    """The reading the board put inline in the page it served (what the browser drew from)."""
    found = re.search(r'<script id="initial" type="application/json">(.*?)</script>', dom, re.S)
    return json.loads(found.group(1)) if found else None


def _read_board(url: str, proc: subprocess.Popen[str], board: Board) -> None:
    """Read the board's data every 0.3 s while serve-all runs (a thread of its own: a
    Chromium rendering takes seconds, and the moments both flows hold database slots must
    not fall into one)."""
    while proc.poll() is None:
        try:
            board.readings.append(httpx.get(f"{url}/api/board", timeout=5).json())
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


def _render_board(url: str, proc: subprocess.Popen[str], board: Board) -> None:
    """Load the board's page in headless Chromium again and again, once database lanes are
    held, until one rendering shows both flows holding them (the lanes change every second,
    so a rendering is a moment of its own). The reading each served page holds inline is a
    board reading too: on a loaded machine a moment both flows hold slots can fall between
    two ``api/board`` readings and inside a page load."""
    while proc.poll() is None and board.dom is None and board.dom_attempts < 60:
        if not board.readings or not _holding(board.readings[-1], "database"):
            time.sleep(0.3)
            continue
        board.dom_attempts += 1
        dom = chromium_dom(url)
        if (inline := _inline_reading(dom)) is not None:
            board.readings.append(inline)
        if _rendered_lanes(dom, "database") >= {"ingest", "reports"}:
            board.dom = dom


@pytest.fixture(scope="module")
def demo_run(stack: Stack, prefect_client):  # type: ignore[no-untyped-def]
    """One `serve-all --demo --once` against the session server: both flows at once, with the
    live slot board read (and rendered in a real browser) while they run."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterStartTime

    httpx.post(f"{stack.demo_api_url}/stats/reset", timeout=5).raise_for_status()
    started = datetime.now(timezone.utc)
    board_port = free_port()
    board = Board()
    proc = subprocess.Popen(
        [script("serve-all"), "--demo", "--once"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=ROOT, stdin=subprocess.DEVNULL, env=stack.env(ETL_BOARD_PORT=str(board_port)),
    )
    watchers = [
        threading.Thread(target=watch, args=(f"http://127.0.0.1:{board_port}", proc, board), daemon=True)
        for watch in (_read_board, _render_board)
    ]
    for watcher in watchers:
        watcher.start()
    try:
        output, _ = proc.communicate(timeout=420)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for watcher in watchers:
        watcher.join(timeout=60)
    runs = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started)),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["local"])),
    )
    stats = httpx.get(f"{stack.demo_api_url}/stats", timeout=5).json()
    return proc.returncode, output, runs, stats, board


def test_serve_all_demo_completes_both_flows(demo_run) -> None:  # type: ignore[no-untyped-def]
    code, output, runs, _, _ = demo_run
    assert code == 0, output[-4000:]
    by_flow = {}
    for run in runs:
        by_flow.setdefault(run.state_type.value, []).append(run.name)
    assert len(runs) == 2, output[-2000:]
    assert all(r.state_type.value == "COMPLETED" for r in runs), by_flow
    assert "Live slot board:" in output and "uv run prefect deployment run 'ingest/local'" in output
    # The watchdog ran all along (serve-all's default) and never touched a live holder.
    assert "auto-repair" not in output, [line for line in output.splitlines() if "auto-repair" in line]


@pytest.mark.parametrize("tag", ["database", "api"])
def test_limit_held_saturated_and_shared_across_flows(demo_run, prefect_client, rest, tag: str) -> None:  # type: ignore[no-untyped-def]
    from slot_tools.history import peak_concurrency, read_intervals, shared_moments, wait_until_recorded
    from common.resources import get_registry

    _, output, runs, _, _ = demo_run
    ids = [r.id for r in runs]
    assert wait_until_recorded(rest, ids)
    intervals = read_intervals(rest, [tag], flow_run_ids=ids)
    limit = get_registry()[tag].slots
    flows = {iv.flow for iv in intervals}
    assert flows == {"ingest", "reports"}, f"{tag} used by {flows}"
    peak, _ = peak_concurrency(intervals)
    assert peak <= limit, f"{tag}: {peak} task runs held slots at once, limit {limit}"
    if tag == "database":
        # 20 extracts of seconds each against 3 slots: the limit is always the bottleneck,
        # and both flows hold database slots for most of their runs.
        assert peak == limit, f"{tag}: peak {peak} never reached the limit {limit}: the run was not saturated"
        assert shared_moments(intervals) > 0, f"{tag}: the two flows never held slots at the same time"
    else:
        # Not asserted saturated: Prefect acquires one tag's slots one request at a time per
        # process, so 10 api slots fill only if 10 round trips to the server beat the first
        # call's end: it did here (peak 10), not on a loaded CI machine (peak 5). Measured in
        # bench/RESULTS.md.
        # Whether ingest's reference calls and reports' publishes overlap is timing too.
        assert peak > 1, f"{tag}: calls never overlapped (peak {peak})"


def test_demo_api_saw_no_429(demo_run) -> None:  # type: ignore[no-untyped-def]
    _, output, _, stats, _ = demo_run
    assert stats["requests"] > 0
    assert stats["rejected_429"] == 0, stats
    assert stats["max_in_flight"] <= stats["capacity"]


def test_lake_matches_the_database(demo_run, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    from common.catalog import TABLES
    from common.lake import dataset_path, parquet_rows
    from common.settings import get_settings

    settings = get_settings()
    # Content, not counts: every dataset holds exactly the rows its extract reads from the
    # database (an order-independent checksum of every row of both).
    assert extract_matches_lake(settings.demo_db_path, settings.lake_dir) == {}
    with duckdb.connect(str(settings.demo_db_path), read_only=True) as con:
        for table in TABLES:
            expected = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            assert parquet_rows(dataset_path(settings.lake_dir, table)) == expected, table
        orders_eur = duckdb.execute(
            "SELECT count(*) FILTER (WHERE total_amount_eur IS NULL), count(*) FROM read_parquet(?)",
            [str(dataset_path(settings.lake_dir, "orders"))],
        ).fetchone()
    assert orders_eur is not None and orders_eur[0] == 0 and orders_eur[1] > 0
    assert not any((settings.lake_dir / ".staging").glob("*")), "staging left behind after cleanup"
    reports = sorted(p.name for p in settings.reports_dir.glob("*.csv"))
    assert len(reports) >= 8 and (settings.reports_dir / "SUMMARY.md").exists()


def test_the_live_board_showed_both_flows_holding_database_slots(demo_run, rest) -> None:  # type: ignore[no-untyped-def]
    from slot_tools.history import read_intervals, shared_moments

    _, _, runs, _, board = demo_run
    assert board.readings, "the board never answered while serve-all ran"
    reading = next((r for r in board.readings if _holding(r, "database") >= {"ingest", "reports"}), None)
    if reading is None:
        shared = shared_moments(read_intervals(rest, ["database"], flow_run_ids=[r.id for r in runs]))
        pytest.fail(f"none of {len(board.readings)} board readings showed both flows holding database "
                    f"slots; the task-run records show them sharing for {shared:.1f} s")
    assert {v["limit"] for v in reading["limits"]} == {"tag:database", "tag:api"}
    database = next(v for v in reading["limits"] if v["tag"] == "database")
    assert database["lanes"] == 3 and len(database["holders"]) <= 3
    assert set(reading["colours"]) >= {"ingest", "reports"}
    assert max(len(next(v for v in r["limits"] if v["tag"] == "database")["holders"]) for r in board.readings) <= 3


def test_a_real_browser_renders_lanes_held_by_both_flows(demo_run) -> None:  # type: ignore[no-untyped-def]
    *_, board = demo_run
    assert board.dom is not None, f"Chromium never rendered both flows on database lanes ({board.dom_attempts} tries)"
    assert _rendered_lanes(board.dom, "database") >= {"ingest", "reports"}
    assert "http://" not in board.dom.replace("http://127.0.0.1", ""), "the page refers to something off this machine"
