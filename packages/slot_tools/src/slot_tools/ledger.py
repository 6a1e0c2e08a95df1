"""A local ledger of settled slot holds, so that ``slots history`` reads from the server only
what is new.

Why: a busy day is 100,000 task runs, and Prefect's REST API gives each as a whole record
(about 1.5 KB, 200 a page, no lighter endpoint): reading them all takes about 100 s on 2 cores.
A hold whose task run is over never changes, so after its first read it is kept here (SQLite,
in the data folder, per server and tag) up to a horizon; the next history reads the server
only from that horizon on. The ledger is checked against the server before each use: the
server's own count of the tag's task runs that started between the window's start and the
horizon (one ``POST /task_runs/count``) must equal the ledger's. A wiped or replaced server, a
deleted run or a record that reached the server late changes that count, and the tag is read
whole again. The ledger is a cache: deleting the file loses nothing.

serve-all keeps it up to date in the background (:func:`keeping`, a pass a minute over the
last day), so on a served stack even the first ``slots history`` of the day reads only the
last few minutes from the server.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from common.lease import parse_lost
from common.logs import get_logger
from common.prefect_rest import PrefectRest
from common.threads import in_background
from slot_tools.history import Interval, read_intervals

# Holds that started this close to now are always read again: a task-run record reaches the
# server as an event, a moment after the fact, so the recent past may still be filling in.
SETTLING = timedelta(minutes=5)
LEDGER_FILE = "slot-ledger.sqlite"  # in the data folder
RETAINED = timedelta(days=7)  # holds kept from before the window asked for, then dropped
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEPT_WINDOW = timedelta(days=1)  # what serve-all keeps read: `slots history --since` up to 1d
KEEP_EVERY_SECONDS = 60.0
SCHEMA_VERSION = 2  # bumped when sql/ledger.sql changes a table: an older file is started again

log = get_logger("ledger")


@cache
def _queries() -> dict[str, str]:
    """The named statements of ``sql/ledger.sql`` (``-- name: x`` opens statement x)."""
    out: dict[str, str] = {}
    name = ""
    for line in files("slot_tools").joinpath("sql", "ledger.sql").read_text(encoding="utf-8").splitlines():
        if line.startswith("-- name: "):
            name = line.removeprefix("-- name: ").strip()
            out[name] = ""
        elif name and not line.startswith("--"):
            out[name] += line + "\n"
    return out


def _us(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def _at(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


@dataclass(frozen=True)
class Kept:
    """What the ledger holds for one tag: every settled hold that started in [first, horizon)."""

    first: datetime
    horizon: datetime
    holds: list[Interval]


class Ledger:
    """The settled holds of one server (``server`` is its API URL), in one SQLite file."""

    def __init__(self, path: Path, server: str, settling: timedelta = SETTLING) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.server = server.rstrip("/")
        self.settling = settling

    @classmethod
    def in_data_dir(cls, server: str) -> Ledger:
        """The project's ledger (``<data>/slot-ledger.sqlite``), the one ``slots history`` reads."""
        from common.settings import get_settings

        return cls(get_settings().data_dir / LEDGER_FILE, server)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as con:
            if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:  # a cache: start it again
                con.executescript(_queries()["reset"] + f"PRAGMA user_version = {SCHEMA_VERSION};")
            con.executescript(_queries()["schema"])
            with con:  # one transaction: a reader never sees half an update
                yield con

    def read(self, rest: PrefectRest, tag: str, since: datetime, now: datetime) -> list[Interval]:
        """Every hold of ``tag`` that started at or after ``since``: the ledger's part where it
        checks out against the server, the rest read from the server (and kept if settled)."""
        q = _queries()
        with self._db() as con:
            kept = self._kept(con, rest, tag, since)
            read_from = since if kept is None else kept.horizon
            fresh = read_intervals(rest, [tag], since=read_from)
            horizon = max(read_from, min([now - self.settling, *(iv.start for iv in fresh if iv.end is None)]))
            first = max(since if kept is None else kept.first, since - RETAINED)
            if kept is None:  # the first write: the file stays free for other readers while the server is read
                con.execute(q["forget"], (self.server, tag))
            con.execute(q["prune"], (self.server, tag, _us(first)))
            con.executemany(q["keep"], [self._row(iv) for iv in fresh if iv.end is not None and iv.start < horizon])
            con.execute(q["cover"], (self.server, tag, _us(first), _us(horizon)))
        holds = [] if kept is None else kept.holds
        known = {h.task_run_id for h in holds}
        return [*holds, *(iv for iv in fresh if iv.task_run_id not in known)]

    def _kept(self, con: sqlite3.Connection, rest: PrefectRest, tag: str, since: datetime) -> Kept | None:
        """The ledger's holds from ``since`` to its horizon, if it covers ``since`` and the
        server counts as many task runs there; else None (the tag is read whole)."""
        q = _queries()
        row = con.execute(q["coverage"], (self.server, tag)).fetchone()
        if row is None or not row[0] <= _us(since) <= row[1]:
            return None
        first, horizon = _at(row[0]), _at(row[1])
        span = (self.server, tag, _us(since), row[1])
        if (
            rest.count_started(tag, since, horizon - timedelta(microseconds=1))
            != con.execute(q["count"], span).fetchone()[0]
        ):
            return None
        return Kept(first, horizon, [self._interval(tag, r) for r in con.execute(q["holds"], span)])

    def _row(self, iv: Interval) -> tuple[object, ...]:
        assert iv.end is not None, "only a hold that is over is kept"
        return (
            self.server,
            iv.tag,
            iv.task_run_id,
            iv.task_run,
            iv.flow,
            iv.flow_run_id,
            None if iv.pending_at is None else _us(iv.pending_at),
            _us(iv.start),
            _us(iv.end),
            iv.state,
            None if iv.lost is None else iv.lost.as_text(),
        )

    @staticmethod
    def _interval(tag: str, r: tuple[Any, ...]) -> Interval:
        return Interval(
            tag=tag,
            task_run_id=r[0],
            task_run=r[1],
            flow=r[2],
            flow_run_id=r[3],
            pending_at=None if r[4] is None else _at(r[4]),
            start=_at(r[5]),
            end=_at(r[6]),
            state=r[7],
            lost=parse_lost(r[8]),
        )


class Keeper:
    """Reads each tag's new holds into a ledger, one pass every ``every`` seconds."""

    def __init__(self, ledger: Ledger, tags: Iterable[str], window: timedelta = KEPT_WINDOW) -> None:
        self.ledger = ledger
        self.tags = list(tags)
        self.window = window
        self.passes = 0

    def tick(self) -> None:
        """One pass: each tag read through the ledger over the last ``window``."""
        with PrefectRest(self.ledger.server) as rest:
            for tag in self.tags:
                now = datetime.now(UTC)
                self.ledger.read(rest, tag, now - self.window, now)
        self.passes += 1

    def run(self, stop: threading.Event, every: float = KEEP_EVERY_SECONDS) -> None:
        """A pass at once, then one every ``every`` seconds until ``stop`` is set."""
        while True:
            try:
                self.tick()
            except Exception as exc:
                log.debug(f"slot ledger: pass skipped ({type(exc).__name__}: {exc})")
            if stop.wait(every):
                return


@contextmanager
def keeping(ledger: Ledger, tags: Iterable[str], every: float = KEEP_EVERY_SECONDS) -> Iterator[Keeper]:
    """The ledger kept up to date in a background thread while the block runs."""
    keeper = Keeper(ledger, tags)
    with in_background(lambda stop: keeper.run(stop, every), "slot-ledger", join_timeout=5):
        yield keeper
