"""``uv run limits sync``: make the server's limits match the limits file.

The set of limits this project manages is recorded on the server itself (the Prefect
variable ``etl_managed_limits``), so ``sync --prune`` deletes only limits that an earlier
sync created, never anyone else's. Managed rate limits go to their own variable
(``etl_managed_rate_limits``), which keeps the tag variable's format as it was and cannot
mistake a flow-cap tag such as ``rate:api`` (resource ``rate``, flow ``api``) for the rate
limit of resource ``api``. The comparison itself is :mod:`common.limits_check`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.limits_check import PREFIXES, LimitChange, diff, diff_rates, read_server_limits
from common.prefect_rest import PrefectRest
from common.resources import Registry

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

MANAGED_VARIABLE = "etl_managed_limits"
MANAGED_RATE_VARIABLE = "etl_managed_rate_limits"


def read_list(name: str) -> set[str]:
    from prefect.variables import Variable

    value: object = Variable.get(name, default=[])
    return {str(item) for item in value} if isinstance(value, list) else set()


def read_managed(client: SyncPrefectClient) -> set[str]:
    return read_list(MANAGED_VARIABLE)


def read_managed_rates(client: SyncPrefectClient) -> set[str]:
    """Resources whose ``rate:`` limit an earlier sync created (stored as limit names)."""
    prefix = PREFIXES["rate"]
    return {name.removeprefix(prefix) for name in read_list(MANAGED_RATE_VARIABLE) if name.startswith(prefix)}


def plan(client: SyncPrefectClient, registry: Registry, prune: bool = False) -> list[LimitChange]:
    """What sync would do, limit by limit (``diff`` shows it; ``sync`` applies it)."""
    with PrefectRest(str(client.api_url)) as rest:
        server = read_server_limits(rest)
    return [
        *diff(registry, server["tag"], read_managed(client), prune=prune),
        *diff_rates(registry, server["rate"], read_managed_rates(client), prune=prune),
    ]


def _apply(client: SyncPrefectClient, change: LimitChange) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate

    # Tag limits are written exactly as before; only a rate limit sets a decay.
    decay = None if change.kind == "tag" else change.file_decay
    if change.action == "create":
        from prefect.exceptions import ObjectAlreadyExists

        create = GlobalConcurrencyLimitCreate(name=change.limit, limit=change.file_slots or 1, active=True)
        if decay is not None:
            create.slot_decay_per_second = decay
        try:
            client.create_global_concurrency_limit(create)
            return
        except ObjectAlreadyExists:
            pass  # another sync (a second machine starting at the same moment) created it: make it match
    if change.action in ("create", "update", "activate"):
        update = GlobalConcurrencyLimitUpdate(limit=change.file_slots, active=True)
        if decay is not None:
            update.slot_decay_per_second = decay  # set, so sent: the update sends only what was set
        client.update_global_concurrency_limit(change.limit, update)
    elif change.action == "delete":
        client.delete_global_concurrency_limit_by_name(change.limit)


def record_managed(variable: str, before: set[str], declared: set[str], deleted: set[str]) -> None:
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.variables import Variable

    managed = sorted((before | declared) - deleted)
    if managed != sorted(before):
        try:
            Variable.set(variable, managed, overwrite=True)
        except ObjectAlreadyExists:  # a concurrent sync created the variable first: overwrite it
            Variable.set(variable, managed, overwrite=True)


def sync(client: SyncPrefectClient, registry: Registry, prune: bool = False) -> list[LimitChange]:
    """Make the server match the file; idempotent (a second run changes nothing)."""
    changes = plan(client, registry, prune=prune)
    for change in changes:
        _apply(client, change)
    deleted = {(c.kind, c.tag) for c in changes if c.action == "delete"}
    record_managed(
        MANAGED_VARIABLE,
        read_managed(client),
        set(registry.tag_limits()),
        {tag for kind, tag in deleted if kind == "tag"},
    )
    rate = PREFIXES["rate"]
    record_managed(
        MANAGED_RATE_VARIABLE,
        {rate + n for n in read_managed_rates(client)},
        {rate + n for n in registry.rate_limits()},
        {rate + n for kind, n in deleted if kind == "rate"},
    )
    return changes
