"""``uv run bench``: how efficiently flows in separate processes share one limit.

K flows in K processes (as ``serve`` runs them) each submit N tasks of d seconds on one tag
with limit L. From the server's own task-run records it computes:

* efficiency: ideal makespan ceil(K*N/L) * d over the measured makespan (first start to last end);
* utilization: busy slot-seconds / (L * makespan);
* hand-off gap: with starts and ends sorted, the i-th start after the first L takes the slot
  freed by the i-th end; gap = that start - that end (median, p95, max);
* peak concurrency (must never exceed L);
* each gap cut in three (release, grant, to Running) from the slot events every flow process
  emits (``bench.handoff_phases``).

The same run measures the baseline, a local thread pool of L in one flow (no sharing).
SCHEDULING BENCHMARK ONLY: the task bodies sleep (see ``bench.worker``). The server is
started exactly as serve-all starts it (``local_server.prefect_server.LocalPrefectServer``), unless
``--api-url`` names one; ``--server-env KEY=VALUE`` tries a server setting.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from bench.handoff_phases import median_p95, phases, slot_events
from bench.server_load import measured
from common.prefect_api import prefect_settings, use_api
from common.prefect_rest import PrefectRest
from local_server.prefect_server import LocalPrefectServer
from local_server.processes import free_port

app = typer.Typer(add_completion=False, help=__doc__, invoke_without_command=True)


@dataclass(frozen=True)
class Case:
    flows: int
    tasks: int
    seconds: float
    limit: int

    @classmethod
    def parse(cls, text: str) -> Case:
        try:
            k, n, d, lim = text.split(",")
            return cls(int(k), int(n), float(d), int(lim))
        except ValueError:
            raise typer.BadParameter(f"{text!r}: use K,N,d,L (e.g. 2,10,1,3)") from None

    @property
    def ideal(self) -> float:
        return math.ceil(self.flows * self.tasks / self.limit) * self.seconds


@contextmanager
def _server(
    api_url: str, server_db: str = "postgres", extra: dict[str, str] | None = None
) -> Iterator[tuple[str, LocalPrefectServer | None]]:
    """The given server (no handle on it), or a fresh one configured exactly as serve-all
    configures it."""
    if api_url:
        use_api(api_url)
        yield api_url, None
        return
    server = LocalPrefectServer(
        home=Path(tempfile.mkdtemp(prefix="bench-prefect-")), port=free_port(), backend=server_db, extra_env=extra or {}
    )
    server.start()
    try:
        server.wait_healthy(120)
        use_api(server.api_url)
        yield server.api_url, server
    finally:
        server.stop()


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _flow_run_ids(procs: list[subprocess.Popen[str]], timeout: float) -> list[uuid.UUID]:
    ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark flow failed: {err.strip().splitlines()[-1] if err.strip() else '?'}")
        ids.append(uuid.UUID(next(line for line in out.splitlines() if line.startswith("FLOW_RUN_ID=")).split("=")[1]))
    return ids


def _intervals(rest: PrefectRest, flow_run_ids: list[uuid.UUID]) -> list[tuple[datetime, datetime, int]]:
    """(start, end, which flow) per finished task run of the given flow runs."""
    from slot_tools.history import wait_until_recorded

    wait_until_recorded(rest, flow_run_ids, timeout=30)
    runs = rest.task_runs_of(flow_run_ids)
    index = {run_id: i for i, run_id in enumerate(flow_run_ids)}
    return [
        (r.start_time, r.end_time, index[r.flow_run_id])
        for r in runs
        if r.start_time and r.end_time and r.flow_run_id in index
    ]


def metrics(case: Case, intervals: list[tuple[datetime, datetime, int]]) -> dict[str, Any]:
    """Efficiency, utilization, hand-off gaps and peak from (start, end, flow) triples."""
    starts = sorted(s for s, _, _ in intervals)
    ends = sorted(e for _, e, _ in intervals)
    makespan = (ends[-1] - starts[0]).total_seconds()
    busy = sum((e - s).total_seconds() for s, e, _ in intervals)
    gaps = [(starts[case.limit + i] - ends[i]).total_seconds() for i in range(len(starts) - case.limit)]
    events = sorted([(s, 1) for s in starts] + [(e, -1) for e in ends], key=lambda x: (x[0], x[1]))
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    gap_median, gap_p95 = median_p95(gaps) if gaps else (None, None)
    return {
        "tasks": len(intervals),
        "makespan_s": round(makespan, 3),
        "ideal_s": case.ideal,
        "efficiency": round(case.ideal / makespan, 3),
        "utilization": round(busy / (case.limit * makespan), 3),
        "gap_median_s": gap_median,
        "gap_p95_s": gap_p95,
        "gap_max_s": round(max(gaps), 3) if gaps else None,
        "peak": peak,
        # Where the rest of the makespan goes: the first L slots filling, and each task's
        # own Running-to-Completed overhead beyond d.
        "ramp_s": round((starts[min(case.limit, len(starts)) - 1] - starts[0]).total_seconds(), 3),
        "run_overhead_s": round(busy / len(intervals) - case.seconds, 3),
        # The raw record, seconds from the first start: [flow, start, end] by start.
        "task_runs": [
            [f, round((s - starts[0]).total_seconds(), 3), round((e - starts[0]).total_seconds(), 3)]
            for s, e, f in sorted(intervals)
        ],
    }


def run_case(client: Any, case: Case, timeout: float, server: LocalPrefectServer | None = None) -> dict[str, Any]:
    """The shared run (K processes, one limit) and the local baseline, for one case; the
    server tier's load is measured during the shared run."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    tag = f"bench-{uuid.uuid4().hex[:8]}"
    limit_id = client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=f"tag:{tag}", limit=case.limit))
    with PrefectRest(str(client.api_url)) as rest:
        try:
            since = datetime.now(UTC)
            with measured(server, str(client.api_url).rstrip("/")) as load:
                shared = [
                    _spawn(["shared", "--tag", tag, "--tasks", str(case.tasks), "--seconds", str(case.seconds)])
                    for _ in range(case.flows)
                ]
                ids = _flow_run_ids(shared, timeout)
            intervals = _intervals(rest, ids)
            shared_m = metrics(case, intervals)
            shared_m |= load.figures(shared_m["makespan_s"])
            events = slot_events(rest, limit_id, since, datetime.now(UTC), expected=len(intervals))
            shared_m |= phases(case.limit, intervals, events)
        finally:
            client.delete_global_concurrency_limit_by_name(f"tag:{tag}")
        local = _spawn(
            [
                "local",
                "--tasks",
                str(case.flows * case.tasks),
                "--seconds",
                str(case.seconds),
                "--workers",
                str(case.limit),
            ]
        )
        local_m = metrics(case, _intervals(rest, _flow_run_ids([local], timeout)))
    return {"case": asdict(case), "shared": shared_m, "local_pool": local_m}


