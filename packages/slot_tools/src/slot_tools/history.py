"""Slot occupancy from the server's own task-run records: proof that a limit held.

Each task run carrying a tag occupied one slot of that tag's limit from the moment it
entered Running to the moment it reached a final state (the engine acquires the slot just
before Running and releases it just after the final state, so these intervals sit inside
the real lease; the peak computed from them can only understate the true peak by the few
milliseconds of bookkeeping on each side, never invent a breach).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

from common.lease import LostLease, parse_lost
from common.prefect_rest import FINAL_STATES, FlowRunRec, PrefectRest


@dataclass(frozen=True)
class Interval:
    """One task run's hold on one tag's slot."""

    tag: str
    task_run_id: str
    task_run: str
    flow: str
    flow_run_id: str
    pending_at: datetime | None
    start: datetime
    end: datetime | None  # None: still running
    state: str
    lost: LostLease | None = None  # a holder that lost its slot: why, and its lease's last confirmation

    @property
    def waited(self) -> float | None:
        return None if self.pending_at is None else max(0.0, (self.start - self.pending_at).total_seconds())

    @property
    def live(self) -> Interval:
        """The hold as far as a live lease covered it: a holder that lost its slot held a lease
        until at most the lease after its last confirmation (the server frees it no sooner), and
        stopped on waking or before that, without using the resource past it."""
        return self if self.lost is None else replace(self, end=self.lost.live_end(self.start, self.end))


def read_intervals(
    rest: PrefectRest,
    tags: Iterable[str],
    flow_run_ids: list[UUID] | None = None,
    since: datetime | None = None,
) -> list[Interval]:
    """Intervals for every task run with one of ``tags`` that started (in the flow runs, or since).

    Two corrections keep the proof honest. A task run whose process died never records an
    end: its interval ends when its flow run was marked over (its slot stayed taken until the
    lease expired, but no task of its ran after that). And the wait of a task that had
    upstream tasks starts when the last of them ended, not when it was submitted.
    """
    out: list[Interval] = []
    flow_runs: dict[UUID, FlowRunRec] = {}
    flows: dict[UUID, str] = {}
    for tag in tags:
        runs = rest.started_with_tag(tag, since=since, flow_run_ids=flow_run_ids)
        missing = list({r.flow_run_id for r in runs if r.flow_run_id and r.flow_run_id not in flow_runs})
        flow_runs.update(rest.flow_runs_by_id(missing))
        flows.update(rest.names("flows", list({fr.flow_id for fr in flow_runs.values()} - set(flows))))
        known = {r.id: r for r in runs}
        known.update(rest.task_runs_by_id(list({u for r in runs for u in r.upstream} - set(known))))
        for run in runs:
            if run.start_time is None:
                continue
            fr = flow_runs.get(run.flow_run_id) if run.flow_run_id else None
            flow = flows.get(fr.flow_id, "?") if fr is not None else "?"
            flow_ended = fr.ended_at if fr is not None and fr.state_type in FINAL_STATES else None
            state = run.state_type or "?"
            end = run.end_time
            if end is None and flow_ended is not None:
                end, state = max(flow_ended, run.start_time), f"{state} (flow run over)"
            ready = [known[u].end_time for u in run.upstream if u in known and known[u].end_time]
            pending_at = run.expected_start_time
            if ready and pending_at is not None:
                pending_at = min(max(pending_at, *ready), run.start_time)  # type: ignore[type-var]
            out.append(
                Interval(
                    tag=tag,
                    task_run_id=str(run.id),
                    task_run=run.name,
                    flow=flow,
                    flow_run_id=str(run.flow_run_id),
                    pending_at=pending_at,
                    start=run.start_time,
                    end=end,
                    state=state,
                    lost=parse_lost(run.state_message),
                )
            )
    return out


def peak_concurrency(intervals: Iterable[Interval], now: datetime | None = None) -> tuple[int, datetime | None]:
    """Highest number of overlapping intervals and when it first happened.

    Ends sort before starts at the same instant: a slot handed from one run to the next in
    the same microsecond is a hand-off, not two holders.
    """
    now = now or datetime.now(UTC)
    events = []
    for iv in intervals:
        events.append((iv.start, 1))
        events.append((iv.end or now, -1))
    events.sort(key=lambda e: (e[0], e[1]))
    current = best = 0
    at = None
    for moment, delta in events:
        current += delta
        if current > best:
            best, at = current, moment
    return best, at


def shared_moments(intervals: list[Interval], now: datetime | None = None) -> float:
    """Seconds during which slots of the tag were held by more than one flow at once."""
    now = now or datetime.now(UTC)
    events = []
    for iv in intervals:
        events.append((iv.start, 1, iv.flow))
        events.append((iv.end or now, -1, iv.flow))
    events.sort(key=lambda e: (e[0], e[1]))
    holding: dict[str, int] = {}
    shared = 0.0
    last: datetime | None = None
    for moment, delta, flow in events:
        if last is not None and sum(1 for c in holding.values() if c > 0) > 1:
            shared += (moment - last).total_seconds()
        holding[flow] = holding.get(flow, 0) + delta
        last = moment
    return shared


def wait_until_recorded(rest: PrefectRest, flow_run_ids: list[UUID], timeout: float = 15.0) -> bool:
    """Wait (bounded) until the server has recorded a final state for every task run of the
    flow runs (or that it will never run): task-run states reach the server a moment after the
    flow run ends."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        runs = rest.task_runs_of(flow_run_ids)
        if runs and all(r.settled for r in runs):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


