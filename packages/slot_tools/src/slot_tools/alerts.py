"""The watchdog's events, sent through Prefect's events client so that Prefect automations can
act on them (notify a channel, pause a deployment) with nobody watching a terminal.

Names and payloads are stable (:mod:`common.alerting` lists the names; docs/alerts.md each
field). Every event's resource is the limit, as Prefect's own concurrency events name it
(``prefect.concurrency-limit.<id>``, name ``tag:<tag>``), with labels an automation can match
on: ``shared-limits.tag``, ``shared-limits.kind`` and ``shared-limits.flows`` (the flows
involved, comma-separated). The flow runs involved are related resources.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from common.alerting import ANOMALY, RECOVERED, REPAIRED, SATURATED
from slot_tools.model import LimitView, RunRef, Snapshot
from slot_tools.repair import RepairAction
from slot_tools.rules import Finding

Send = Callable[[str, dict[str, str], list[dict[str, str]], dict[str, Any]], None]


def send_with_prefect(event: str, resource: dict[str, str], related: list[dict[str, str]], payload: Any) -> None:
    """Send one event through Prefect's events client (to the server ``PREFECT_API_URL`` names)."""
    from prefect.events import emit_event

    emit_event(event=event, resource=resource, related=related, payload=payload)


def limit_resource(view: LimitView, flows: list[str], kind: str | None = None) -> dict[str, str]:
    resource = {
        "prefect.resource.id": f"prefect.concurrency-limit.{view.limit_id or view.limit}",
        "prefect.resource.name": view.limit,
        "shared-limits.tag": view.tag,
        "shared-limits.flows": ",".join(flows),
    }
    if kind is not None:
        resource["shared-limits.kind"] = kind
    return resource


def flow_runs(refs: list[RunRef]) -> list[dict[str, str]]:
    """The flow runs of ``refs`` as related resources, each once."""
    seen: dict[str, dict[str, str]] = {}
    for ref in refs:
        if ref.flow_run_id and ref.flow_run_id not in seen:
            seen[ref.flow_run_id] = {
                "prefect.resource.id": f"prefect.flow-run.{ref.flow_run_id}",
                "prefect.resource.role": "flow-run",
                "prefect.resource.name": ref.flow_run or "",
                "shared-limits.flow": ref.flow or "",
            }
    return list(seen.values())


def _refs_of(view: LimitView, task_run_ids: tuple[str, ...]) -> list[RunRef]:
    return [r for r in (*view.holders, *view.unleased) if r.task_run_id in task_run_ids]


@dataclass
class Alerts:
    """Turns what the watchdog sees and does into events: an anomaly when it is first flagged,
    a repair when it is done, and a limit full with waiters for ``saturated_after`` seconds
    (then its recovery), each once."""

    saturated_after: float
    send: Send = send_with_prefect
    clock: Callable[[], float] = time.monotonic
    sent: list[str] = field(default_factory=list)  # the names of the events sent, in order
    _full_since: dict[str, float] = field(default_factory=dict)
    _saturated: set[str] = field(default_factory=set)

    def _send(self, event: str, resource: dict[str, str], related: list[dict[str, str]], payload: Any) -> None:
        self.send(event, resource, related, payload)
        self.sent.append(event)

    def anomalies(self, snapshot: Snapshot, new: list[Finding]) -> None:
        for finding in new:
            view = snapshot.view(finding.tag)
            refs = _refs_of(view, finding.task_run_ids)
            flows = sorted({r.flow for r in refs if r.flow}) if refs else view.flows
            payload = {
                "kind": finding.kind,
                "message": finding.message,
                "slots": finding.slots,
                "task_run_ids": list(finding.task_run_ids),
            }
            self._send(ANOMALY, limit_resource(view, flows, finding.kind), flow_runs(refs), payload)

    def repairs(self, snapshot: Snapshot, done: list[RepairAction]) -> None:
        for action in done:
            view = snapshot.view(action.tag)
            refs = view.holders if action.kind == "revoke" else []  # a revoke frees every holder's lease
            flows = sorted({r.flow for r in refs if r.flow})
            payload = {"kind": action.kind, "message": action.describe(), "slots": action.slots}
            self._send(REPAIRED, limit_resource(view, flows, action.kind), flow_runs(refs), payload)

    def saturation(self, snapshot: Snapshot) -> None:
        """A limit whose every slot is taken while tasks wait, for ``saturated_after`` seconds:
        one event; one more when it no longer is."""
        now = self.clock()
        for view in snapshot.limits:
            full = view.server_slots is not None and view.used >= view.server_slots and bool(view.waiters)
            if not full:
                since = self._full_since.pop(view.tag, None)
                if view.tag in self._saturated:
                    self._saturated.discard(view.tag)
                    lasted = round(now - since, 1) if since is not None else None
                    payload = {"message": f"{view.limit}: slots free again", "full_for_seconds": lasted}
                    self._send(RECOVERED, limit_resource(view, view.flows), [], payload)
                continue
            since = self._full_since.setdefault(view.tag, now)
            if view.tag not in self._saturated and now - since >= self.saturated_after:
                self._saturated.add(view.tag)
                longest = max((w.seconds or 0.0 for w in view.waiters), default=0.0)
                payload = {
                    "message": (
                        f"{view.limit}: all {view.server_slots} slots taken for {now - since:.0f} s "
                        f"with {len(view.waiters)} task run(s) waiting, the longest for {longest:.0f} s"
                    ),
                    "slots": view.server_slots,
                    "waiters": len(view.waiters),
                    "longest_wait_seconds": longest,
                    "full_for_seconds": round(now - since, 1),
                }
                self._send(SATURATED, limit_resource(view, view.flows), flow_runs(view.holders), payload)
