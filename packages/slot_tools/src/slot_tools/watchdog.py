"""Automatic leak repair: the rulebook and ``slots repair``, applied every few seconds.

A leaked slot (a counter above its live leases; leases of task runs, or flow runs, that are
over) is freed only once the same leak (same counter, same holders) has persisted for
``grace`` seconds on top of the rulebook's own release grace, and a last reading just before
the repair still shows it. Under a flood the counter and the leases disagree for a moment at
every hand-off; those moments differ from tick to tick, so they are never taken for a leak,
and a live holder never is (the rules never flag one). Each repair
is one WARNING line naming the limit, the slots freed and why, and one Prefect event
(:mod:`slot_tools.alerts`: each anomaly when first flagged, each repair, a limit full with
waiters for too long and its recovery). serve-all runs it in a thread (``--no-auto-repair``
turns it off); ``uv run slots doctor`` runs it in the foreground beside a server serve-all
did not start. It reads the slots through the shared :class:`slot_tools.reading.Readings`,
so beside the board it adds no reading of the server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from common.logs import get_logger
from common.threads import in_background
from slot_tools.alerts import Alerts
from slot_tools.model import Snapshot
from slot_tools.reading import Readings
from slot_tools.repair import RepairAction, apply_repair, confirmed, plan_repair
from slot_tools.rules import Finding, findings

INTERVAL_SECONDS = 2.0
GRACE_SECONDS = 6.0

log = get_logger("watchdog")


class Watchdog:
    """One look at a time (:meth:`tick`); a leak is repaired once it persisted ``grace`` s."""

    def __init__(
        self,
        readings: Readings,
        grace: float = GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        alerts: Alerts | None = None,
    ) -> None:
        self.readings = readings
        self.alerts = alerts
        self.grace = grace
        self.clock = clock
        self._first_seen: dict[tuple[str, str, int, tuple[str, ...]], float] = {}
        self._seen: set[tuple[str, str, tuple[str, ...]]] = set()  # the anomalies of the last reading
        self._flagged: set[tuple[str, str, tuple[str, ...]]] = set()  # those already said, while they last
        self.repaired: list[RepairAction] = []
        self._last_reading = ""

    def due(self, actions: list[RepairAction]) -> list[RepairAction]:
        """The actions whose leak has been seen, unchanged, for at least ``grace`` seconds."""
        now = self.clock()
        current = {a.key: a for a in actions if a.kind != "wait"}
        self._first_seen = {key: self._first_seen.get(key, now) for key in current}
        return [a for key, a in current.items() if now - self._first_seen[key] >= self.grace]

    def flag(self, snapshot: Snapshot) -> list[Finding]:
        """The anomalies found in this reading and the one before (a hand-off's passing
        disagreement is in one reading only), each said once (WARNING) while it lasts; a holder
        running without a slot among them, which is never repaired: it stops itself, and
        freeing anything would only let more in."""
        if snapshot.taken_at == self._last_reading:
            return []  # the same reading again (shared with the board): not a second look
        self._last_reading = snapshot.taken_at
        current = {(f.tag, f.kind, f.task_run_ids): f for f in findings(snapshot)}
        lasting = {key for key in current if key in self._seen}
        new = [current[key] for key in lasting if key not in self._flagged]
        self._seen, self._flagged = set(current), (self._flagged & set(current)) | lasting
        for finding in new:
            log.warning(f"anomaly: {finding.message}", tag=finding.tag, kind=finding.kind)
        return new

    def tick(self) -> list[RepairAction]:
        """Read the slots, say what is newly wrong, repair what is due, return what was repaired."""
        snapshot = self.readings.latest()
        new = self.flag(snapshot)
        if self.alerts is not None:
            self.alerts.anomalies(snapshot, new)
            self.alerts.saturation(snapshot)
        due = self.due(plan_repair(snapshot))
        if due:
            due = confirmed(due, plan_repair(self.readings.fresh()))
        if not due:
            return []
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            done = apply_repair(client, due)
        for action in done:
            seen = self.clock() - self._first_seen.pop(action.key, self.clock())
            log.warning(
                f"auto-repair: {action.describe()} (leaked for {seen:.0f} s)",
                tag=action.tag,
                slots=action.slots,
                kind=action.kind,
            )
        self.repaired.extend(done)
        if self.alerts is not None:
            self.alerts.repairs(snapshot, done)
        return done

    def run(self, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set; a failed look is retried."""
        while not stop.wait(interval):
            try:
                self.tick()
            except Exception as exc:
                log.debug(f"watchdog: could not read the slots ({type(exc).__name__}: {exc})")


@contextmanager
def watching(readings: Readings) -> Iterator[Watchdog]:
    """The watchdog, sending its events, in a background thread while the block runs."""
    dog = Watchdog(readings, alerts=Alerts(readings.registry.alerts.saturated_after_seconds))
    with in_background(dog.run, "slot-watchdog", join_timeout=10):
        yield dog