# --- Summary of a window: the proof, per limit and per flow -------------------------------


@dataclass(frozen=True)
class FlowUsage:
    """One flow's share of one limit: how much it held, how long it waited to hold."""

    flow: str
    task_runs: int
    slot_seconds: float
    wait_median: float | None  # None: no task run of the flow has a Pending time
    wait_p95: float | None


@dataclass(frozen=True)
class TagReport:
    """What the records say about one limit in the window."""

    tag: str
    limit: int
    task_runs: int
    peak: int  # from the records as they are
    peak_at: datetime | None
    exceeded: bool  # more holders than the limit while their leases were live
    live_peak: int  # the peak with each holder that lost its slot cut at its lease's end
    lost_holders: list[str]  # what a peak above live_peak comes from, one line per flow run
    slot_seconds: float
    utilization: float  # busy slot-seconds / (limit x window seconds)
    shared_seconds: float  # seconds during which more than one flow held slots of this limit
    flows: list[FlowUsage]
    lanes: dict[str, int]  # task_run_id -> lane; lane >= limit only if the limit was exceeded

    @property
    def lane_count(self) -> int:
        """Lanes to draw: one per slot, plus any overflow lane."""
        return max([self.limit, *(lane + 1 for lane in self.lanes.values())])


@dataclass(frozen=True)
class HistoryReport:
    """Every limit over one window of time."""

    window_start: datetime
    window_end: datetime
    tags: list[TagReport]

    @property
    def exceeded(self) -> bool:
        return any(t.exceeded for t in self.tags)

    @property
    def window_seconds(self) -> float:
        return max(0.0, (self.window_end - self.window_start).total_seconds())

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, with stable keys (lanes are left out: they serve the timeline)."""
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "window_seconds": round(self.window_seconds, 3),
            "exceeded": self.exceeded,
            "limits": [
                {
                    "tag": t.tag,
                    "name": f"tag:{t.tag}",
                    "limit": t.limit,
                    "task_runs": t.task_runs,
                    "peak": t.peak,
                    "peak_at": t.peak_at.isoformat() if t.peak_at else None,
                    "exceeded": t.exceeded,
                    "live_peak": t.live_peak,
                    "lost_holders": t.lost_holders,
                    "slot_seconds": round(t.slot_seconds, 3),
                    "utilization": round(t.utilization, 4),
                    "shared_seconds": round(t.shared_seconds, 3),
                    "flows": [
                        {
                            "flow": f.flow,
                            "task_runs": f.task_runs,
                            "slot_seconds": round(f.slot_seconds, 3),
                            "wait_median": _round(f.wait_median),
                            "wait_p95": _round(f.wait_p95),
                        }
                        for f in t.flows
                    ],
                }
                for t in self.tags
            ],
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def percentile(values: Iterable[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default), so p50 is the median."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def clipped_seconds(iv: Interval, window_start: datetime, window_end: datetime) -> float:
    """Seconds of the hold inside the window (a still-running hold counts up to its end)."""
    end = iv.end or window_end
    return max(0.0, (min(end, window_end) - max(iv.start, window_start)).total_seconds())


def assign_lanes(intervals: Iterable[Interval], limit: int, now: datetime | None = None) -> dict[str, int]:
    """Greedy lanes in start order: each hold takes the lowest lane free at its start.

    A lane frees at the instant its hold ends (a same-instant hand-off reuses it, as in
    :func:`peak_concurrency`). A hold finding lanes 0..limit-1 all busy overlaps ``limit``
    others, so a lane >= limit appears exactly when the limit was exceeded.
    """
    now = now or datetime.now(UTC)
    busy_until: list[datetime] = []
    lanes: dict[str, int] = {}
    for iv in sorted(intervals, key=lambda i: (i.start, i.end or now, i.task_run_id)):
        lane = next((n for n, until in enumerate(busy_until) if until <= iv.start), None)
        if lane is None:
            lane = len(busy_until)
            busy_until.append(iv.end or now)
        else:
            busy_until[lane] = iv.end or now
        lanes[iv.task_run_id] = lane
    return lanes


def _flow_usage(intervals: list[Interval], window_start: datetime, window_end: datetime) -> list[FlowUsage]:
    by_flow: dict[str, list[Interval]] = {}
    for iv in intervals:
        by_flow.setdefault(iv.flow, []).append(iv)
    out = []
    for flow in sorted(by_flow):
        runs = by_flow[flow]
        waits = [w for w in (iv.waited for iv in runs) if w is not None]
        out.append(
            FlowUsage(
                flow=flow,
                task_runs=len(runs),
                slot_seconds=sum(clipped_seconds(iv, window_start, window_end) for iv in runs),
                wait_median=percentile(waits, 50),
                wait_p95=percentile(waits, 95),
            )
        )
    return out


def summarize_tag(
    tag: str, limit: int, intervals: list[Interval], window_start: datetime, window_end: datetime
) -> TagReport:
    """One limit's report from the holds of its tag."""
    mine = [iv for iv in intervals if iv.tag == tag]
    peak, at = peak_concurrency(mine, now=window_end)
    live_peak = peak_concurrency([iv.live for iv in mine], now=window_end)[0] if peak > limit else peak
    busy = sum(clipped_seconds(iv, window_start, window_end) for iv in mine)
    capacity = limit * max(0.0, (window_end - window_start).total_seconds())
    return TagReport(
        tag=tag,
        limit=limit,
        task_runs=len(mine),
        peak=peak,
        peak_at=at,
        exceeded=live_peak > limit,
        live_peak=live_peak,
        lost_holders=lost_holders(mine, window_end) if peak > limit else [],
        slot_seconds=busy,
        utilization=busy / capacity if capacity > 0 else 0.0,
        shared_seconds=shared_moments(mine, now=window_end),
        flows=_flow_usage(mine, window_start, window_end),
        lanes=assign_lanes(mine, limit, now=window_end),
    )


