"""What ``slots`` shows: one reading of every limit, its holders and its waiters.

Plain data, filled by :func:`slot_tools.snapshot.take_snapshot` from the server's records
and judged by :func:`slot_tools.rules.findings`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RunRef:
    """A task run with the flow run, flow and deployment it belongs to."""

    task_run_id: str
    task_run: str | None = None
    state: str | None = None
    flow: str | None = None
    deployment: str | None = None
    flow_run: str | None = None
    flow_run_id: str | None = None
    flow_run_state: str | None = None
    seconds: float | None = None  # held for (holders) or waiting for (waiters)
    waited: float | None = None  # holders: how long it waited for its slot (Pending to Running)
    over_for: float | None = None  # seconds since the task run (or else its flow run) was over


@dataclass
class LimitView:
    """One limit the limits file declares, as the server holds it at one moment."""

    tag: str
    limit: str
    description: str
    file_slots: int
    server_slots: int | None  # None: no such limit on the server
    active: bool | None
    used: int  # the limit's counter (active_slots), read before the holders
    holders: list[RunRef] = field(default_factory=list)  # task runs holding a live lease
    waiters: list[RunRef] = field(default_factory=list)
    blocked_upstream: int = 0  # Pending runs that wait for an upstream task, not for a slot
    used_after: int | None = None  # the counter again, read after the holders
    unleased: list[RunRef] = field(default_factory=list)  # Running with the tag, but holding no lease on it
    limit_id: str | None = None  # the Prefect limit's id (None: no such limit on the server)

    @property
    def flows(self) -> list[str]:
        """The flows holding or waiting for a slot of this limit, or running without one."""
        return sorted({r.flow for r in (*self.holders, *self.waiters, *self.unleased) if r.flow})

    @property
    def consistent(self) -> bool:
        """True when the counter did not move while the holders were read, so counter and
        holders describe one moment."""
        return self.used_after is None or self.used_after == self.used

    @property
    def per_flow(self) -> dict[str, dict[str, int]]:
        held = Counter(h.flow or "?" for h in self.holders)
        waiting = Counter(w.flow or "?" for w in self.waiters)
        return {f: {"holding": held[f], "waiting": waiting[f]} for f in sorted(set(held) | set(waiting))}


@dataclass
class Snapshot:
    taken_at: str
    api_url: str
    limits: list[LimitView]

    def view(self, tag: str) -> LimitView:
        return next(v for v in self.limits if v.tag == tag)
