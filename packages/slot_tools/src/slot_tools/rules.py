"""The rulebook of slot anomalies: one pure function from a snapshot to its findings.

``slots`` lists the findings, ``slots --check`` exits 1 on any, and ``slots repair`` maps
them to actions (:mod:`slot_tools.repair`): the three can never disagree on what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.alerting import AnomalyKind
from common.prefect_rest import FINAL_STATES
from slot_tools.model import LimitView, Snapshot

# A task run that just ended still holds its slot until its engine releases it (that can take
# seconds, when the process's one request queue to the server is busy acquiring). A holder
# that has been over for longer than this is not in the middle of a release: it leaked.
RELEASE_GRACE_SECONDS = 15.0

Kind = AnomalyKind  # the kinds alerts and automations know too


@dataclass(frozen=True)
class Finding:
    """One thing wrong with one limit, in words and in data."""

    tag: str
    kind: Kind
    message: str
    slots: int = 0  # slots the finding concerns (leaked ones, for the leak kinds)
    task_run_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def leak(self) -> bool:
        """A slot taken that no live task run holds: what repair can free."""
        return self.kind in ("holder-over", "holder-flow-run-over", "counter-above-holders")


def limit_findings(view: LimitView) -> list[Finding]:
    """Findings of one limit, in the order ``slots`` prints them."""
    out: list[Finding] = []
    name, tag = view.limit, view.tag
    if view.server_slots is None:
        return [Finding(tag, "no-limit", f"{name}: no limit on the server, tag '{tag}' runs unlimited")]
    if not view.active:
        out.append(Finding(tag, "inactive", f"{name}: inactive, tag '{tag}' runs unlimited"))
    elif view.server_slots != view.file_slots:
        out.append(
            Finding(tag, "drift", f"{name}: server has {view.server_slots} slots, limits file says {view.file_slots}")
        )
    for h in view.holders:
        if h.over_for is not None and h.over_for < RELEASE_GRACE_SECONDS:
            continue  # ended a moment ago: its release is on its way
        if h.state in FINAL_STATES:
            out.append(
                Finding(
                    tag,
                    "holder-over",
                    f"{name}: slot still held by task run {h.task_run} which is {h.state} "
                    "(leaked until its lease expires; `slots repair` frees it)",
                    1,
                    (h.task_run_id,),
                )
            )
        elif h.flow_run_state in FINAL_STATES:
            out.append(
                Finding(
                    tag,
                    "holder-flow-run-over",
                    f"{name}: slot held by task run {h.task_run} of flow run {h.flow_run} which is "
                    f"{h.flow_run_state}: its process is gone "
                    "(leaked until its lease expires; `slots repair` frees it)",
                    1,
                    (h.task_run_id,),
                )
            )
    for r in view.unleased:
        out.append(
            Finding(
                tag,
                "running-without-slot",
                f"{name}: task run {r.task_run} of flow {r.flow} (flow run {r.flow_run}) is Running without a slot: "
                "its lease is gone (its process frozen or cut off from the server?); nothing to repair: it stops "
                "itself once it can tell, and its work runs again on a fresh slot",
                0,
                (r.task_run_id,),
            )
        )
    # Read before and after the holders: a counter above the holders both times is a leak,
    # not a slot taken or freed while the holders were being read.
    counted = min(view.used, view.used if view.used_after is None else view.used_after)
    if counted > len(view.holders):
        out.append(
            Finding(
                tag,
                "counter-above-holders",
                f"{name}: counter says {counted} slots taken but only {len(view.holders)} live holders "
                "(leaked slots; `slots repair` frees them)",
                counted - len(view.holders),
            )
        )
    return out


def findings(snapshot: Snapshot) -> list[Finding]:
    """Every finding of every limit, limit by limit."""
    return [f for view in snapshot.limits for f in limit_findings(view)]
