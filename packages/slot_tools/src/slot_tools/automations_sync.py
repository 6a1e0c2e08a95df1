"""The automations of the limits file on the server: ``limits diff`` shows their drift,
``limits sync`` creates or updates them, ``limits sync --prune`` deletes the ones an earlier
sync created that the file no longer declares, and never anyone else's.

Each ``[automations.<name>]`` becomes the Prefect automation ``<name>``: an event trigger on the
watchdog's events (:mod:`slot_tools.alerts`), filtered by limit and kind, whose action sends a
notification through the named notification block. The names this project manages are recorded
on the server itself (the Prefect variable ``etl_managed_automations``), as the limits are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from common.alerting import AutomationSpec
from common.resources import Registry
from slot_tools.limits_sync import read_list, record_managed

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.events.schemas.automations import AutomationCore

MANAGED_VARIABLE = "etl_managed_automations"
_COMPARED = ("name", "description", "enabled", "trigger", "actions")

Action = Literal["create", "update", "ok", "delete", "extra", "no-block"]


@dataclass(frozen=True)
class AutomationChange:
    name: str
    action: Action
    desired: AutomationCore | None = None
    existing_id: UUID | None = None
    block: str = ""  # the notification block it names

    @property
    def changes_server(self) -> bool:
        return self.action in ("create", "update", "delete")

    def describe(self) -> str:
        what = {
            "create": "not on the server: create it",
            "update": "differs from the limits file: update it",
            "ok": "matches the limits file",
            "delete": "no longer in the limits file: delete it (--prune)",
            "extra": "created by an earlier sync, no longer in the limits file (`limits sync --prune` deletes it)",
            "no-block": f"left out until its notification block {self.block!r} exists on the server (docs/alerts.md)",
        }[self.action]
        return f"automation {self.name}: {what}"

    def as_dict(self) -> dict[str, Any]:
        return {"automation": self.name, "action": self.action}


def desired(spec: AutomationSpec, block_id: UUID) -> AutomationCore:
    """The Prefect automation ``spec`` declares."""
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    match: dict[str, str | list[str]] = {"prefect.resource.id": "prefect.concurrency-limit.*"}
    if spec.tags:
        match["shared-limits.tag"] = list(spec.tags)
    if spec.kinds:
        match["shared-limits.kind"] = list(spec.kinds)
    return AutomationCore(
        name=spec.name,
        description=spec.description or f"Declared in limits.toml [automations.{spec.name}]",
        enabled=spec.enabled,
        trigger=EventTrigger(
            expect=set(spec.on), match=match, posture=Posture.Reactive, threshold=1, within=timedelta(0)
        ),
        actions=[SendNotification(block_document_id=block_id, subject=spec.subject, body=spec.body)],
    )


def _comparable(automation: Any) -> Any:
    """What decides whether two automations are the same (generated ids aside)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "id"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    data = automation.model_dump(mode="json", include=set(_COMPARED))
    trigger = data.get("trigger") or {}
    for key in ("expect", "after", "for_each"):
        if isinstance(trigger.get(key), list):
            trigger[key] = sorted(trigger[key])
    return strip(data)


def _block_id(client: SyncPrefectClient, spec: AutomationSpec) -> UUID | None:
    """The notification block's id, or None when the server has no such block yet (an
    operator creates it once, with the address to notify)."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_block_document_by_name(spec.block_name, spec.block_type).id
    except ObjectNotFound:
        return None


def plan(client: SyncPrefectClient, registry: Registry, prune: bool = False) -> list[AutomationChange]:
    """What sync would do, automation by automation."""
    managed = read_list(MANAGED_VARIABLE)
    changes: list[AutomationChange] = []
    for name, spec in registry.automations.items():
        block_id = _block_id(client, spec)
        if block_id is None:
            changes.append(AutomationChange(name, "no-block", block=spec.notify))
            continue
        want = desired(spec, block_id)
        found = client.read_automations_by_name(name)
        if not found:
            changes.append(AutomationChange(name, "create", want))
        elif _comparable(found[0]) == _comparable(want):
            changes.append(AutomationChange(name, "ok", want, found[0].id))
        else:
            changes.append(AutomationChange(name, "update", want, found[0].id))
    for name in sorted(managed - set(registry.automations)):
        for automation in client.read_automations_by_name(name):
            changes.append(AutomationChange(name, "delete" if prune else "extra", existing_id=automation.id))
    return changes


def sync(client: SyncPrefectClient, registry: Registry, prune: bool = False) -> list[AutomationChange]:
    """Make the server's automations match the file; idempotent."""
    changes = plan(client, registry, prune=prune)
    for change in changes:
        if change.action == "create" and change.desired is not None:
            client.create_automation(change.desired)
        elif change.action == "update" and change.desired is not None and change.existing_id is not None:
            client.update_automation(change.existing_id, change.desired)
        elif change.action == "delete" and change.existing_id is not None:
            client.delete_automation(change.existing_id)
    deleted = {c.name for c in changes if c.action == "delete"}
    record_managed(MANAGED_VARIABLE, read_list(MANAGED_VARIABLE), set(registry.automations), deleted)
    return changes