def _print(results: list[dict[str, Any]], config: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"slot hand-off ({config['server_db']} server, tag wait cap "
        f"{config['slot_wait_cap_s']} s{', ' + config['extra'] if config['extra'] else ''})"
    )
    for col in (
        "case K,N,d,L",
        "run",
        "makespan",
        "ideal",
        "efficiency",
        "utilization",
        "gap median",
        "gap p95",
        "gap max",
        "ramp",
        "run +",
        "peak",
        "server CPU",
        "PG CPU",
        "flows CPU",
        "limit writes/s",
        "health p95",
        "release|grant|Running",
    ):
        table.add_column(col, justify="right")
    for r in results:
        c = r["case"]
        label = f"{c['flows']},{c['tasks']},{c['seconds']:g},{c['limit']}"
        for run in ("shared", "local_pool"):
            m = r[run]
            table.add_row(
                label,
                "K flows, 1 limit" if run == "shared" else "local pool of L",
                f"{m['makespan_s']:.2f}s",
                f"{m['ideal_s']:.0f}s",
                f"{m['efficiency']:.2f}",
                f"{m['utilization']:.2f}",
                f"{m['gap_median_s']}s",
                f"{m['gap_p95_s']}s",
                f"{m['gap_max_s']}s",
                f"{m['ramp_s']}s",
                f"{m['run_overhead_s']}s",
                f"{m['peak']}/{c['limit']}",
                _figure(m, "server_cpu_share", " core"),
                _figure(m, "postgres_cpu_share"),
                _figure(m, "clients_cpu_share"),
                _figure(m, "limit_updates_per_s"),
                _figure(m, "health_p95_ms", " ms"),
                _cut(m),
            )
    Console(width=200).print(table)
    print(
        "ramp: first start to the L-th start; run +: mean Running-to-Completed time beyond d;\n"
        "server CPU: the Prefect API's processes, in cores over the makespan (PG CPU: its PostgreSQL;\n"
        "flows CPU: the K flow processes, start-up included); limit writes/s: updates\n"
        "of the limit rows (one per slot request, granted or refused, and per release) over the makespan;\n"
        "health p95: GET /api/health sampled every 0.25 s during the shared run;\n"
        "release|grant|Running: the gap's median cut in three (bench.handoff_phases): a task's end to its\n"
        "release answered, that to the next grant, that grant to the next Running state."
    )


