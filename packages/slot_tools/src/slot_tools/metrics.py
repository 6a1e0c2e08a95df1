"""``/metrics``: the shared limits in Prometheus' text format, from the board's own reading.

Prefect's server exposes no concurrency metrics; this does, with ``prometheus-client``. Every
gauge comes from the latest shared reading (:class:`slot_tools.reading.Readings`), so a scrape
adds no request to the Prefect server beyond what the board reads anyway. The names, each
labelled by ``tag`` (docs/alerts.md lists them):

- ``shared_limits_slots``, ``shared_limits_slots_used``: the limit and its counter;
- ``shared_limits_waiters``, ``shared_limits_longest_wait_seconds``: task runs waiting for a slot;
- ``shared_limits_holders`` (also by ``flow``): task runs holding a slot;
- ``shared_limits_anomalies`` (also by ``kind``): what the rulebook finds now;
- ``shared_limits_drift``: 1 when the server's limit differs from the limits file;
- ``shared_limits_repairs_total``: slots freed by this process's watchdog;
- ``shared_limits_slot_wait_seconds``: a histogram of how long each new holder waited for its
  slot, from each task run seen holding one for the first time (a hold shorter than the
  time between two readings may be missed: ``slots history`` has every one).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from slot_tools.model import Snapshot
from slot_tools.reading import Readings
from slot_tools.repair import RepairAction
from slot_tools.rules import findings

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
_SEEN_LIMIT = 100_000  # holders remembered, so each is counted once; forgotten oldest first


class WaitHistogram:
    """Slot waits of the task runs seen holding a slot for the first time, per tag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, None] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}

    def observe(self, snapshot: Snapshot) -> None:
        with self._lock:
            for view in snapshot.limits:
                # every limit's series exists from its first reading, at zero until a holder is seen
                counts = self.buckets.setdefault(view.tag, [0] * (len(WAIT_BUCKETS) + 1))
                self.sums.setdefault(view.tag, 0.0)
                for holder in view.holders:
                    key = f"{view.tag}/{holder.task_run_id}"
                    if holder.waited is None or key in self._seen:
                        continue
                    self._seen[key] = None
                    for i, bound in enumerate((*WAIT_BUCKETS, float("inf"))):
                        if holder.waited <= bound:
                            counts[i] += 1
                    self.sums[view.tag] += holder.waited
            while len(self._seen) > _SEEN_LIMIT:
                del self._seen[next(iter(self._seen))]

    def family(self) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "shared_limits_slot_wait_seconds", "How long task runs waited for a slot of the limit.", labels=["tag"]
        )
        with self._lock:
            for tag, counts in sorted(self.buckets.items()):
                bounds = [*(str(b) for b in WAIT_BUCKETS), "+Inf"]
                family.add_metric([tag], list(zip(bounds, counts, strict=True)), self.sums[tag])
        return family


class SlotsCollector(Collector):
    """The gauges of the latest reading, read at scrape time."""

    def __init__(self, readings: Readings, repairs: Callable[[], list[RepairAction]], waits: WaitHistogram) -> None:
        self.readings = readings
        self.repairs = repairs
        self.waits = waits

    def collect(self) -> Iterator[Metric]:
        snapshot = self.readings.latest()
        slots = GaugeMetricFamily("shared_limits_slots", "Slots of the limit on the server.", labels=["tag"])
        used = GaugeMetricFamily("shared_limits_slots_used", "Slots taken (the limit's counter).", labels=["tag"])
        waiters = GaugeMetricFamily("shared_limits_waiters", "Task runs waiting for a slot.", labels=["tag"])
        longest = GaugeMetricFamily(
            "shared_limits_longest_wait_seconds", "How long the longest waiter has waited.", labels=["tag"]
        )
        holders = GaugeMetricFamily(
            "shared_limits_holders", "Task runs holding a slot, per flow.", labels=["tag", "flow"]
        )
        anomalies = GaugeMetricFamily(
            "shared_limits_anomalies", "Anomalies the rulebook finds now, per kind.", labels=["tag", "kind"]
        )
        drift = GaugeMetricFamily(
            "shared_limits_drift", "1 when the server's limit differs from the limits file.", labels=["tag"]
        )
        repairs = CounterMetricFamily(
            "shared_limits_repairs", "Slots freed by this process's watchdog.", labels=["tag"]
        )
        found = Counter((f.tag, f.kind) for f in findings(snapshot))
        freed = Counter[str]()
        for action in self.repairs():
            freed[action.tag] += action.slots
        for view in snapshot.limits:
            tag = [view.tag]
            if view.server_slots is not None:
                slots.add_metric(tag, view.server_slots)
            used.add_metric(tag, view.used)
            waiters.add_metric(tag, len(view.waiters))
            longest.add_metric(tag, max((w.seconds or 0.0 for w in view.waiters), default=0.0))
            for flow, count in sorted(Counter(h.flow or "unknown" for h in view.holders).items()):
                holders.add_metric([view.tag, flow], count)
            for (tag_, kind), count in sorted(found.items()):
                if tag_ == view.tag:
                    anomalies.add_metric([view.tag, kind], count)
            drift.add_metric(tag, 1 if found[(view.tag, "drift")] else 0)
            repairs.add_metric(tag, freed[view.tag])
        yield from (slots, used, waiters, longest, holders, anomalies, drift, repairs, self.waits.family())


def metrics_registry(readings: Readings, repairs: Callable[[], list[RepairAction]]) -> CollectorRegistry:
    """A registry of the slots' metrics; the wait histogram is fed by every new reading."""
    waits = WaitHistogram()
    readings.listeners.append(waits.observe)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SlotsCollector(readings, repairs, waits))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
