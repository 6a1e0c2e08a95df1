"""The inspector on a big history: ``slots``, ``slots history --since 1d`` and the live board,
timed against a server holding 100,000 finished task runs and 160 waiters.

The history is written the way a served run records it: task runs reach Prefect 3 as
state events (``prefect.task-run.Completed``, sent on the events websocket by Prefect's
own ``PrefectEventsClient``) that the server's task-run recorder turns into task runs, so
each event can carry its own moment. ``--task-runs`` task runs tagged ``database`` or
``api``, spread over the last 20 hours (never more at once than the limits allow), in flow
runs of ``ingest`` and ``reports`` created through the REST API; plus one Running flow run
of ``ingest`` with ``--waiters`` Pending ``database`` task runs. No slot is taken: the
counters stay at 0. ``slots history --since 1d`` reads all of it.

    uv run python -m bench.big_history                    # 100,000 runs: ~4 min to build, ~6 in all
    uv run python -m bench.big_history --task-runs 20000
    uv run python -m bench.big_history --api-url http://127.0.0.1:PORT/api   # time it again, no build

``slots history`` is timed first with an empty slot ledger (it reads every task run from the
server), then again: it reads the server only from the ledger's horizon on; then as the first
history on a stack serve-all serves, after its ledger keeper's pass (timed too).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import uuid4

import httpx

from common.prefect_api import api_url_for
from local_server.prefect_server import LocalPrefectServer
from local_server.processes import free_port

if TYPE_CHECKING:
    from prefect.events.schemas.events import Event

TASKS_PER_FLOW_RUN = 100
CONCURRENCY = 16  # requests in flight while building
SPAN = timedelta(hours=20)  # the history's reach: inside ``--since 1d``
EVENTS_AHEAD = 4000  # events sent ahead of what is recorded (the server's queues hold 10,000, then drop)
# The server's recorder and event persister write 500 events a transaction instead of 1 and
# 20 (Prefect's defaults): a build at ~35 task runs a second is ~50 minutes for 100,000.
# Server settings about writing only; what is timed are reads.
BUILD_WRITES = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "500",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "500",
}


async def _completed(http: httpx.AsyncClient, kind: str, run_id: str) -> None:
    """Set a run Completed, forced (no orchestration: nothing acquires or releases a slot)."""
    body = {"state": {"type": "COMPLETED"}, "force": True}
    (await http.post(f"{kind}/{run_id}/set_state", json=body)).raise_for_status()


def _task_run_event(n: int, flow_run_id: str, first: datetime, step: timedelta) -> Event:
    """Task run ``n`` as the Completed event a run's engine sends: even ``n`` hold ``database``,
    odd ``api``; each tag's runs start ``2 * step`` apart and last under three such gaps, so
    at most 3 overlap (both limits hold)."""
    from prefect.events.schemas.events import Event

    tag, name = ("database", "extract-table") if n % 2 == 0 else ("api", "fetch-reference-page")
    start = first + step * n
    end = start + 2 * step * (1 + (n // 2) % 3) * 0.95
    task_run_id = uuid4()
    return Event.model_validate(
        {
            "id": uuid4(),
            "occurred": end,
            "event": "prefect.task-run.Completed",
            "resource": {
                "prefect.resource.id": f"prefect.task-run.{task_run_id}",
                "prefect.resource.name": f"{name}-{n}",
                "prefect.orchestration": "client",
            },  # what the task-run recorder records
            "related": [
                {"prefect.resource.id": f"prefect.flow-run.{flow_run_id}", "prefect.resource.role": "flow-run"}
            ],
            "payload": {
                "intended": {"from": "RUNNING", "to": "COMPLETED"},
                "initial_state": {"type": "RUNNING", "name": "Running"},
                "validated_state": {"type": "COMPLETED", "name": "Completed", "message": "", "state_details": {}},
                "task_run": {
                    "name": f"{name}-{n}",
                    "task_key": f"history-{n % 7}",
                    "dynamic_key": str(n),
                    "tags": [tag],
                    "run_count": 1,
                    "flow_run_run_count": 1,
                    "expected_start_time": (start - step / 2).isoformat(),
                    "start_time": start.isoformat(),
                    "end_time": end.isoformat(),
                    "total_run_time": (end - start).total_seconds(),
                },
            },
        }
    )


async def build(api: str, task_runs: int, waiters: int) -> None:
    """The flow runs and the waiters through the REST API, ``CONCURRENCY`` requests at a
    time; the task runs as events, then wait until the server has recorded them all."""
    from prefect.events.clients import PrefectEventsClient

    gate = asyncio.Semaphore(CONCURRENCY)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=api.rstrip("/") + "/", timeout=60) as http:
        flows = {name: (await http.post("flows/", json={"name": name})).json()["id"] for name in ("ingest", "reports")}

        async def flow_run(index: int) -> str:
            async with gate:
                created = await http.post(
                    "flow_runs/",
                    json={
                        "flow_id": flows[("ingest", "reports")[index % 2]],
                        "name": f"history-{index}",
                        "state": {"type": "RUNNING"},
                    },
                )
                created.raise_for_status()
                run_id = str(created.json()["id"])
                await _completed(http, "flow_runs", run_id)
                return run_id

        flow_runs = await asyncio.gather(*(flow_run(i) for i in range(-(-task_runs // TASKS_PER_FLOW_RUN))))
        print(f"{len(flow_runs)} flow runs in {time.monotonic() - started:.0f} s", flush=True)

        async def recorded_up_to(count: int) -> None:
            deadline = time.monotonic() + 600
            while (recorded := (await http.post("task_runs/count", json={})).json()) < count:
                if time.monotonic() > deadline:
                    raise SystemExit(f"error: the server recorded {recorded} of {count} task runs in 10 minutes")
                await asyncio.sleep(1)

        first, step = datetime.now(UTC) - SPAN, SPAN / max(task_runs, 1)
        async with PrefectEventsClient(api_url=api) as events:
            for n in range(task_runs):
                await events.emit(_task_run_event(n, flow_runs[n // TASKS_PER_FLOW_RUN], first, step))
                if (n + 1) % EVENTS_AHEAD == 0:  # the server's in-memory queue drops what overflows it
                    await recorded_up_to(n + 1 - EVENTS_AHEAD // 2)
        await recorded_up_to(task_runs)
        print(
            f"built {task_runs} task runs in {len(flow_runs)} flow runs in {time.monotonic() - started:.0f} s "
            f"(sent as events, recorded by the server)",
            flush=True,
        )

        live = (
            await http.post(
                "flow_runs/", json={"flow_id": flows["ingest"], "name": "waiting", "state": {"type": "RUNNING"}}
            )
        ).json()["id"]

        async def waiter(i: int) -> None:
            async with gate:
                body = {
                    "flow_run_id": live,
                    "task_key": "extract-table",
                    "dynamic_key": str(i),
                    "name": f"extract-table-w{i}",
                    "tags": ["database"],
                }
                (await http.post("task_runs/", json=body)).raise_for_status()  # Pending, the default

        await asyncio.gather(*(waiter(i) for i in range(waiters)))
        print(f"plus {waiters} task runs waiting for a database slot in one Running flow run", flush=True)


def timed_command(args: list[str], env: dict[str, str], repeat: int = 3) -> tuple[list[float], str]:
    """Wall times of a CLI command run ``repeat`` times (a fresh process each time, as typed)."""
    times, output = [], ""
    for _ in range(repeat):
        started = time.monotonic()
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        times.append(time.monotonic() - started)
        output = done.stdout + done.stderr
    return times, output


def said(output: str) -> str:
    """A command's last line of output: its verdict (``every limit held``, or the error)."""
    return output.strip().splitlines()[-1] if output.strip() else "(nothing)"


