"""Limits as code: compare the limits file with the server, make the server match, check it.

Prefect runs a tag with no limit silently unlimited (DESIGN.md fact 2), so every entry
point calls :func:`check` before it runs anything. The set of limits this project manages
is recorded on the server itself (the Prefect variable ``etl_managed_limits``), so
``sync --prune`` deletes only limits that an earlier sync created, never anyone else's.

A resource with ``rate_per_second`` also gets a Prefect rate limit ``rate:<resource>``: a
global limit whose slots decay, so tasks that take one slot each start at most at that rate.
Its managed names go to their own variable (``etl_managed_rate_limits``), which keeps the
tag variable's format as it was and cannot mistake a flow-cap tag such as ``rate:api``
(resource ``rate``, flow ``api``) for the rate limit of resource ``api``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from common.resources import Registry, limit_name_for, rate_limit_name_for

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import GlobalConcurrencyLimitResponse

MANAGED_VARIABLE = "etl_managed_limits"
MANAGED_RATE_VARIABLE = "etl_managed_rate_limits"

Action = Literal["ok", "create", "update", "activate", "delete", "extra"]
Kind = Literal["tag", "rate"]
_PREFIX: dict[Kind, str] = {"tag": "tag:", "rate": "rate:"}


@dataclass(frozen=True)
class LimitChange:
    """One limit: what the file wants, what the server has, what sync does about it.

    ``kind`` "tag" is a tag limit (``tag`` is the tag); "rate" is a rate limit (``tag`` is
    the resource it paces, and the decays are its slots per second).
    """

    tag: str
    action: Action
    file_slots: int | None
    server_slots: int | None
    server_active: bool | None = None
    kind: Kind = "tag"
    file_decay: float | None = None
    server_decay: float | None = None

    @property
    def limit(self) -> str:
        return limit_name_for(self.tag) if self.kind == "tag" else rate_limit_name_for(self.tag)

    @property
    def changes_server(self) -> bool:
        return self.action in ("create", "update", "activate", "delete")

    def _amount(self, slots: int | None, decay: float | None) -> str:
        return f"{slots} slots" if self.kind == "tag" else f"{decay or 0:g} per second with a burst of {slots}"

    @property
    def wanted(self) -> str:
        """The file's value in words, e.g. "3 slots" or "4 per second with a burst of 4"."""
        return self._amount(self.file_slots, self.file_decay)

    @property
    def found(self) -> str:
        """The server's value in words."""
        return self._amount(self.server_slots, self.server_decay)

    def describe(self) -> str:
        name = self.limit
        # A tag row keeps its original wording ("... the file says 3").
        says = str(self.file_slots) if self.kind == "tag" else self.wanted
        unbound = "unlimited" if self.kind == "tag" else "unpaced"
        return {
            "ok": f"{name}: {self.wanted}, matches the file",
            "create": f"{name}: missing on the server; create with {self.wanted}",
            "update": f"{name}: {self.found} on the server, the file says {says}",
            "activate": f"{name}: inactive on the server ({unbound}); activate with {self.wanted}",
            "delete": f"{name}: managed by this project but no longer in the file; delete",
            "extra": f"{name}: on the server ({self.found}) but not in the file; left alone",
        }[self.action]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "limit": self.limit, "message": self.describe()}


def _read_prefixed(
    client: "SyncPrefectClient", kinds: tuple[Kind, ...]
) -> dict[Kind, dict[str, "GlobalConcurrencyLimitResponse"]]:
    """The server's limits of the given kinds, by name without the prefix (one paged read)."""
    out: dict[Kind, dict[str, GlobalConcurrencyLimitResponse]] = {kind: {} for kind in kinds}
    offset = 0
    while True:
        page = client.read_global_concurrency_limits(limit=200, offset=offset)
        for gcl in page:
            for kind in kinds:
                if gcl.name.startswith(_PREFIX[kind]):
                    out[kind][gcl.name.removeprefix(_PREFIX[kind])] = gcl
        if len(page) < 200:
            return out
        offset += 200


def read_tag_limits(client: "SyncPrefectClient") -> dict[str, "GlobalConcurrencyLimitResponse"]:
    """Every ``tag:`` global concurrency limit on the server, by tag."""
    return _read_prefixed(client, ("tag",))["tag"]


def _read_list(name: str) -> set[str]:
    from prefect.variables import Variable

    value = Variable.get(name, default=[])
    return {str(item) for item in value} if isinstance(value, list) else set()


def read_managed(client: "SyncPrefectClient") -> set[str]:
    return _read_list(MANAGED_VARIABLE)


def read_managed_rates(client: "SyncPrefectClient") -> set[str]:
    """Resources whose ``rate:`` limit an earlier sync created (stored as limit names)."""
    prefix = _PREFIX["rate"]
    return {name.removeprefix(prefix) for name in _read_list(MANAGED_RATE_VARIABLE) if name.startswith(prefix)}


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


