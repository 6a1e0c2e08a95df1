"""``uv run slots repair``: free slots that no live task run holds, and nothing else.

Two kinds of leak (docs/prefect-facts.md, facts 5, 7 and 8):

* the counter is above the number of live leases (the leases are gone, e.g. after a server
  restart with in-memory lease storage): decrement the counter by the difference. Revoking
  leases alone would not fix it.
* leases held by task runs that are over, or whose flow run is over (a crashed process): they
  would free themselves when the lease expires (about 75 s). Repair revokes them now, but
  only when every holder of that limit is dead; otherwise revoking would also drop the live
  holders' leases, so it says so and leaves them to expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from slot_tools.model import Snapshot
from slot_tools.rules import findings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient


@dataclass(frozen=True)
class RepairAction:
    tag: str
    kind: str  # "decrement" | "revoke" | "wait"
    slots: int
    reason: str
    held_seconds: float = 0.01  # reported to the server as the slots' occupancy (must be > 0)
    # What the leak was read from: the counter and the holders' task run ids. A leak is the
    # same leak only while this stays the same; under load the counter and the leases
    # disagree for a moment at every hand-off (the server raises the counter before it writes
    # the lease, and lowers it before it drops the lease), and each such moment is a new one.
    evidence: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, int, tuple[str, ...]]:
        """What two readings must share to be the same leak."""
        return (self.tag, self.kind, self.slots, self.evidence)

    def describe(self) -> str:
        verb = {"decrement": "free", "revoke": "revoke leases and free", "wait": "leave"}[self.kind]
        return f"tag:{self.tag}: {verb} {self.slots} slot(s): {self.reason}"


def plan_repair(snapshot: Snapshot) -> list[RepairAction]:
    """The rulebook's leak findings, mapped to what repair does about each limit."""
    actions: list[RepairAction] = []
    found = [f for f in findings(snapshot) if f.leak]
    for view in snapshot.limits:
        mine = [f for f in found if f.tag == view.tag]
        evidence = (f"counter={view.used}/{view.used_after}", *sorted(h.task_run_id for h in view.holders))
        for f in mine:
            if f.kind == "counter-above-holders":
                actions.append(
                    RepairAction(
                        view.tag,
                        "decrement",
                        f.slots,
                        f"counter says {len(view.holders) + f.slots} taken, {len(view.holders)} live leases",
                        evidence=evidence,
                    )
                )
        dead = [f for f in mine if f.kind != "counter-above-holders"]
        if not dead:
            continue
        if len(dead) == len(view.holders):
            held = [h.seconds for h in view.holders if h.seconds]
            actions.append(
                RepairAction(
                    view.tag,
                    "revoke",
                    len(dead),
                    "held by task runs that are over",
                    max(0.01, sum(held) / len(held)) if held else 0.01,
                    evidence,
                )
            )
        else:
            actions.append(
                RepairAction(
                    view.tag,
                    "wait",
                    len(dead),
                    f"held by task runs that are over, beside {len(view.holders) - len(dead)} live holder(s); "
                    "they free themselves when their leases expire (about 75 s)",
                )
            )
    return actions


def confirmed(planned: list[RepairAction], fresh: list[RepairAction]) -> list[RepairAction]:
    """The planned actions a fresh reading still calls for, on the same evidence: a slot
    taken or freed since the plan was made cancels the action instead of undoing a live lease."""
    keys = {a.key for a in fresh if a.kind != "wait"}
    return [a for a in planned if a.kind != "wait" and a.key in keys]


def freed_meanwhile(planned: list[RepairAction], fresh: list[RepairAction]) -> list[RepairAction]:
    """The planned actions whose limit the fresh reading finds no leak on at all: the slots
    came back by themselves (a release that was on its way), so there is nothing left to do.
    A limit the fresh reading still finds a leak on, of another shape, has changed instead."""
    leaking = {a.tag for a in fresh}
    return [a for a in planned if a.kind != "wait" and a.tag not in leaking]


def apply_repair(client: SyncPrefectClient, actions: list[RepairAction]) -> list[RepairAction]:
    """Apply the plan; returns the actions that changed the server."""
    done = []
    for action in actions:
        name = f"tag:{action.tag}"
        if action.kind == "revoke":
            # Revokes every lease of the limit (all of them are dead), then fixes the counter,
            # which revoking alone leaves as it was (fact 6).
            client.reset_concurrency_limit_by_tag(action.tag)
            client.release_concurrency_slots(names=[name], slots=action.slots, occupancy_seconds=action.held_seconds)
        elif action.kind == "decrement":
            client.release_concurrency_slots(names=[name], slots=action.slots, occupancy_seconds=action.held_seconds)
        else:
            continue
        done.append(action)
    return done