def _cut(m: dict[str, Any]) -> str:
    keys = ("release_median_s", "grant_median_s", "to_running_median_s")
    return "-" if any(k not in m for k in keys) else " | ".join(f"{m[k]}s" for k in keys)


def _figure(m: dict[str, Any], key: str, unit: str = "") -> str:
    return "-" if m.get(key) is None else f"{m[key]}{unit}"


GROWTH = [Case(k, 10, d, lim) for lim in (3, 10) for d in (1.0, 3.0) for k in (2, 4, 8, 16)]


def _print_growth(results: list[dict[str, Any]]) -> None:
    """How the shared run's figures grow with K, one column per limit and task length."""
    from rich.console import Console
    from rich.table import Table

    columns = sorted({(r["case"]["limit"], r["case"]["seconds"]) for r in results})
    table = Table(title="growth with K (N = 10): efficiency, gap p95, server CPU, limit writes/s, health p95")
    table.add_column("K", justify="right")
    for lim, d in columns:
        table.add_column(f"L={lim}, d={d:g} s", justify="right")
    for k in sorted({r["case"]["flows"] for r in results}):
        cells = []
        for lim, d in columns:
            m = next(
                (
                    r["shared"]
                    for r in results
                    if (r["case"]["flows"], r["case"]["limit"], r["case"]["seconds"]) == (k, lim, d)
                ),
                None,
            )
            cells.append(
                "-"
                if m is None
                else f"{m['efficiency']:.2f} | {m['gap_p95_s']}s | {_figure(m, 'server_cpu_share')} | "
                f"{_figure(m, 'limit_updates_per_s')} | {_figure(m, 'health_p95_ms', ' ms')}"
            )
        table.add_row(str(k), *cells)
    Console(width=200).print(table)


