"""What the server tier spends while one benchmark run goes on: CPU seconds of the Prefect
API's process group and of its PostgreSQL, the writes to the limit rows, and the latency of
``/api/health`` sampled meanwhile; and beside it, the CPU of the flow processes themselves
(the children this process waited for in the window), to see which side fills the box.

Read from ``/proc`` and from PostgreSQL's own statistics: nothing is added to the server.
Every slot request (granted or refused: a refusal records its denied slots) and every
release updates the limit's row once, so those updates per second are the slot traffic the
server sees. CPU of a process that ended inside the window is not counted (the API's
workers and the pool's PostgreSQL backends live through a run).
"""

from __future__ import annotations

import os
import resource
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

from common.threads import in_background
from local_server.prefect_server import LocalPrefectServer

_TICK = os.sysconf("SC_CLK_TCK")
LIMITS_TABLE_UPDATES = "SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'concurrency_limit_v2'"


def _stat(pid: int) -> tuple[int, int, float] | None:
    """(parent pid, process group, CPU seconds) of a live process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK


def _cpu_by_pid(group: int, postmaster: int | None) -> dict[str, dict[int, float]]:
    """CPU seconds so far of every process of the API's group and of PostgreSQL."""
    out: dict[str, dict[int, float]] = {"api": {}, "postgres": {}}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or (stat := _stat(int(entry))) is None:
            continue
        parent, pgid, cpu = stat
        if pgid == group:
            out["api"][int(entry)] = cpu
        elif postmaster is not None and postmaster in (int(entry), parent):
            out["postgres"][int(entry)] = cpu
    return out


def _postmaster(server: LocalPrefectServer) -> int | None:
    if server.postgres is None:
        return None
    try:
        return int((server.postgres.pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _limit_updates(server: LocalPrefectServer) -> int | None:
    """Updates of the limit rows so far. PostgreSQL publishes a backend's counts when it goes
    idle (within about a second) or, for a backend that stays idle, after up to 10 s: read
    until two readings a second apart agree."""
    if server.postgres is None:
        return None
    with server.postgres.superuser_connect("prefect") as con:
        last = None
        for _ in range(15):
            row = con.execute(LIMITS_TABLE_UPDATES).fetchone()
            value = int(row[0]) if row else 0
            if value == last:
                return value
            last = value
            time.sleep(1.0)
        return last


@dataclass
class Load:
    """The server tier's figures for one window."""

    seconds: float = 0.0
    api_cpu_s: float | None = None
    postgres_cpu_s: float | None = None
    limit_updates: int | None = None
    clients_cpu_s: float = 0.0
    health_ms: list[float] = field(default_factory=list)

    def figures(self, busy_seconds: float) -> dict[str, float | int | None]:
        """The figures, rates over ``busy_seconds`` (the run's makespan: the window also holds
        the flow processes starting, when no slot is asked for)."""
        q = statistics.quantiles(self.health_ms, n=20, method="inclusive") if len(self.health_ms) >= 2 else None

        def per_s(v: float | None) -> float | None:
            return None if v is None or not busy_seconds else round(v / busy_seconds, 2)

        return {
            "window_s": round(self.seconds, 1),
            "server_cpu_s": None if self.api_cpu_s is None else round(self.api_cpu_s, 2),
            "server_cpu_share": per_s(self.api_cpu_s),  # of one core
            "postgres_cpu_s": None if self.postgres_cpu_s is None else round(self.postgres_cpu_s, 2),
            "postgres_cpu_share": per_s(self.postgres_cpu_s),
            "clients_cpu_share": per_s(self.clients_cpu_s),
            "limit_updates_per_s": per_s(self.limit_updates),
            "health_p95_ms": round(q[18], 1) if q else None,
            "health_samples": len(self.health_ms),
        }


def _sample_health(api_url: str, stop: threading.Event, into: list[float]) -> None:
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                http.get(f"{api_url}/health").raise_for_status()
                into.append((time.perf_counter() - started) * 1000)
            except httpx.HTTPError:
                pass
            stop.wait(0.25)


@contextmanager
def measured(server: LocalPrefectServer | None, api_url: str) -> Iterator[Load]:
    """Measure the server tier while the block runs (CPU and writes only for a server this
    benchmark started; the health latency for any)."""
    load = Load()
    group = server.pid if server is not None else None
    postmaster = _postmaster(server) if server is not None else None
    before = _cpu_by_pid(group, postmaster) if group is not None else None
    updates = _limit_updates(server) if server is not None else None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        with in_background(partial(_sample_health, api_url, into=load.health_ms), "health-sampler", join_timeout=15):
            yield load
    finally:
        load.seconds = time.monotonic() - started
        done = resource.getrusage(resource.RUSAGE_CHILDREN)
        load.clients_cpu_s = (done.ru_utime + done.ru_stime) - (children.ru_utime + children.ru_stime)
        if before is not None and group is not None:
            after = _cpu_by_pid(group, postmaster)
            load.api_cpu_s, load.postgres_cpu_s = (
                sum(cpu - before[part].get(pid, 0.0) for pid, cpu in after[part].items())
                for part in ("api", "postgres")
            )
        if server is not None and updates is not None:
            now = _limit_updates(server)
            load.limit_updates = None if now is None else now - updates
