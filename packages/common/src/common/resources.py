"""The registry of shared resources, fed by ``limits.toml``.

A resource is a fragile shared system (the database, the partner API). Its name is the
Prefect tag its tasks carry and the server-side limit ``tag:<name>`` that bounds them
across every flow. This module is the only place that turns a resource into tag strings.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from common.alerting import (
    NAME_CHARS,
    AlertSettings,
    AutomationSpec,
    checked_table,
    parse_alerts,
    parse_automations,
)
from common.errors import UserError

DATABASE = "database"
API = "api"

_KNOWN_KEYS = {
    "slots",
    "description",
    "retries",
    "retry_delay_seconds",
    "timeout_seconds",
    "flows",
    "rate_per_second",
}


class LimitsFileError(UserError, ValueError):
    """The limits file is malformed; the message is one line naming file, entry and problem."""


@dataclass(frozen=True)
class Resource:
    """One shared system and how tasks that use it behave."""

    name: str
    slots: int
    description: str = ""
    retries: int = 2
    retry_delay_seconds: float = 1.0
    timeout_seconds: float | None = None
    flow_caps: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    rate_per_second: float | None = None

    @property
    def tag(self) -> str:
        return self.name

    @property
    def limit_name(self) -> str:
        """The global concurrency limit Prefect's task engine acquires for this tag."""
        return limit_name_for(self.tag)

    @property
    def rate_limit_name(self) -> str | None:
        """The Prefect rate limit (a decaying global limit) that paces this resource, if any."""
        return None if self.rate_per_second is None else rate_limit_name_for(self.name)

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """(limit, slot_decay_per_second) for the server: ceil(rate) requests may start at
        once (the burst), then the slots decay at ``rate`` per second."""
        if self.rate_per_second is None:
            return None
        return max(1, math.ceil(self.rate_per_second)), self.rate_per_second

    def tags_for(self, flow: str | None) -> list[str]:
        """Tags a task of ``flow`` carries: the shared tag, plus the flow's cap tag if capped."""
        tags = [self.tag]
        if flow is not None and flow in self.flow_caps:
            tags.append(f"{self.tag}:{flow}")
        return tags

    def limits(self) -> dict[str, int]:
        """Every server-side limit this resource needs: tag -> slots."""
        out = {self.tag: self.slots}
        for flow, cap in self.flow_caps.items():
            out[f"{self.tag}:{flow}"] = cap
        return out


def check_flow_name(flow: str) -> str:
    """``flow`` if it can name a flow (and its cap tag ``<resource>:<flow>``); else one line."""
    if not isinstance(flow, str) or not flow or not set(flow) <= NAME_CHARS:
        raise LimitsFileError(f"flow name {flow!r} must use only a-z, 0-9, '_' and '-'")
    return flow


def limit_name_for(tag: str) -> str:
    return f"tag:{tag}"


def rate_limit_name_for(resource: str) -> str:
    return f"rate:{resource}"


@dataclass(frozen=True)
class Registry:
    """All resources declared in one limits file."""

    path: Path
    resources: Mapping[str, Resource]
    alerts: AlertSettings = AlertSettings()
    automations: Mapping[str, AutomationSpec] = field(default_factory=lambda: MappingProxyType({}))

    def __getitem__(self, name: str) -> Resource:
        try:
            return self.resources[name]
        except KeyError:
            raise LimitsFileError(f"{self.path}: no [resources.{name}] entry; add it with a 'slots' value") from None

    def tag_limits(self) -> dict[str, int]:
        """Every tag the task factories may use, with the slots the server must hold for it."""
        out: dict[str, int] = {}
        for resource in self.resources.values():
            out.update(resource.limits())
        return out

    def rate_limits(self) -> dict[str, tuple[int, float]]:
        """Resources paced by a rate limit: resource name -> (limit, slot_decay_per_second)."""
        return {name: r.rate_limit for name, r in self.resources.items() if r.rate_limit is not None}


