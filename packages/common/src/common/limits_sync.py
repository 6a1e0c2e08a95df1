"""Limits as code: compare the limits file with the server, make the server match, check it.

Prefect runs a tag with no limit silently unlimited (DESIGN.md fact 2), so every entry
point calls :func:`check` before it runs anything. The set of limits this project manages
is recorded on the server itself (the Prefect variable ``etl_managed_limits``), so
``sync --prune`` deletes only limits that an earlier sync created, never anyone else's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from common.resources import Registry, limit_name_for

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse

MANAGED_VARIABLE = "etl_managed_limits"

Action = Literal["ok", "create", "update", "activate", "delete", "extra"]


@dataclass(frozen=True)
class LimitChange:
    """One tag limit: what the file wants, what the server has, what sync does about it."""

    tag: str
    action: Action
    file_slots: int | None
    server_slots: int | None
    server_active: bool | None = None

    @property
    def changes_server(self) -> bool:
        return self.action in ("create", "update", "activate", "delete")

    def describe(self) -> str:
        name = limit_name_for(self.tag)
        return {
            "ok": f"{name}: {self.file_slots} slots, matches the file",
            "create": f"{name}: missing on the server; create with {self.file_slots} slots",
            "update": f"{name}: {self.server_slots} slots on the server, the file says {self.file_slots}",
            "activate": f"{name}: inactive on the server (unlimited); activate with {self.file_slots} slots",
            "delete": f"{name}: managed by this project but no longer in the file; delete",
            "extra": f"{name}: on the server ({self.server_slots} slots) but not in the file; left alone",
        }[self.action]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "limit": limit_name_for(self.tag), "message": self.describe()}


def read_tag_limits(client: "SyncPrefectClient") -> dict[str, "GlobalConcurrencyLimitResponse"]:
    """Every ``tag:`` global concurrency limit on the server, by tag."""
    limits: dict[str, GlobalConcurrencyLimitResponse] = {}
    offset = 0
    while True:
        page = client.read_global_concurrency_limits(limit=200, offset=offset)
        for gcl in page:
            if gcl.name.startswith("tag:"):
                limits[gcl.name.removeprefix("tag:")] = gcl
        if len(page) < 200:
            return limits
        offset += 200


def read_managed(client: "SyncPrefectClient") -> set[str]:
    from prefect.variables import Variable

    value = Variable.get(MANAGED_VARIABLE, default=[])
    return {str(tag) for tag in value} if isinstance(value, list) else set()


def diff(registry: Registry, server: dict[str, "GlobalConcurrencyLimitResponse"], managed: set[str],
         prune: bool = False) -> list[LimitChange]:
    """What sync would do; ``extra`` rows are limits the file does not declare."""
    wanted = registry.tag_limits()
    changes: list[LimitChange] = []
    for tag, slots in wanted.items():
        gcl = server.get(tag)
        if gcl is None:
            changes.append(LimitChange(tag, "create", slots, None))
        elif gcl.limit != slots:
            changes.append(LimitChange(tag, "update", slots, gcl.limit, gcl.active))
        elif not gcl.active:
            changes.append(LimitChange(tag, "activate", slots, gcl.limit, False))
        else:
            changes.append(LimitChange(tag, "ok", slots, gcl.limit, True))
    for tag, gcl in sorted(server.items()):
        if tag in wanted:
            continue
        action: Action = "delete" if prune and tag in managed else "extra"
        changes.append(LimitChange(tag, action, None, gcl.limit, gcl.active))
    return changes


def plan(client: "SyncPrefectClient", registry: Registry, prune: bool = False) -> list[LimitChange]:
    return diff(registry, read_tag_limits(client), read_managed(client), prune=prune)


def sync(client: "SyncPrefectClient", registry: Registry, prune: bool = False) -> list[LimitChange]:
    """Make the server match the file; idempotent (a second run changes nothing)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.variables import Variable

    changes = plan(client, registry, prune=prune)
    for change in changes:
        name = limit_name_for(change.tag)
        if change.action == "create":
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=name, limit=change.file_slots or 1, active=True)
            )
        elif change.action in ("update", "activate"):
            client.update_global_concurrency_limit(
                name, GlobalConcurrencyLimitUpdate(limit=change.file_slots, active=True)
            )
        elif change.action == "delete":
            client.delete_global_concurrency_limit_by_name(name)
    managed = sorted((read_managed(client) | set(registry.tag_limits())) - {
        c.tag for c in changes if c.action == "delete"
    })
    if managed != sorted(read_managed(client)):
        Variable.set(MANAGED_VARIABLE, managed, overwrite=True)
    return changes


def check(client: "SyncPrefectClient", registry: Registry) -> tuple[list[str], list[str]]:
    """(errors, warnings). Errors: a factory tag with no active limit, which Prefect would
    run unlimited. Warnings: drift, a limit whose slots differ from the file (someone changed
    it in the UI or CLI; it still bounds the tag)."""
    errors: list[str] = []
    warnings: list[str] = []
    for change in plan(client, registry):
        name = limit_name_for(change.tag)
        if change.action == "create":
            errors.append(
                f"tag '{change.tag}' has no limit on the server, so Prefect would run it unlimited: "
                "run `uv run limits sync`"
            )
        elif change.action == "activate":
            errors.append(
                f"limit {name} is inactive, so Prefect would run tag '{change.tag}' unlimited: "
                "run `uv run limits sync`"
            )
        elif change.action == "update":
            warnings.append(
                f"limit {name} has {change.server_slots} slots but the limits file says "
                f"{change.file_slots}: `uv run limits sync` makes the server match the file"
            )
    return errors, warnings
