"""Slot occupancy from the server's own task-run records: proof that a limit held.

Each task run carrying a tag occupied one slot of that tag's limit from the moment it
entered Running to the moment it reached a final state (the engine acquires the slot just
before Running and releases it just after the final state, so these intervals sit inside
the real lease; the peak computed from them can only understate the true peak by the few
milliseconds of bookkeeping on each side, never invent a breach).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


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

    @property
    def waited(self) -> float | None:
        return None if self.pending_at is None else max(0.0, (self.start - self.pending_at).total_seconds())


def read_intervals(
    client: "SyncPrefectClient",
    tags: Iterable[str],
    flow_run_ids: list[UUID] | None = None,
    since: datetime | None = None,
) -> list[Interval]:
    """Intervals for every task run with one of ``tags`` that started (in the flow runs, or since)."""
    from prefect.client.schemas.filters import (
        FlowFilter, FlowFilterId, FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterStartTime,
        TaskRunFilterTags,
    )

    out: list[Interval] = []
    flow_runs: dict[UUID, tuple[str, UUID]] = {}
    for tag in tags:
        runs = []
        offset = 0
        while True:
            page = client.read_task_runs(
                task_run_filter=TaskRunFilter(
                    tags=TaskRunFilterTags(all_=[tag]),
                    start_time=TaskRunFilterStartTime(after_=since, is_null_=False)
                    if since else TaskRunFilterStartTime(is_null_=False),
                ),
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)) if flow_run_ids else None,
                limit=200,
                offset=offset,
            )
            runs.extend(page)
            if len(page) < 200:
                break
            offset += 200
        missing = list({r.flow_run_id for r in runs if r.flow_run_id and r.flow_run_id not in flow_runs})
        if missing:
            frs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=missing)))
            flows = {
                f.id: f.name
                for f in client.read_flows(flow_filter=FlowFilter(id=FlowFilterId(any_=list({fr.flow_id for fr in frs}))))
            }
            for fr in frs:
                flow_runs[fr.id] = (flows.get(fr.flow_id, "?"), fr.id)
        for run in runs:
            if run.start_time is None:
                continue
            flow = flow_runs.get(run.flow_run_id, ("?", None))[0] if run.flow_run_id else "?"
            out.append(
                Interval(
                    tag=tag,
                    task_run_id=str(run.id),
                    task_run=run.name,
                    flow=flow,
                    flow_run_id=str(run.flow_run_id),
                    pending_at=run.expected_start_time,
                    start=run.start_time,
                    end=run.end_time,
                    state=run.state_type.value if run.state_type else "?",
                )
            )
    return out


def peak_concurrency(intervals: Iterable[Interval], now: datetime | None = None) -> tuple[int, datetime | None]:
    """Highest number of overlapping intervals and when it first happened.

    Ends sort before starts at the same instant: a slot handed from one run to the next in
    the same microsecond is a hand-off, not two holders.
    """
    now = now or datetime.now(timezone.utc)
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
    now = now or datetime.now(timezone.utc)
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


def wait_until_recorded(client: "SyncPrefectClient", flow_run_ids: list[UUID], timeout: float = 15.0) -> bool:
    """Wait (bounded) until the server has recorded a final state for every task run of the
    flow runs: task-run states reach the server as events, a moment after the flow run ends."""
    import time

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    while True:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=flow_run_ids)))
        if runs and all(r.state_type is not None and r.state_type.value in _FINAL for r in runs):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


_FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
