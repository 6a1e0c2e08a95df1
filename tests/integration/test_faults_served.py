"""Faults on served deployments: a flood of four flow runs at once, a cancellation, and a limit
deleted under a served run (killed runs and the watchdog: test_control_plane).

One `serve-all` (against the session server, with its own data folder, on its defaults: the
watchdog on) serves both deployments; flow runs are created through the API, so each runs
in its own process the way production runs do. What is asserted comes from the server's
task-run records, the limit counters, the demo API's counters, serve-all's log and the lake
on disk.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from support import (
    ROOT,
    SERVING,
    Stack,
    assert_every_limit_held,
    linked_data_dir,
    script,
    slot_usage,
    stop_with_ctrl_c,
    trigger,
    wait_final,
    wait_for_text,
)

pytestmark = pytest.mark.integration

FLOOD_TABLES = ("customers", "products", "orders", "order_items", "payments", "shipments", "reviews", "page_views")
LEASE_SECONDS = 60  # Prefect 3.9.1's slot lease (docs/prefect-facts.md, fact 5)


@dataclass(frozen=True)
class Served:
    data: Path  # its data folder
    log: Path  # serve-all's output
    pid: int  # serve-all's process: the parent of every flow-run process


@pytest.fixture(scope="module")
def served(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """serve-all with a private data folder (the session's lake is copied in when there is
    one, so reports read lake files while the ingests replace them)."""
    root = tmp_path_factory.mktemp("served")
    data = linked_data_dir(stack, root)
    if (stack.data_dir / "lake").exists():
        shutil.copytree(stack.data_dir / "lake", data / "lake", ignore=shutil.ignore_patterns(".staging"))
    log_path = root / "serve-all.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [script("serve-all")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=stack.env(ETL_DATA_DIR=str(data)),
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for_text(log_path, SERVING, proc, timeout=120)
        yield Served(data, log_path, proc.pid)
    finally:
        stop_with_ctrl_c(proc)


def test_flood_of_four_runs_holds_every_limit_and_loses_nothing(
    served: Served, stack: Stack, prefect_client, rest
) -> None:
    from common.lake import dataset_path, parquet_rows

    httpx.post(f"{stack.demo_api_url}/stats/reset", timeout=5).raise_for_status()
    started = time.monotonic()
    # Ingest on 8 of the 20 tables (orders and payments among them: the enriched ones): 16
    # extracts and 20 report queries still flood the 3 database slots.
    ids = [
        trigger(prefect_client, name, tables=list(FLOOD_TABLES))
        if name == "ingest/local"
        else trigger(prefect_client, name)
        for name in ("ingest/local", "reports/local") * 2
    ]
    runs = wait_final(prefect_client, ids, timeout=600)
    print(
        f"\nflood: 4 runs over after {time.monotonic() - started:.0f} s: "
        + ", ".join(f"{r.name}={r.state_type.value}" for r in runs.values())
    )
    for run in runs.values():
        assert run.state_type.value == "COMPLETED" or (run.state and run.state.message), (
            f"{run.name} ended with no reason"
        )
    assert all(r.state_type.value == "COMPLETED" for r in runs.values()), {
        r.name: r.state.message for r in runs.values()
    }

    # A healthy flood hands slots off all the time; the watchdog must never take a hand-off for
    # a leak (freeing a slot a live task run holds is what would let a fourth one in).
    repairs = [line for line in served.log.read_text(errors="replace").splitlines() if "auto-repair" in line]
    assert not repairs, f"the watchdog freed slots during a healthy flood: {repairs}"
    assert_every_limit_held(rest, ids)

    stats = httpx.get(f"{stack.demo_api_url}/stats", timeout=5).json()
    print("demo API:", stats)
    assert stats["requests"] > 0 and stats["rejected_429"] == 0, stats

    lake = served.data / "lake"
    with duckdb.connect(str(served.data / "demo" / "shop.duckdb"), read_only=True) as con:
        for table in FLOOD_TABLES:
            expected = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            assert parquet_rows(dataset_path(lake, table)) == expected, f"{table}: lake and database differ"
    eur = duckdb.execute(
        "SELECT count(*) FILTER (WHERE total_amount_eur IS NULL), count(*) FROM read_parquet(?)",
        [str(dataset_path(lake, "orders"))],
    ).fetchone()
    assert eur is not None and eur[0] == 0 and eur[1] > 0, "orders not enriched"
    assert not any((lake / ".staging").iterdir()), "staging left behind"
    assert (served.data / "reports" / "SUMMARY.md").exists()


def test_cancelled_run_frees_its_database_slots(served: Served, stack: Stack, prefect_client) -> None:
    """Cancel the way the CLI and the UI do (the flow run goes to Cancelling on the server;
    the runner that serves it stops the run) while it holds database slots."""
    from prefect.client.schemas.filters import TaskRunFilter, TaskRunFilterId
    from prefect.states import Cancelling

    assert slot_usage(stack.api_url) == (0, 0), "slots taken before the test"
    run_id = trigger(prefect_client, "ingest/local")
    deadline = time.monotonic() + 180
    while True:
        holders = prefect_client.read_concurrency_limit_by_tag("database").active_slots
        held = (
            prefect_client.read_task_runs(task_run_filter=TaskRunFilter(id=TaskRunFilterId(any_=holders)))
            if holders
            else []
        )
        if any(t.flow_run_id == run_id for t in held):
            break
        assert time.monotonic() < deadline, "the run never held a database slot"
        time.sleep(0.2)

    cancelled_at = time.monotonic()
    prefect_client.set_flow_run_state(run_id, Cancelling())
    print(f"\ncancelled while holding {len(held)} database slot(s)")
    # Freed by the cancel, not by lease expiry: a slot is taken after its task run went
    # Pending, so its lease cannot expire before that moment plus the lease.
    pending = min(t.expected_start_time or t.created for t in held if t.flow_run_id == run_id)
    expiry = pending + timedelta(seconds=LEASE_SECONDS)
    while slot_usage(stack.api_url) != (0, 0):
        assert datetime.now(UTC) < expiry, (
            f"slots still taken when their leases could expire: {slot_usage(stack.api_url)}"
        )
        time.sleep(0.25)
    freed = time.monotonic() - cancelled_at
    print(
        f"database slots free again {freed:.1f} s after the cancel, "
        f"{(expiry - datetime.now(UTC)).total_seconds():.0f} s before lease expiry"
    )
    state = wait_final(prefect_client, [run_id], timeout=60)[run_id].state
    print(f"flow run ended {state.type.value}: {state.message}")
    assert state.type.value == "CANCELLED"

    # Prefect stops a cancelled run with a signal the engine turns into an exception: the run's
    # own cleanup still runs, and nothing is left for the next run to sweep.
    assert not (served.data / "lake" / ".staging" / str(run_id)).exists(), "the cancelled run left its staging"


def test_a_served_run_checks_the_limits_itself_and_refuses_before_any_task(
    served: Served, stack: Stack, prefect_client
) -> None:
    """The limit goes away after serve-all started (someone deleted it in the UI): the next
    served run refuses at its start, naming the tag, before any task runs unlimited."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    prefect_client.delete_global_concurrency_limit_by_name("tag:database")
    try:
        run_id = trigger(prefect_client, "reports/local")
        state = wait_final(prefect_client, [run_id], timeout=180)[run_id].state
        print(f"\nserved reports ended {state.type.value}: {state.message}")
        assert state.type.value == "FAILED"
        assert "tag 'database' has no limit on the server" in (state.message or "")
        tasks = prefect_client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        assert tasks == [], f"{len(tasks)} task runs were created before the refusal"
    finally:
        assert subprocess.run([script("limits"), "sync"], capture_output=True, cwd=ROOT, timeout=120).returncode == 0
