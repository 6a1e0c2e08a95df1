"""What ``limits.toml`` says about alerts: when a full limit is worth an event, and the Prefect
automations ``uv run limits sync`` keeps on the server.

The watchdog (serve-all's, or ``uv run slots doctor``) sends the events named in
:data:`EVENTS` through Prefect's events client; an automation declared here reacts to them::

    [alerts]
    saturated_after_seconds = 300      # a limit full, with tasks waiting, this long: one event

    [automations.slots-leaked]
    on = ["shared-limits.anomaly.detected"]
    tags = ["database"]                # optional: only events about these limits
    notify = "custom-webhook/ops"      # a notification block: <block type slug>/<block name>

Each problem with the file is one line naming the entry and what to write instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from common.errors import UserError

EVENT_PREFIX = "shared-limits"
ANOMALY = f"{EVENT_PREFIX}.anomaly.detected"
REPAIRED = f"{EVENT_PREFIX}.slots.repaired"
SATURATED = f"{EVENT_PREFIX}.limit.saturated"
RECOVERED = f"{EVENT_PREFIX}.limit.recovered"
EVENTS = (ANOMALY, REPAIRED, SATURATED, RECOVERED)
# What the slot rulebook (slot_tools.rules) can find: one list, for its findings and for the
# `kinds` an automation may filter on.
AnomalyKind = Literal[
    "no-limit",
    "inactive",
    "drift",
    "holder-over",
    "holder-flow-run-over",
    "counter-above-holders",
    "running-without-slot",
]
ANOMALY_KINDS: tuple[AnomalyKind, ...] = get_args(AnomalyKind)

DEFAULT_SATURATED_AFTER = 300.0
DEFAULT_SUBJECT = "{{ event.resource['prefect.resource.name'] }}: {{ event.event }}"
DEFAULT_BODY = "{{ event.payload.message }} (flows: {{ event.resource['shared-limits.flows'] or 'none' }})"
_AUTOMATION_KEYS = {"on", "tags", "kinds", "notify", "subject", "body", "enabled", "description"}
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")  # of a [section.<name>] of the limits file


def checked_table(
    path: Path,
    entry: str,
    name: str,
    raw: Any,
    known: Iterable[str],
    required: Iterable[str],
    shape: str,
    error: type[UserError],
) -> dict[str, Any]:
    """``raw``, the ``[entry]`` table of the limits file, once its name, its keys and its
    required keys are right; otherwise ``error`` with one line naming the file and the entry.
    Every named table of the file (resources, automations) is checked this way."""
    if not name or not set(name) <= NAME_CHARS:
        raise error(f"{path}: [{entry}] name must use only a-z, 0-9, '_' and '-'")
    if not isinstance(raw, dict):
        raise error(f"{path}: [{entry}] must be a table with {shape}")
    allowed = sorted(known)
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise error(f"{path}: [{entry}] unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    for key in required:
        if key not in raw:
            raise error(f"{path}: [{entry}] is missing {key!r}")
    return raw


class AlertsConfigError(UserError, ValueError):
    """The alerts or automations of the limits file are malformed (one line)."""


@dataclass(frozen=True)
class AlertSettings:
    saturated_after_seconds: float = DEFAULT_SATURATED_AFTER


@dataclass(frozen=True)
class AutomationSpec:
    """One Prefect automation the limits file declares: on which events, what to do."""

    name: str
    on: tuple[str, ...]
    notify: str  # <block type slug>/<block document name>
    tags: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    subject: str = DEFAULT_SUBJECT
    body: str = DEFAULT_BODY
    enabled: bool = True
    description: str = ""

    @property
    def block_type(self) -> str:
        return self.notify.split("/", 1)[0]

    @property
    def block_name(self) -> str:
        return self.notify.split("/", 1)[1]


def _strings(path: Path, entry: str, key: str, value: Any, allowed: Iterable[str]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise AlertsConfigError(f"{path}: [{entry}] {key} must be a name or a list of names")
    known = list(allowed)
    for item in items:
        if item not in known:
            raise AlertsConfigError(f"{path}: [{entry}] {key}: unknown {item!r}; known: {', '.join(known)}")
    return tuple(items)


def parse_alerts(path: Path, raw: Any) -> AlertSettings:
    if raw is None:
        return AlertSettings()
    if not isinstance(raw, dict) or set(raw) - {"saturated_after_seconds"}:
        raise AlertsConfigError(f"{path}: [alerts] takes only saturated_after_seconds (a number of seconds)")
    value = raw.get("saturated_after_seconds", DEFAULT_SATURATED_AFTER)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 86400:
        raise AlertsConfigError(
            f"{path}: [alerts] saturated_after_seconds must be seconds from 0 to 86399, got {value!r}"
        )
    return AlertSettings(float(value))


def parse_automations(path: Path, raw: Any, tags: Iterable[str]) -> Mapping[str, AutomationSpec]:
    """The ``[automations.<name>]`` tables; ``tags`` are the limits a filter may name."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise AlertsConfigError(f"{path}: [automations] must hold [automations.<name>] tables")
    out: dict[str, AutomationSpec] = {}
    for name, spec in raw.items():
        entry = f"automations.{name}"
        checked_table(
            path, entry, name, spec, _AUTOMATION_KEYS, ("on", "notify"), "'on' and 'notify'", AlertsConfigError
        )
        notify = spec["notify"]
        if not isinstance(notify, str) or notify.count("/") != 1 or not all(notify.split("/")):
            raise AlertsConfigError(
                f"{path}: [{entry}] notify must name a notification block as <block type slug>/<block name>, "
                f"e.g. custom-webhook/ops; got {notify!r}"
            )
        texts = {}
        for key in ("subject", "body", "description"):
            value = spec.get(key)
            if value is not None and not isinstance(value, str):
                raise AlertsConfigError(f"{path}: [{entry}] {key} must be text")
            texts[key] = value
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            raise AlertsConfigError(f"{path}: [{entry}] enabled must be true or false")
        out[name] = AutomationSpec(
            name=name,
            on=_strings(path, entry, "on", spec["on"], EVENTS),
            notify=notify,
            tags=_strings(path, entry, "tags", spec["tags"], tags) if "tags" in spec else (),
            kinds=_strings(path, entry, "kinds", spec["kinds"], ANOMALY_KINDS) if "kinds" in spec else (),
            subject=texts["subject"] or DEFAULT_SUBJECT,
            body=texts["body"] or DEFAULT_BODY,
            enabled=enabled,
            description=texts["description"] or "",
        )
    return out