def time_board(env: dict[str, str], bin_dir: Path, reads: int = 10) -> list[float]:
    """Latency of the board's data endpoint (what its page fetches every refresh)."""
    port = free_port()
    board = subprocess.Popen(
        [str(bin_dir / "slots"), "board", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/board", timeout=10).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or board.poll() is not None:
                    raise SystemExit("error: the board never answered") from None
                time.sleep(0.3)
        times = []
        for _ in range(reads):
            started = time.monotonic()
            httpx.get(f"http://127.0.0.1:{port}/api/board", timeout=10).raise_for_status()
            times.append(time.monotonic() - started)
        return times
    finally:
        board.terminate()
        board.wait(timeout=30)


def report(api: str) -> None:
    """Time each command on the server at ``api``, with a data folder of its own: the
    history's first read fills a slot ledger there, the next ones read the server only from
    the ledger's horizon on (``slot_tools.ledger``)."""
    with tempfile.TemporaryDirectory(prefix="big-history-data-") as data:
        _report(api, dict(os.environ, PREFECT_API_URL=api, ETL_DATA_DIR=data))


def _report(api: str, env: dict[str, str]) -> None:
    bin_dir = Path(sys.executable).parent
    total = httpx.post(f"{api}/task_runs/count", json={}, timeout=60).json()
    print(f"server {api}: {total} task runs")
    history = [str(bin_dir / "slots"), "history", "--since", "1d"]
    for label, args, goal, repeat in (
        ("slots", [str(bin_dir / "slots")], 2.0, 3),
        ("slots --json", [str(bin_dir / "slots"), "--json"], 2.0, 3),
        ("slots history --since 1d", history, 10.0, 1),
        ("  again (ledger kept)", history, 10.0, 3),
    ):
        times, output = timed_command(args, env, repeat)
        waiting = output.count("extract-table-w")
        print(
            f"{label:<28} {min(times):5.2f} s best, {max(times):5.2f} s worst of {len(times)} "
            f"(goal < {goal:g} s; whole process, Python start included)"
            + (f"; {waiting} waiters named" if args is not history else f"; it said: {said(output)}")
        )
    _served_first_history(api, env, history)
    started = time.monotonic()
    subprocess.run([str(bin_dir / "python"), "-c", "import slot_tools.cli"], env=env, check=True)
    print(f"{'(python start + imports)':<28} {time.monotonic() - started:5.2f} s")
    board = time_board(env, bin_dir)
    print(
        f"{'board /api/board':<28} {statistics.median(board):5.2f} s median, {max(board):5.2f} s worst "
        f"of {len(board)} (goal < 1 s)"
    )


def _served_first_history(api: str, env: dict[str, str], history: list[str]) -> None:
    """The first ``slots history`` of the day on a served stack: serve-all's ledger keeper
    (``slot_tools.ledger.Keeper``, a background pass a minute) has read the day already."""
    from common.resources import get_registry
    from slot_tools.ledger import LEDGER_FILE, Keeper, Ledger

    with tempfile.TemporaryDirectory(prefix="big-history-served-") as data:
        keeper = Keeper(Ledger(Path(data) / LEDGER_FILE, api), get_registry().tag_limits())
        started = time.monotonic()
        keeper.tick()
        print(
            f"{'serve-all ledger pass':<28} {time.monotonic() - started:5.2f} s (its first, in the background; "
            "a minute later one reads the last minutes)"
        )
        times, output = timed_command(history, dict(env, ETL_DATA_DIR=data), 1)
        print(f"{'  first history, served':<28} {times[0]:5.2f} s (goal < 10 s); it said: {said(output)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task-runs", type=int, default=100_000)
    parser.add_argument("--waiters", type=int, default=160)
    parser.add_argument("--api-url", help="time an existing server's history instead of building one")
    args = parser.parse_args()
    if args.api_url:
        report(args.api_url.rstrip("/"))
        return
    home = Path(tempfile.mkdtemp(prefix="big-history-"))
    server = LocalPrefectServer(home=home / "prefect", port=free_port(), extra_env=BUILD_WRITES)
    server.start()
    try:
        server.wait_healthy(120)
        api = api_url_for("127.0.0.1", server.port)
        env = dict(os.environ, PREFECT_API_URL=api, ETL_DATA_DIR=str(home / "data"))
        subprocess.run([Path(sys.executable).parent / "limits", "sync"], env=env, check=True, capture_output=True)
        asyncio.run(build(api, args.task_runs, args.waiters))
        report(api)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
