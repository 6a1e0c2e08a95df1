"""The fail-closed limits check: compare the limits file with the server's limits.

Prefect runs a tag with no limit silently unlimited (docs/prefect-facts.md, fact 2), so every entry
point and every flow run calls :func:`require_limits` before it runs anything. The same
comparison (:func:`diff`, one :class:`LimitChange` per limit) is what ``uv run limits
diff`` shows and what ``uv run limits sync`` applies (``slot_tools.limits_sync``).

A resource with ``rate_per_second`` also gets a Prefect rate limit ``rate:<resource>``: a
global limit whose slots decay, so tasks that take one slot each start at most at that rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from common.errors import UserError
from common.resources import Registry, limit_name_for, rate_limit_name_for

if TYPE_CHECKING:
    from common.prefect_rest import LimitRec, PrefectRest

Action = Literal["ok", "create", "update", "activate", "delete", "extra"]
Kind = Literal["tag", "rate"]
PREFIXES: dict[Kind, str] = {"tag": "tag:", "rate": "rate:"}


class LimitsCheckError(UserError):
    """A factory tag has no active limit on the server (Prefect would run it unlimited)."""


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


def read_server_limits(rest: PrefectRest) -> dict[Kind, dict[str, LimitRec]]:
    """The server's ``tag:`` and ``rate:`` limits, by name without the prefix (one paged read)."""
    out: dict[Kind, dict[str, LimitRec]] = {kind: {} for kind in PREFIXES}
    for gcl in rest.global_limits():
        for kind, prefix in PREFIXES.items():
            if gcl.name.startswith(prefix):
                out[kind][gcl.name.removeprefix(prefix)] = gcl
    return out


def diff(registry: Registry, server: dict[str, LimitRec], managed: set[str], prune: bool = False) -> list[LimitChange]:
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


def diff_rates(
    registry: Registry, server: dict[str, LimitRec], managed: set[str], prune: bool = False
) -> list[LimitChange]:
    """Like :func:`diff`, for the ``rate:`` limits (by resource name); the decay counts too,
    since it is the rate."""
    wanted = registry.rate_limits()
    changes: list[LimitChange] = []
    for name, (slots, decay) in wanted.items():
        gcl = server.get(name)
        if gcl is None:
            changes.append(LimitChange(name, "create", slots, None, kind="rate", file_decay=decay))
            continue
        if gcl.limit != slots or not math.isclose(gcl.slot_decay_per_second, decay, rel_tol=1e-9):
            action: Action = "update"
        elif not gcl.active:
            action = "activate"
        else:
            action = "ok"
        changes.append(
            LimitChange(
                name,
                action,
                slots,
                server_slots=gcl.limit,
                server_active=gcl.active,
                kind="rate",
                file_decay=decay,
                server_decay=gcl.slot_decay_per_second,
            )
        )
    for name, gcl in sorted(server.items()):
        if name in wanted:
            continue
        action = "delete" if prune and name in managed else "extra"
        changes.append(
            LimitChange(name, action, None, gcl.limit, gcl.active, kind="rate", server_decay=gcl.slot_decay_per_second)
        )
    return changes


def check(rest: PrefectRest, registry: Registry) -> tuple[list[str], list[str]]:
    """(errors, warnings). Errors: a factory tag with no active limit, which Prefect would
    run unlimited; a declared rate with no active rate limit (its tasks would fail, or run
    unpaced). Warnings: drift, a limit that differs from the file (someone changed it in
    the UI or CLI; it still bounds the tag or paces the resource)."""
    server = read_server_limits(rest)
    return assess([*diff(registry, server["tag"], set()), *diff_rates(registry, server["rate"], set())])


def require_limits(registry: Registry, api_url: str | None = None) -> None:
    """Refuse to run when a tag the factories use has no active limit; warn on drift.

    Every entry point and every flow run calls this before any task: Prefect would run a
    tag with no limit silently unlimited. ``api_url`` defaults to the server this process
    uses (Prefect's ``PREFECT_API_URL`` setting).
    """
    from common.logs import get_logger
    from common.prefect_rest import PrefectRest

    if api_url is None:
        from prefect.settings import PREFECT_API_URL

        api_url = str(PREFECT_API_URL.value())
    with PrefectRest(api_url) as rest:
        errors, warnings = check(rest, registry)
    for warning in warnings:
        get_logger("limits").warning(warning)
    if errors:
        raise LimitsCheckError("; ".join(errors))


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
                f"limit {name} is inactive, so Prefect would run tag '{change.tag}' unlimited: run `uv run limits sync`"
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
            f"rate limit {name} is inactive, so Prefect would not pace '{resource}' at all: run `uv run limits sync`"
        )
    elif change.action == "update":
        warnings.append(
            f"rate limit {name} is {change.found} but the limits file says {change.wanted}: "
            "`uv run limits sync` makes the server match the file"
        )