def _positive_int(path: Path, entry: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LimitsFileError(f"{path}: [{entry}] {key} must be a whole number, got {value!r}")
    if value < 1:
        raise LimitsFileError(f"{path}: [{entry}] {key} must be at least 1, got {value}")
    return value


def _non_negative_number(path: Path, entry: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise LimitsFileError(f"{path}: [{entry}] {key} must be a number >= 0, got {value!r}")
    return float(value)


def _positive_rate(path: Path, entry: str, value: Any) -> float:
    """A rate the server can decay by: finite and above zero (TOML also allows inf and nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise LimitsFileError(
            f"{path}: [{entry}] rate_per_second must be a number of requests per second above 0, got {value!r}"
        )
    return float(value)


def _parse_resource(path: Path, name: str, raw: Any) -> Resource:
    entry = f"resources.{name}"
    raw = checked_table(path, entry, name, raw, _KNOWN_KEYS, ("slots",), "at least 'slots'", LimitsFileError)
    slots = _positive_int(path, entry, "slots", raw["slots"])
    description = raw.get("description", "")
    if not isinstance(description, str) or "\n" in description:
        raise LimitsFileError(f"{path}: [{entry}] description must be one line of text")
    retries = raw.get("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise LimitsFileError(f"{path}: [{entry}] retries must be a whole number >= 0, got {retries!r}")
    delay = _non_negative_number(path, entry, "retry_delay_seconds", raw.get("retry_delay_seconds", 1))
    timeout = raw.get("timeout_seconds")
    if timeout is not None:
        timeout = _non_negative_number(path, entry, "timeout_seconds", timeout) or None
    flows_raw = raw.get("flows", {})
    if not isinstance(flows_raw, dict):
        raise LimitsFileError(f"{path}: [{entry}.flows] must be a table of flow = slots")
    caps: dict[str, int] = {}
    for flow, cap in flows_raw.items():
        if not set(flow) <= NAME_CHARS or not flow:
            raise LimitsFileError(f"{path}: [{entry}.flows] flow name {flow!r} must use only a-z, 0-9, '_' and '-'")
        caps[flow] = _positive_int(path, f"{entry}.flows", flow, cap)
        if caps[flow] > slots:
            raise LimitsFileError(
                f"{path}: [{entry}.flows] {flow} = {cap} is above the resource's {slots} slots; lower it"
            )
    rate = raw.get("rate_per_second")
    if rate is not None:
        rate = _positive_rate(path, entry, rate)
    return Resource(
        name=name,
        slots=slots,
        description=description,
        retries=retries,
        retry_delay_seconds=delay,
        timeout_seconds=timeout,
        flow_caps=MappingProxyType(caps),
        rate_per_second=rate,
    )


def _check_caps(path: Path, resources: Mapping[str, Resource], flows: frozenset[str]) -> None:
    """A cap must name a flow some installed package declares: a misspelled one would create
    a limit that no task carries, and leave the flow uncapped."""
    for resource in resources.values():
        for flow in resource.flow_caps:
            if flow not in flows:
                raise LimitsFileError(
                    f"{path}: [resources.{resource.name}.flows] caps {flow!r}, which no flow package declares; "
                    f"declared flows: {', '.join(sorted(flows))}"
                )


def parse_limits(text: str, path: Path, flows: frozenset[str] | None = None) -> Registry:
    """Parse and validate limits-file text; raise LimitsFileError on the first problem.

    ``flows``: the flows a cap may name (default: the ones the installed flow packages declare,
    :func:`common.flow_packages.declared_flows`; not checked where no flow package is installed,
    as for the operator tools alone)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib rejects duplicate tables/keys here, which covers duplicate names.
        raise LimitsFileError(f"{path}: not valid TOML ({exc})") from None
    extra = sorted(set(data) - {"resources", "alerts", "automations"})
    if extra:
        raise LimitsFileError(
            f"{path}: unknown top-level key {extra[0]!r}; allowed: [resources.<name>], [alerts], [automations.<name>]"
        )
    raw_resources = data.get("resources")
    if not isinstance(raw_resources, dict) or not raw_resources:
        raise LimitsFileError(f"{path}: declares no resources; add [resources.<name>] with slots")
    resources = {name: _parse_resource(path, name, raw) for name, raw in raw_resources.items()}
    for required in (DATABASE, API):
        if required not in resources:
            raise LimitsFileError(f"{path}: missing [resources.{required}]; the flows' task factories use it")
    if flows is None:
        from common.flow_packages import declared_flows

        flows = frozenset(declared_flows())
    if flows:
        _check_caps(path, resources, flows)
    tags = [tag for r in resources.values() for tag in r.limits()]
    if len(tags) != len(set(tags)):
        dup = next(t for t in tags if tags.count(t) > 1)
        raise LimitsFileError(f"{path}: tag {dup!r} is declared twice; rename one entry")
    return Registry(
        path=path,
        resources=MappingProxyType(resources),
        alerts=parse_alerts(path, data.get("alerts")),
        automations=MappingProxyType(dict(parse_automations(path, data.get("automations"), sorted(set(tags))))),
    )


def load_registry(path: Path) -> Registry:
    """Read and validate the limits file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LimitsFileError(f"{path}: limits file not found; set ETL_LIMITS_FILE or create it") from None
    return parse_limits(text, path)


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The registry for this process's settings (read once)."""
    from common.settings import get_settings

    return load_registry(get_settings().limits_file)
