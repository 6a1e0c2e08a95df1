"""A resource session that stops before its slot can be given to someone else.

Prefect's task engine takes a task run's tag slots as one lease (60 s, renewed every 45 s by a
background thread) and lets the task run go on when a renewal fails: it logs that at DEBUG
only. A holder that is frozen (SIGSTOP, a VM pause, a long GC) or cut off from the server for
longer than the lease keeps using the shared system after the server has given its slot to a
waiter, and the limit no longer holds.

:class:`LeaseGuard` closes that gap beside the engine, without changing it. It knows the task
run's own lease (the one the engine took for the task run's tags), renews it through
Prefect's REST API every few seconds alongside the engine's own keeper, and interrupts the
resource session (and fails the attempt with :class:`SlotLost`) as soon as it cannot be sure
the lease is still valid:

* the process woke from a freeze the lease may not have survived (the clock jumped);
* the server says the lease is gone (a renewal answered 410);
* the server has not confirmed the lease for ``lease - margin`` seconds (cut off).

A lost attempt is not retried in the same task run: the engine holds a task run's slots across
its retries, so a retry would run without one. The flow's run scope submits the work again as
a new task run, which takes a fresh slot (:mod:`common.run`). Why each piece is needed, and
what Prefect would have to change to make it unnecessary: docs/prefect-facts.md.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from uuid import UUID

import httpx

from common.logs import get_logger
from common.threads import in_background

LEASE_SECONDS = 60.0  # the lease Prefect's task engine takes for tag slots (also the renewal minimum)
RENEW_EVERY_SECONDS = 5.0  # how often the guard renews (the engine's keeper renews every 45 s)
MARGIN_SECONDS = 10.0  # stop this long before an unconfirmed lease could lapse
TICK_SECONDS = 0.25  # how often the guard looks at the clock
FREEZE_SECONDS = 5.0  # a look this much later than due means the process was not running (> a renewal)
RENEW_TIMEOUT_SECONDS = 2.0
RETRY_SECONDS = 1.0  # a renewal the server did not answer is tried again this soon

log = get_logger("lease")


def clock() -> float:
    """Seconds on a clock that keeps counting while the machine or process is suspended
    (CLOCK_BOOTTIME where the platform has it, else the monotonic clock)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class SlotLost(RuntimeError):
    """The attempt stopped because its slot may have been given to someone else; one line."""


_LOST = re.compile(
    r"lost its '(?P<tag>[^']+)' slot: (?P<why>.*) \((?:last confirmed by the server at "
    r"(?P<at>[0-9T:+-]+Z)|never confirmed by the server)\)"
)


@dataclass(frozen=True)
class LostLease:
    """What a :class:`SlotLost` message says: the tag, why the holder stopped, and the last
    moment the server confirmed its lease (None: never), after which its slot may have gone to
    another task run."""

    tag: str
    why: str  # "frozen", "cut off from the server", "its lease gone" or "its lease gone before it began"
    confirmed_at: datetime | None

    def live_end(self, start: datetime, end: datetime | None) -> datetime | None:
        """Where the hold's live lease ended, as far as the holder can be trusted: a frozen or
        cut-off holder's lease lasted the lease after its last confirmation (the server frees
        a slot no sooner), and the holder did no work past it; one that found its lease gone
        before it began held nothing; one that found it gone later worked until it did."""
        if self.why == "its lease gone before it began":
            return start
        if self.confirmed_at is None or self.why == "its lease gone":
            return end
        lapsed = max(start, self.confirmed_at + timedelta(seconds=LEASE_SECONDS))
        return lapsed if end is None else min(end, lapsed)

    def as_text(self) -> str:
        """A line :func:`parse_lost` reads back as this (the slot ledger keeps it)."""
        why = {
            "frozen": "this process was frozen",
            "cut off from the server": "this process was cut off",
            "its lease gone before it began": "its lease was gone before it began",
        }.get(self.why, "its lease was gone")
        when = (
            f"last confirmed by the server at {_utc(self.confirmed_at)}"
            if self.confirmed_at
            else "never confirmed by the server"
        )
        return f"lost its '{self.tag}' slot: {why} ({when})"


