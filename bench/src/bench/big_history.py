"""The inspector on a big history: ``slots``, ``slots history --since 1d`` and the live board,
timed against a server holding 100,000 finished task runs and 160 waiters.

The history is built through Prefect's REST API, the way runs record it (each task run
created Running, which the server forces, then set Completed with a forced state): ``--task-runs`` task runs
tagged ``database`` or ``api`` in flow runs of ``ingest`` and ``reports``, plus one Running
flow run of ``ingest`` with ``--waiters`` Pending ``database`` task runs. No slot is taken:
forced states skip orchestration, and the counters stay at 0. The REST API stamps every
state with the time it is set (a state's timestamp cannot be given), so the whole history
lies in the minutes the build takes: ``slots history --since 1d`` reads all of it.

    uv run python -m bench.big_history                    # 100,000 runs: some 50 minutes to build on 2 cores
    uv run python -m bench.big_history --task-runs 20000
    uv run python -m bench.big_history --api-url http://127.0.0.1:PORT/api   # time it again, no build
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
from pathlib import Path

import httpx

from common.prefect_api import api_url_for
from local_server.prefect_server import LocalPrefectServer
from local_server.processes import free_port

TASKS_PER_FLOW_RUN = 100
CONCURRENCY = 16  # requests in flight while building


async def _completed(http: httpx.AsyncClient, kind: str, run_id: str) -> None:
    """Set a run Completed, forced (no orchestration: nothing acquires or releases a slot)."""
    body = {"state": {"type": "COMPLETED"}, "force": True}
    (await http.post(f"{kind}/{run_id}/set_state", json=body)).raise_for_status()


async def build(api: str, task_runs: int, waiters: int) -> None:
    """Write the history and the waiters through the REST API, ``CONCURRENCY`` requests at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=api.rstrip("/") + "/", timeout=60) as http:
        flows = {name: (await http.post("flows/", json={"name": name})).json()["id"] for name in ("ingest", "reports")}

        async def flow_run(index: int) -> None:
            async with gate:
                flow = ("ingest", "reports")[index % 2]
                created = await http.post("flow_runs/", json={"flow_id": flows[flow], "name": f"history-{index}",
                                                              "state": {"type": "RUNNING"}})
                created.raise_for_status()
                run_id = created.json()["id"]
            for i in range(TASKS_PER_FLOW_RUN):
                n = index * TASKS_PER_FLOW_RUN + i
                if n >= task_runs:
                    break
                async with gate:
                    body = {"flow_run_id": run_id, "task_key": f"history-{i % 7}", "dynamic_key": str(i),
                            "name": f"{'extract-table' if n % 2 == 0 else 'fetch-reference-page'}-{n}",
                            "tags": ["database" if n % 2 == 0 else "api"], "state": {"type": "RUNNING"}}
                    made = await http.post("task_runs/", json=body)
                    made.raise_for_status()
                    await _completed(http, "task_runs", made.json()["id"])
            async with gate:
                await _completed(http, "flow_runs", run_id)

        started = time.monotonic()
        runs = -(-task_runs // TASKS_PER_FLOW_RUN)
        await asyncio.gather(*(flow_run(i) for i in range(runs)))
        print(f"built {task_runs} task runs in {runs} flow runs in {time.monotonic() - started:.0f} s", flush=True)

        live = (await http.post("flow_runs/", json={"flow_id": flows["ingest"], "name": "waiting",
                                                    "state": {"type": "RUNNING"}})).json()["id"]

        async def waiter(i: int) -> None:
            async with gate:
                body = {"flow_run_id": live, "task_key": "extract-table", "dynamic_key": str(i),
                        "name": f"extract-table-w{i}", "tags": ["database"]}
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


def time_board(env: dict[str, str], bin_dir: Path, reads: int = 10) -> list[float]:
    """Latency of the board's data endpoint (what its page fetches every refresh)."""
    port = free_port()
    board = subprocess.Popen([str(bin_dir / "slots"), "board", "--port", str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
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
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PREFECT_API_URL=api)
    total = httpx.post(f"{api}/task_runs/count", json={}, timeout=60).json()
    print(f"server {api}: {total} task runs")
    for label, args, goal in (
        ("slots", [str(bin_dir / "slots")], 2.0),
        ("slots --json", [str(bin_dir / "slots"), "--json"], 2.0),
        ("slots history --since 1d", [str(bin_dir / "slots"), "history", "--since", "1d"], 10.0),
    ):
        times, output = timed_command(args, env)
        waiting = output.count("extract-table-w")
        print(f"{label:<28} {min(times):5.2f} s best, {max(times):5.2f} s worst of {len(times)} "
              f"(goal < {goal:g} s; whole process, Python start included)"
              + (f"; {waiting} waiters named" if label.startswith("slots") and "history" not in label else ""))
    started = time.monotonic()
    subprocess.run([str(bin_dir / "python"), "-c", "import slot_tools.cli"], env=env, check=True)
    print(f"{'(python start + imports)':<28} {time.monotonic() - started:5.2f} s")
    board = time_board(env, bin_dir)
    print(f"{'board /api/board':<28} {statistics.median(board):5.2f} s median, {max(board):5.2f} s worst "
          f"of {len(board)} (goal < 1 s)")


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
    server = LocalPrefectServer(home=home / "prefect", port=free_port())
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