def lost_holders(intervals: list[Interval], now: datetime) -> list[str]:
    """One line per flow run whose holders lost their slots and stayed Running in the records:
    how many, while what, and when the server gave their slots to others ("ingest held 3 slots
    while frozen 22:05:10-22:06:30; the server gave them to reports at 22:06:12")."""
    groups: dict[tuple[str, str, str], list[Interval]] = {}
    for iv in intervals:
        if iv.lost is not None:
            groups.setdefault((iv.flow_run_id, iv.flow, iv.lost.why), []).append(iv)
    out = []
    for (run, flow, why), held in sorted(groups.items(), key=lambda g: min(iv.start for iv in g[1])):
        since = min(iv.lost.confirmed_at or iv.start for iv in held if iv.lost is not None)
        until = max(iv.end or now for iv in held)
        lapsed = min(iv.live.end or now for iv in held)
        taken = sorted(
            (iv for iv in intervals if iv.flow_run_id != run and lapsed <= iv.start < until), key=lambda iv: iv.start
        )
        given = (
            f"the server gave them to {', '.join(sorted({iv.flow for iv in taken}))} at {_hms(taken[0].start)}"
            if taken
            else "nobody took them meanwhile"
        )
        out.append(f"{flow} held {len(held)} slot(s) {_while(why)} {_hms(since)}-{_hms(until)}; {given}")
    return out


def _while(why: str) -> str:
    return f"while {why}" if why in ("frozen", "cut off from the server") else f"with {why}"


def _hms(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")


def summarize(
    intervals: Iterable[Interval], limits: dict[str, int], window_start: datetime, window_end: datetime
) -> HistoryReport:
    """Per limit (in ``limits`` order): peak, breach, utilization, lanes, per-flow usage.

    Holds are clipped to the window for slot-seconds and utilization, so a limit that held
    never shows a utilization above 1.
    """
    everything = list(intervals)
    return HistoryReport(
        window_start=window_start,
        window_end=window_end,
        tags=[summarize_tag(tag, limit, everything, window_start, window_end) for tag, limit in limits.items()],
    )


@dataclass(frozen=True)
class Window:
    """The holds found and the span of time they cover."""

    intervals: list[Interval]
    start: datetime
    end: datetime


def read_window(
    rest: PrefectRest,
    tags: Iterable[str],
    since: datetime | None,
    flow_run_ids: list[UUID] | None,
    now: datetime | None = None,
) -> Window:
    """Holds since ``since`` (and/or in the flow runs), with the span they cover.

    The span runs from the first Pending time (not before ``since``) to the last end (or
    now, if a hold is still running): utilization then says how busy a limit was while the
    flows ran, not diluted by an idle stretch of the ``--since`` period.
    """
    return window_of(read_intervals(rest, list(tags), flow_run_ids=flow_run_ids, since=since), since, now)


def window_of(intervals: list[Interval], since: datetime | None, now: datetime | None = None) -> Window:
    """The holds with the span they cover (see :func:`read_window`)."""
    now = now or datetime.now(UTC)
    if not intervals:
        return Window(intervals, since or now, now)
    start = min(min(iv.start, iv.pending_at or iv.start) for iv in intervals)
    if since is not None:
        start = max(start, since)
    end = max(iv.end or now for iv in intervals)
    return Window(intervals, start, end)