def parse_lost(message: str | None) -> LostLease | None:
    """The :class:`LostLease` a task run's state message reports, if it is a lost slot."""
    match = _LOST.search(message or "")
    if match is None:
        return None
    why, at = match["why"], match["at"]
    kind = (
        "its lease gone before it began"
        if "before it began" in why
        else "frozen"
        if "was frozen" in why
        else "cut off from the server"
        if "cut off" in why
        else "its lease gone"
    )
    return LostLease(match["tag"], kind, datetime.fromisoformat(at.replace("Z", "+00:00")) if at else None)


def engine_lease_id() -> UUID | None:
    """The lease Prefect's task engine took for the running task run's tag slots, or None.

    The engine records each lease it takes on the ``ConcurrencyContext`` that is current when it
    acquires (so that a lease left unreleased is released when the context exits), then enters
    a fresh context for each attempt. Prefect exposes no other handle to it: the lease is found
    on the nearest enclosing context that holds one.
    """
    from prefect.concurrency.context import ConcurrencyContext

    context = ConcurrencyContext.get()
    while context is not None:
        if context.cleanup_lease_ids:
            return context.cleanup_lease_ids[-1]
        previous = getattr(getattr(context, "_token", None), "old_value", None)
        context = previous if isinstance(previous, ConcurrencyContext) else None
    return None


@cache
def _http(api_url: str) -> httpx.Client:
    """One client per server for every guard's renewals in this process (thread-safe)."""
    from common.prefect_api import auth_headers

    return httpx.Client(base_url=api_url.rstrip("/") + "/", headers=auth_headers(), timeout=RENEW_TIMEOUT_SECONDS)