def diff_rates(registry: Registry, server: dict[str, "GlobalConcurrencyLimitResponse"], managed: set[str],
               prune: bool = False) -> list[LimitChange]:
    """Like :func:`diff`, for the ``rate:`` limits (by resource name); the decay counts too,
    since it is the rate."""
    wanted = registry.rate_limits()
    changes: list[LimitChange] = []
    for name, (slots, decay) in wanted.items():
        gcl = server.get(name)
        if gcl is None:
            changes.append(LimitChange(name, "create", slots, None, kind="rate", file_decay=decay))
            continue
        have = {"server_slots": gcl.limit, "server_active": gcl.active, "server_decay": gcl.slot_decay_per_second}
        if gcl.limit != slots or not math.isclose(gcl.slot_decay_per_second, decay, rel_tol=1e-9):
            action: Action = "update"
        elif not gcl.active:
            action = "activate"
        else:
            action = "ok"
        changes.append(LimitChange(name, action, slots, kind="rate", file_decay=decay, **have))
    for name, gcl in sorted(server.items()):
        if name in wanted:
            continue
        action = "delete" if prune and name in managed else "extra"
        changes.append(LimitChange(name, action, None, gcl.limit, gcl.active, kind="rate",
                                   server_decay=gcl.slot_decay_per_second))
    return changes


def plan(client: "SyncPrefectClient", registry: Registry, prune: bool = False) -> list[LimitChange]:
    server = _read_prefixed(client, ("tag", "rate"))
    return [
        *diff(registry, server["tag"], read_managed(client), prune=prune),
        *diff_rates(registry, server["rate"], read_managed_rates(client), prune=prune),
    ]


def _apply(client: "SyncPrefectClient", change: LimitChange) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate

    # Tag limits are written exactly as before; only a rate limit sets a decay.
    decay = {} if change.kind == "tag" else {"slot_decay_per_second": change.file_decay}
    if change.action == "create":
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=change.limit, limit=change.file_slots or 1, active=True, **decay)
        )
    elif change.action in ("update", "activate"):
        client.update_global_concurrency_limit(
            change.limit, GlobalConcurrencyLimitUpdate(limit=change.file_slots, active=True, **decay)
        )
    elif change.action == "delete":
        client.delete_global_concurrency_limit_by_name(change.limit)


def _record_managed(variable: str, before: set[str], declared: set[str], deleted: set[str]) -> None:
    from prefect.variables import Variable

    managed = sorted((before | declared) - deleted)
    if managed != sorted(before):
        Variable.set(variable, managed, overwrite=True)


def sync(client: "SyncPrefectClient", registry: Registry, prune: bool = False) -> list[LimitChange]:
    """Make the server match the file; idempotent (a second run changes nothing)."""
    changes = plan(client, registry, prune=prune)
    for change in changes:
        _apply(client, change)
    deleted = {(c.kind, c.tag) for c in changes if c.action == "delete"}
    _record_managed(MANAGED_VARIABLE, read_managed(client), set(registry.tag_limits()),
                    {tag for kind, tag in deleted if kind == "tag"})
    rate = _PREFIX["rate"]
    _record_managed(MANAGED_RATE_VARIABLE, {rate + n for n in read_managed_rates(client)},
                    {rate + n for n in registry.rate_limits()}, {rate + n for kind, n in deleted if kind == "rate"})
    return changes


def check(client: "SyncPrefectClient", registry: Registry) -> tuple[list[str], list[str]]:
    """(errors, warnings). Errors: a factory tag with no active limit, which Prefect would
    run unlimited; a declared rate with no active rate limit (its tasks would fail, or run
    unpaced). Warnings: drift, a limit that differs from the file (someone changed it in
    the UI or CLI; it still bounds the tag or paces the resource)."""
    return assess(plan(client, registry))


def assess(changes: list[LimitChange]) -> tuple[list[str], list[str]]:
    """:func:`check` on a plan already read from the server."""
    errors: list[str] = []
    warnings: list[str] = []
    for change in changes:
        if change.kind == "rate":
            _check_rate(change, errors, warnings)
            continue
        name = change.limit
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


def _check_rate(change: LimitChange, errors: list[str], warnings: list[str]) -> None:
    name, resource = change.limit, change.tag
    if change.action == "create":
        errors.append(
            f"rate limit {name} is missing on the server, so every '{resource}' task would fail "
            "taking its rate slot: run `uv run limits sync`"
        )
    elif change.action == "activate":
        errors.append(
            f"rate limit {name} is inactive, so Prefect would not pace '{resource}' at all: "
            "run `uv run limits sync`"
        )
    elif change.action == "update":
        warnings.append(
            f"rate limit {name} is {change.found} but the limits file says {change.wanted}: "
            "`uv run limits sync` makes the server match the file"
        )