@app.callback()
def run(
    ctx: typer.Context,
    case: list[str] = typer.Option(["2,10,1,3", "2,30,3,3"], "--case", help="K,N,d,L (repeatable)."),
    growth: bool = typer.Option(
        False,
        "--growth",
        help="Instead of --case: K in 2,4,8,16 x N 10 x d in 1,3 s x "
        "L in 3,10, and a table of how each figure grows with K (about 25 min on 2 cores).",
    ),
    server_db: str = typer.Option("postgres", "--server-db", help="postgres (serve-all's default) or sqlite."),
    server_env: list[str] = typer.Option([], "--server-env", help="KEY=VALUE server setting to try (repeatable)."),
    api_url: str = typer.Option("", "--api-url", help="Use this server instead of starting one."),
    out: Path = typer.Option(Path("bench/out/handoff.json"), "--json", help="Where to write the results."),
    timeout: float = typer.Option(900, help="Bound on each benchmark flow process, seconds."),
) -> None:
    """Run the cases and print a table; write the figures as JSON."""
    if ctx.invoked_subcommand is not None:
        return
    cases = GROWTH if growth else [Case.parse(c) for c in case]
    if growth and out == Path("bench/out/handoff.json"):
        out = Path("bench/out/growth.json")
    extra = dict(kv.split("=", 1) for kv in server_env)
    given = bool(api_url)
    with _server(api_url, server_db, extra) as (api_url, server), prefect_settings(api_url):
        from prefect.client.orchestration import get_client

        from local_server.prefect_server import server_env as serve_all_env

        config = {
            "server_db": "given" if given else server_db,
            "slot_wait_cap_s": extra.get(
                "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS",
                serve_all_env(Path("."))["PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS"],
            ),
            "extra": ", ".join(
                f"{k}={v}" for k, v in extra.items() if k != "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS"
            ),
            "when": datetime.now(UTC).isoformat(),
            "cpus": os.cpu_count(),
        }
        with get_client(sync_client=True) as client:
            results = [run_case(client, c, timeout, server) for c in cases]
    _print(results, config)
    if growth:
        _print_growth(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": config, "results": results}, indent=2))
    print(f"written {out}")


@app.command()
def startup(
    port: int = typer.Option(0, help="Server port (default: a free one)."),
    server_db: str = typer.Option("postgres", "--server-db"),
) -> None:
    """Time `serve-all` from start to serving: cold (fresh data folder: server home, database
    migrations, demo database seeding) and warm (the same folder again)."""
    data = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(ETL_DATA_DIR=str(data), ETL_DEMO_API_PORT=str(free_port()))
    for label in ("cold", "warm"):
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "serve-all"), "--port", str(port), "--server-db", server_db],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if "being served" in line:
                break
        took = time.monotonic() - started
        proc.send_signal(2)
        proc.communicate(timeout=60)
        print(f"serve-all {label} start to serving: {took:.1f} s")


@app.command("slot-rtt")
def slot_rtt(
    rounds: int = typer.Option(40, help="Acquire/release rounds."), api_url: str = typer.Option("", "--api-url")
) -> None:
    """The floor under a hand-off with no waiting at all: one slot acquire and release with a
    lease (REST round trips), and Prefect's own ``concurrency()`` context, release to the next
    acquire, in one thread against a free limit."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.concurrency.sync import concurrency

    name = f"tag:bench-rtt-{uuid.uuid4().hex[:8]}"
    with _server(api_url) as (api_url, _), prefect_settings(api_url), get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=3))
        try:
            acquire, release, handoff = [], [], []
            for _ in range(rounds):
                started = time.perf_counter()
                response = client.increment_concurrency_slots_with_lease(
                    names=[name], slots=1, mode="concurrency", lease_duration=60
                )
                acquire.append(time.perf_counter() - started)
                started = time.perf_counter()
                client.release_concurrency_slots_with_lease(lease_id=response.json()["lease_id"])
                release.append(time.perf_counter() - started)
            left = None
            for _ in range(rounds):
                with concurrency([name], occupy=1, lease_duration=60):
                    if left is not None:
                        handoff.append(time.perf_counter() - left)
                left = time.perf_counter()
        finally:
            client.delete_global_concurrency_limit_by_name(name)
    for label, values in (
        ("acquire (REST)", acquire),
        ("release (REST)", release),
        ("concurrency() exit to next enter", handoff),
    ):
        print(
            f"{label}: median {statistics.median(values) * 1000:.1f} ms, "
            f"max {max(values) * 1000:.1f} ms over {len(values)}"
        )


def main() -> None:
    app()
