"""Where a hand-off's time goes: the gap between one task's end and the next task's start,
cut in three by the events Prefect's ``concurrency()`` emits in each flow process.

For the i-th hand-off (the i-th end and the (L+i)-th start, paired as ``bench.handoff`` pairs
them), with each kind of time sorted on its own:

* release: the task's Completed state to its client's ``prefect.concurrency-limit.released``
  event, emitted once the server has answered the release (hooks, the lease keeper's exit, a
  new API client opened for the release and its round trip);
* grant: that release to the next holder's ``prefect.concurrency-limit.acquired`` event,
  emitted once its client has the grant (the waiter's sleep until its next poll, which the
  server's Retry-After decides, and the granted request's round trip);
* to Running: that grant to the new task's Running state (the lease keeper's start and the
  task engine's own steps).

All three are client clocks on one machine. The server never hands a freed slot to a waiter:
the grant phase is the polling design, the other two are the client's own steps.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import datetime
from typing import Any

from common.prefect_rest import PrefectRest

ACQUIRED = "prefect.concurrency-limit.acquired"
RELEASED = "prefect.concurrency-limit.released"
PAGE = 50  # the server's largest page of events


def slot_events(
    rest: PrefectRest, limit_id: uuid.UUID, since: datetime, until: datetime, expected: int, timeout: float = 30.0
) -> dict[str, list[datetime]]:
    """Each kind's times, sorted, once the server's event store holds ``expected`` of each
    (its persister writes them a moment after the clients send them)."""
    body = {
        "filter": {
            "occurred": {"since": since.isoformat(), "until": until.isoformat()},
            "event": {"name": [ACQUIRED, RELEASED]},
            "resource": {"id": [f"prefect.concurrency-limit.{limit_id}"]},
        },
        "limit": PAGE,
    }
    deadline = time.monotonic() + timeout
    while True:
        page = rest.http.post("events/filter", json=body).raise_for_status().json()
        events: list[dict[str, Any]] = page["events"]
        while page.get("next_page"):
            page = rest.http.get(page["next_page"]).raise_for_status().json()
            events += page["events"]
        times: dict[str, list[datetime]] = {ACQUIRED: [], RELEASED: []}
        for event in {e["id"]: e for e in events}.values():
            times[event["event"]].append(datetime.fromisoformat(event["occurred"]))
        if all(len(v) >= expected for v in times.values()) or time.monotonic() > deadline:
            return {k: sorted(v) for k, v in times.items()}
        time.sleep(0.5)


def median_p95(values: list[float]) -> tuple[float, float]:
    """Median and 95th percentile (inclusive quantiles), rounded to the millisecond; a single
    value is both. The hand-off gaps (``bench.handoff.metrics``) and their phases use it."""
    q = statistics.quantiles(values, n=20, method="inclusive") if len(values) >= 2 else values * 19
    return round(statistics.median(values), 3), round(q[18], 3)


def phases(
    limit: int, intervals: list[tuple[datetime, datetime, int]], events: dict[str, list[datetime]]
) -> dict[str, Any]:
    """Median and p95 of each phase over the hand-offs, and how many events were read (the
    phases are left out when an event is missing: the pairing would shift)."""
    starts = sorted(s for s, _, _ in intervals)
    ends = sorted(e for _, e, _ in intervals)
    acquired, released = events[ACQUIRED], events[RELEASED]
    out: dict[str, Any] = {"events_acquired": len(acquired), "events_released": len(released)}
    if len(acquired) != len(starts) or len(released) != len(ends):
        return out
    handoffs = range(len(ends) - limit)
    cuts = {
        "release": [(released[i] - ends[i]).total_seconds() for i in handoffs],
        "grant": [(acquired[limit + i] - released[i]).total_seconds() for i in handoffs],
        "to_running": [(starts[limit + i] - acquired[limit + i]).total_seconds() for i in handoffs],
    }
    for name, values in cuts.items():
        if len(values) >= 2:
            out[f"{name}_median_s"], out[f"{name}_p95_s"] = median_p95(values)
    return out
