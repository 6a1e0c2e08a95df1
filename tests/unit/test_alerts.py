"""The watchdog's events and the board's metrics, on hand-made readings: each anomaly told
once however long it lasts, none when nothing is wrong, a long saturation told once and its
recovery once; the metrics parsed by prometheus-client's own parser; one reading shared."""

from __future__ import annotations

import typing
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.alerting import ANOMALY, ANOMALY_KINDS, RECOVERED, SATURATED, AlertsConfigError, parse_automations
from common.resources import parse_limits
from slot_tools.alerts import Alerts
from slot_tools.metrics import exposition, metrics_registry
from slot_tools.model import LimitView, RunRef, Snapshot
from slot_tools.reading import Readings
from slot_tools.rules import Kind
from slot_tools.watchdog import Watchdog

LIMITS = Path("limits.toml")
_stamp = count()


def reading(*, leaked: bool = False, full: bool = False, holders: int = 1) -> Snapshot:
    """One reading of `database` (3 slots): ``leaked`` adds a holder whose task run is over;
    ``full`` takes every slot with a task waiting."""
    live = [RunRef(f"t{i}", f"extract-{i}", "RUNNING", "ingest", flow_run_id="f1", waited=0.5) for i in range(holders)]
    if leaked:
        live.append(RunRef("dead", "extract-x", "COMPLETED", "reports", flow_run_id="f2", over_for=60.0))
    waiters = [RunRef("w1", "run-report-a", "PENDING", "reports", seconds=12.0)] if full else []
    used = 3 if full else len(live)
    view = LimitView("database", "tag:database", "", 3, 3, True, used, live, waiters, used_after=used, limit_id="L1")
    return Snapshot(taken_at=f"2026-12-06T00:00:{next(_stamp):06d}", api_url="", limits=[view])


class Events:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    def __call__(self, event: str, resource: dict[str, str], related: list[dict[str, str]], payload: Any) -> None:
        self.sent.append((event, resource, payload))


def watchdog(readings: list[Snapshot], saturated_after: float = 300.0) -> tuple[Watchdog, Events, list[float]]:
    now = [0.0]
    events = Events()
    feed = iter(readings)
    source = Readings(None, "", max_age=0.0, read=lambda *_: next(feed))  # type: ignore[arg-type]
    alerts = Alerts(saturated_after, send=events, clock=lambda: now[0])
    dog = Watchdog(source, grace=1e9, clock=lambda: now[0], alerts=alerts)  # never repairs here
    return dog, events, now


def test_the_rulebook_and_the_events_know_the_same_anomaly_kinds() -> None:
    assert typing.get_args(Kind) == ANOMALY_KINDS


def test_a_persisting_anomaly_is_one_event_naming_the_limit_and_flow() -> None:
    dog, events, now = watchdog([reading(leaked=True) for _ in range(6)])
    for _ in range(6):
        dog.tick()
        now[0] += 2.0
    assert [e for e, _, _ in events.sent] == [ANOMALY]
    _, resource, payload = events.sent[0]
    assert resource["prefect.resource.id"] == "prefect.concurrency-limit.L1"
    assert resource["prefect.resource.name"] == "tag:database" and resource["shared-limits.tag"] == "database"
    assert resource["shared-limits.kind"] == "holder-over" and resource["shared-limits.flows"] == "reports"
    assert payload["task_run_ids"] == ["dead"] and "extract-x" in payload["message"]


def test_no_anomaly_no_event() -> None:
    dog, events, now = watchdog([reading() for _ in range(5)])
    for _ in range(5):
        dog.tick()
        now[0] += 2.0
    assert events.sent == []


def test_a_limit_full_with_waiters_is_told_once_after_the_threshold_and_its_recovery_once() -> None:
    readings = [reading(full=True, holders=3) for _ in range(8)] + [reading(), reading()]
    dog, events, now = watchdog(readings, saturated_after=10.0)
    for _ in readings:
        dog.tick()
        now[0] += 2.0
    assert [e for e, _, _ in events.sent] == [SATURATED, RECOVERED]
    saturated = events.sent[0][2]
    assert saturated["waiters"] == 1 and saturated["longest_wait_seconds"] == 12.0
    assert saturated["full_for_seconds"] >= 10.0
    assert events.sent[0][1]["shared-limits.flows"] == "ingest,reports"


def test_callers_within_the_max_age_share_one_reading() -> None:
    reads = iter([reading(), reading()])
    source = Readings(None, "", max_age=60.0, read=lambda *_: next(reads))  # type: ignore[arg-type]
    first, second = source.latest(), source.latest()
    assert first is second and source.reads == 1
    assert source.fresh() is not first and source.reads == 2


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_parse_and_count_each_holders_wait_once() -> None:
    snaps = iter([reading(full=True, holders=3), reading(full=True, holders=3)])
    source = Readings(None, "", max_age=0.0, read=lambda *_: next(snaps))  # type: ignore[arg-type]
    registry = metrics_registry(source, lambda: [])
    exposition(registry)  # the first reading: three new holders
    metrics = _samples(exposition(registry).decode())  # the second: the same three again
    db = (("tag", "database"),)
    assert metrics[("shared_limits_slots", db)] == 3 and metrics[("shared_limits_slots_used", db)] == 3
    assert metrics[("shared_limits_holders", (("flow", "ingest"), *db))] == 3
    assert metrics[("shared_limits_waiters", db)] == 1 and metrics[("shared_limits_longest_wait_seconds", db)] == 12
    assert metrics[("shared_limits_drift", db)] == 0 and metrics[("shared_limits_repairs_total", db)] == 0
    assert metrics[("shared_limits_slot_wait_seconds_count", db)] == 3
    assert metrics[("shared_limits_slot_wait_seconds_bucket", (("le", "0.5"), *db))] == 3


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"on": "shared-limits.anomaly.detect", "notify": "custom-webhook/x"}, "on: unknown 'shared-limits.anomaly"),
        ({"on": "shared-limits.anomaly.detected", "notify": "x"}, "notify must name a notification block"),
        ({"on": "shared-limits.anomaly.detected", "notify": "a/b", "tags": ["databse"]}, "tags: unknown 'databse'"),
        ({"on": "shared-limits.anomaly.detected", "notify": "a/b", "kinds": ["leak"]}, "kinds: unknown 'leak'"),
        ({"on": "shared-limits.anomaly.detected"}, "is missing 'notify'"),
    ],
)
def test_a_bad_automation_is_one_line_naming_it(entry: dict[str, Any], expected: str) -> None:
    with pytest.raises(AlertsConfigError) as error:
        parse_automations(LIMITS, {"ops": entry}, ["database", "api"])
    message = str(error.value)
    assert "\n" not in message and "[automations.ops]" in message and expected in message, message


def test_the_repositorys_limits_file_declares_its_automation() -> None:
    registry = parse_limits(Path("limits.toml").read_text(encoding="utf-8"), LIMITS, frozenset())
    spec = registry.automations["shared-slot-alerts"]
    assert ANOMALY in spec.on and spec.notify == "custom-webhook/shared-slot-alerts"
    assert registry.alerts.saturated_after_seconds == 300


def test_the_wait_histogram_exists_at_zero_before_any_holder() -> None:
    source = Readings(None, "", max_age=0.0, read=lambda *_: reading(full=False, holders=0))  # type: ignore[arg-type]
    metrics = _samples(exposition(metrics_registry(source, lambda: [])).decode())
    db = (("tag", "database"),)
    assert metrics[("shared_limits_slot_wait_seconds_count", db)] == 0
    assert metrics[("shared_limits_slot_wait_seconds_sum", db)] == 0