def renew_lease(lease_id: UUID, timeout: float = RENEW_TIMEOUT_SECONDS) -> bool:
    """Renew ``lease_id`` for :data:`LEASE_SECONDS` (Prefect's public REST API, on the server
    this process uses): True when renewed, False when the server says it is gone; an ``httpx``
    error when it did not answer."""
    from prefect.settings import PREFECT_API_URL

    response = _http(str(PREFECT_API_URL.value())).post(
        f"v2/concurrency_limits/leases/{lease_id}/renew", json={"lease_duration": LEASE_SECONDS}, timeout=timeout
    )
    if response.status_code in (404, 410):
        return False
    response.raise_for_status()
    return True


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class LeaseGuard:
    """Watches one task run's lease while its resource session runs (see the module doc)."""

    tag: str  # the resource's tag, named in the message
    lease_id: UUID
    renew: Callable[[UUID, float], bool] = renew_lease
    lease_seconds: float = LEASE_SECONDS
    renew_every: float = RENEW_EVERY_SECONDS
    margin: float = MARGIN_SECONDS
    lost: str | None = None  # the SlotLost message once the lease is lost
    _confirmed: float = field(default_factory=clock)  # clock() when the last confirmed renewal was sent
    _confirmed_wall: datetime | None = None  # the same moment in UTC; None until the server confirmed once
    _looked: float = field(default_factory=clock)  # clock() when the guard last did anything
    _frozen: float = 0.0  # the longest stretch seen during which the process did not run
    _interrupt: Callable[[], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def budget(self) -> float:
        """How long the lease may go unconfirmed before the session is stopped."""
        return self.lease_seconds - self.margin

    def confirm(self) -> bool:
        """Renew once now; True when the server confirmed the lease. A lease the server says is
        gone is lost at once; a server that does not answer leaves the last confirmation as it was."""
        sent, sent_wall = clock(), datetime.now(UTC)
        self._looked = sent
        left = self.budget - (sent - self._confirmed)
        try:
            renewed = self.renew(self.lease_id, max(0.1, min(RENEW_TIMEOUT_SECONDS, left)))
        except httpx.HTTPError:
            return False
        finally:
            self._note_freeze(clock())
        if renewed:
            self._confirmed, self._confirmed_wall = sent, sent_wall
            return True
        if self._confirmed_wall is not None:
            self._lose("the server says its lease is gone")
        else:  # granted, then held up (a freeze, an unanswered state update) for longer than the lease
            self._lose(
                f"the server says its lease was gone before it began, {sent - self._confirmed:.0f} s after "
                "it was granted"
            )
        return False

    def _note_freeze(self, now: float) -> None:
        """Remember a stretch the process did not run (the clock jumped past the look), so the
        lease's loss is put down to it, even when the jump happened inside a renewal."""
        if now - self._looked >= FREEZE_SECONDS:
            self._frozen = max(self._frozen, now - self._looked)
        self._looked = now

    def _lose(self, why: str) -> None:
        with self._lock:
            if self.lost is not None:
                return
            when = (
                f"last confirmed by the server at {_utc(self._confirmed_wall)}"
                if self._confirmed_wall
                else "never confirmed by the server"
            )
            self.lost = f"lost its '{self.tag}' slot: {why} ({when}); stopped so the limit holds"
            interrupt = self._interrupt
        log.warning(self.lost, tag=self.tag, lease_id=str(self.lease_id))
        if interrupt is not None:
            _call_quietly(interrupt)

    def attach(self, interrupt: Callable[[], None]) -> None:
        """The resource session to interrupt; at once if the lease is already lost."""
        with self._lock:
            self._interrupt = interrupt
            lost = self.lost is not None
        if lost:
            _call_quietly(interrupt)

    def detach(self) -> None:
        with self._lock:
            self._interrupt = None

    def _check(self, now: float) -> bool:
        """Lose the lease if it has gone unconfirmed too long; True while it is trusted."""
        if self.lost is not None:
            return False
        unconfirmed = now - self._confirmed
        if unconfirmed < self.budget:
            return True
        frozen = max(self._frozen, now - self._looked)  # the worker may look before the guard's thread
        if frozen >= FREEZE_SECONDS:
            self._lose(
                f"this process was frozen for {frozen:.0f} s, longer than its "
                f"{self.lease_seconds:.0f} s lease can be trusted"
            )
        else:
            self._lose(
                f"this process was cut off from the server for {unconfirmed:.0f} s, too close to "
                f"the end of its {self.lease_seconds:.0f} s lease"
            )
        return False

    def ensure(self) -> None:
        """Raise :class:`SlotLost` unless the lease can still be trusted now: the resource work
        calls this before each step (opening the session, each statement), so nothing starts
        once the slot may be someone else's, even before the guard's own thread looks."""
        self._check(clock())
        self.raise_if_lost()

    def watch(self, stop: threading.Event) -> None:
        """The guard's loop: look at the clock every tick, renew every few seconds. Each look
        measures the time since the one before, so a freeze is seen wherever it struck."""
        next_renew = self._confirmed + self.renew_every
        while not stop.wait(TICK_SECONDS):
            now = clock()
            jumped = now - self._looked >= FREEZE_SECONDS
            self._note_freeze(now)
            if not self._check(now):
                return
            if now >= next_renew or jumped:
                confirmed = self.confirm()
                if self.lost is not None:
                    return
                next_renew = (self._confirmed + self.renew_every) if confirmed else clock() + RETRY_SECONDS

    def raise_if_lost(self) -> None:
        if self.lost is not None:
            raise SlotLost(self.lost)


def _call_quietly(interrupt: Callable[[], None]) -> None:
    try:
        interrupt()
    except Exception as exc:
        log.debug(f"interrupting the resource session: {type(exc).__name__}: {exc}")


@contextmanager
def guarding(tag: str, started_at: datetime | None = None) -> Iterator[LeaseGuard | None]:
    """A :class:`LeaseGuard` watching the running task run's lease while the block runs, or
    None when the task run holds no lease (its tags have no limit on the server).

    The lease is confirmed once before the block, so a lease already gone stops the attempt
    before it opens the resource; ``started_at`` (when the task run went Running, just after
    its slots were granted) bounds the lease's age if the server does not answer then.
    """
    lease_id = engine_lease_id()
    if lease_id is None:
        yield None
        return
    guard = LeaseGuard(tag, lease_id)
    age = (datetime.now(UTC) - started_at).total_seconds() if started_at else 0.0
    guard._confirmed = clock() - max(0.0, age)  # granted no later than it went Running
    guard.confirm()
    guard.raise_if_lost()
    with in_background(guard.watch, f"lease-guard-{lease_id}", join_timeout=RENEW_TIMEOUT_SECONDS + 1):
        yield guard
