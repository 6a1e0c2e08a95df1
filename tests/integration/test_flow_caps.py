"""Reserved capacity per flow: with `database = 3` and ingest capped at 2, a flooding ingest
cannot keep reports from the database. Enforced by Prefect itself: ingest's tasks also carry
the tag `database:ingest` (limit 2), acquired atomically with `database`.

Reports is capped at 2 as well, so while both flows have database work neither holds all
three slots: both flows hold database lanes at once by construction, which is when the live
slot board (``uv run slots board``) is read and rendered in a real browser.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from support import (
    ROOT,
    Board,
    Stack,
    capped_limits,
    free_port,
    holding,
    rendered_lanes,
    run_cli,
    scraped,
    script,
    wait_for_text,
    watching_board,
)

pytestmark = pytest.mark.integration


def _start(name: str, *args: str, env: dict[str, str], **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([script(name), *args], text=True, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, **popen)


@dataclass
class CappedRun:
    started_at: datetime
    board: Board


@pytest.fixture(scope="module")
def capped_run(stack: Stack, prefect_client, tmp_path_factory: pytest.TempPathFactory):
    """ingest floods the database; once it holds its 2 slots, reports starts; the live board
    (its own process, as a user starts it) is read, and rendered by Chromium, meanwhile."""
    folder = tmp_path_factory.mktemp("caps")
    limits = capped_limits(folder / "limits.toml")
    env = stack.env(ETL_LIMITS_FILE=str(limits))
    synced = run_cli("limits", "sync", env=env)
    assert synced.returncode == 0 and "tag:database:ingest" in synced.stdout, synced.stdout + synced.stderr
    board_port, board_log = free_port(), folder / "board.log"
    with open(board_log, "w") as log:
        board_proc = _start("slots", "board", "--port", str(board_port), env=env, stdout=log, stderr=subprocess.STDOUT)
    started_at = datetime.now(UTC)
    ingest = reports = None
    try:
        wait_for_text(board_log, "slot board:", board_proc, timeout=60)
        ingest = _start("ingest", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        flows = [ingest]
        with watching_board(
            f"http://127.0.0.1:{board_port}",
            lambda: any(p.poll() is None for p in flows),
            render=("database", {"ingest", "reports"}),
        ) as board:
            deadline = time.monotonic() + 120
            while prefect_client.read_global_concurrency_limit_by_name("tag:database:ingest").active_slots < 2:
                assert ingest.poll() is None and time.monotonic() < deadline, "ingest never took its 2 slots"
                time.sleep(0.2)
            reports = _start("reports", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            flows.append(reports)
            for proc in (ingest, reports):
                out, err = proc.communicate(timeout=300)
                assert proc.returncode == 0, err[-3000:]
    finally:
        for child in (ingest, reports, board_proc):
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
        assert run_cli("limits", "sync", "--prune").returncode == 0
    return CappedRun(started_at, board)


def test_flooding_ingest_leaves_a_slot_for_reports(capped_run: CappedRun, prefect_client, rest) -> None:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    from slot_tools.history import peak_concurrency, read_intervals, wait_until_recorded

    started_at = capped_run.started_at
    runs = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime.model_validate({"after_": started_at}))
    )
    ids = [r.id for r in runs]
    assert wait_until_recorded(rest, ids)
    intervals = read_intervals(rest, ["database"], flow_run_ids=ids)
    by_flow = {f: [iv for iv in intervals if iv.flow == f] for f in ("ingest", "reports")}
    assert peak_concurrency(by_flow["ingest"])[0] == 2, "ingest held more (or fewer) than its cap"
    assert peak_concurrency(by_flow["reports"])[0] <= 2, "reports held more than its cap"
    assert peak_concurrency(intervals)[0] <= 3
    first = min(by_flow["reports"], key=lambda iv: iv.start)
    still_waiting = [iv for iv in by_flow["ingest"] if iv.pending_at and iv.pending_at < first.start < iv.start]
    print(
        f"\nreports' first database task waited {first.waited:.2f} s while "
        f"{len(still_waiting)} ingest extracts were still waiting for a slot"
    )
    assert still_waiting, "reports only got a slot after ingest's flood drained"
    # the cap limit is gone again after the prune
    assert "database:ingest" not in {
        g.name.removeprefix("tag:") for g in prefect_client.read_global_concurrency_limits()
    }


def test_the_live_board_showed_both_flows_holding_database_slots(capped_run: CappedRun) -> None:
    readings = capped_run.board.readings
    assert readings, "the board never answered while the flows ran"
    reading = next((r for r in readings if holding(r, "database") >= {"ingest", "reports"}), None)
    assert reading is not None, f"none of {len(readings)} board readings showed both flows holding database slots"
    assert {v["limit"] for v in reading["limits"]} == {
        "tag:database",
        "tag:database:ingest",
        "tag:database:reports",
        "tag:api",
    }
    database = next(v for v in reading["limits"] if v["tag"] == "database")
    assert database["lanes"] == 3 and len(database["holders"]) <= 3
    assert set(reading["colours"]) >= {"ingest", "reports"}
    assert max(len(next(v for v in r["limits"] if v["tag"] == "database")["holders"]) for r in readings) <= 3


def test_the_boards_metrics_parse_and_show_both_flows_holding_database_slots(capped_run: CappedRun) -> None:
    """`/metrics` beside the board, parsed by prometheus-client's own parser, while both flows ran."""
    scrapes = [scraped(text) for text in capped_run.board.scrapes]
    assert scrapes, "the board's /metrics never answered while the flows ran"
    database = (("tag", "database"),)
    assert {m[("shared_limits_slots", database)] for m in scrapes} == {3.0}
    both = [
        m
        for m in scrapes
        if all(
            m.get(("shared_limits_holders", (("flow", f), ("tag", "database"))), 0) >= 1 for f in ("ingest", "reports")
        )
    ]
    assert both, f"no scrape of {len(scrapes)} showed both flows holding database slots"
    assert all(m[("shared_limits_slots_used", database)] <= 3 for m in scrapes)
    assert any(m.get(("shared_limits_waiters", database), 0) >= 1 for m in scrapes), "never a waiter"
    waits = [m[("shared_limits_slot_wait_seconds_count", database)] for m in scrapes]
    assert waits == sorted(waits) and waits[-1] >= 3, f"the wait histogram did not count the holders: {waits}"


def test_a_real_browser_renders_lanes_held_by_both_flows(capped_run: CappedRun) -> None:
    board = capped_run.board
    assert board.dom is not None, (
        f"Chromium never rendered both flows on database lanes ({board.looks} looks) {board.render_error}"
    )
    assert rendered_lanes(board.dom, "database") >= {"ingest", "reports"}
    assert "http://" not in board.dom.replace("http://127.0.0.1", ""), "the page refers to something off this machine"
