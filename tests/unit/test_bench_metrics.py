"""The benchmark's arithmetic (bench.handoff.metrics, bench.handoff_phases.phases) on hand-made
task-run records and slot events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.handoff import Case, metrics
from bench.handoff_phases import ACQUIRED, RELEASED, phases

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_metrics_of_a_known_schedule() -> None:
    # 2 flows x 2 tasks of 1 s on 2 slots: ideal 2 s. Second wave starts 0.1 s and 0.3 s
    # after the slots free; the second slot fills 0.2 s after the first.
    case = Case(flows=2, tasks=2, seconds=1.0, limit=2)
    runs = [(at(0), at(1), 0), (at(0.2), at(1.2), 1), (at(1.1), at(2.1), 0), (at(1.5), at(2.5), 1)]
    m = metrics(case, runs)
    assert m["makespan_s"] == 2.5
    assert m["efficiency"] == round(2 / 2.5, 3)
    assert m["utilization"] == round(4 / (2 * 2.5), 3)
    assert (m["gap_median_s"], m["gap_p95_s"], m["gap_max_s"]) == (0.2, 0.29, 0.3)  # gaps 0.1 and 0.3
    assert m["ramp_s"] == 0.2 and m["run_overhead_s"] == 0.0
    assert m["peak"] == 2
    assert [r[0] for r in m["task_runs"]] == [0, 1, 0, 1]


def test_metrics_catch_an_overrun() -> None:
    case = Case(flows=1, tasks=3, seconds=1.0, limit=2)
    runs = [(at(0), at(1), 0), (at(0.1), at(1.1), 0), (at(0.5), at(1.5), 0)]
    assert metrics(case, runs)["peak"] == 3


def test_phases_cut_each_gap_at_the_release_and_the_grant() -> None:
    # 1 slot, 3 tasks: ends at 1.0 and 2.2; the releases answered 0.05 and 0.1 s after them,
    # the next grants 0.02 and 0.04 s after those, Running 0.01 s after each grant.
    runs = [(at(0.0), at(1.0), 0), (at(1.08), at(2.2), 0), (at(2.35), at(3.35), 0)]
    events = {ACQUIRED: [at(-0.01), at(1.07), at(2.34)], RELEASED: [at(1.05), at(2.3), at(3.4)]}
    m = phases(1, runs, events)
    assert (m["release_median_s"], m["grant_median_s"], m["to_running_median_s"]) == (0.075, 0.03, 0.01)
    assert m["release_p95_s"] <= 0.1 and m["grant_p95_s"] <= 0.04


def test_phases_are_left_out_when_an_event_is_missing() -> None:
    runs = [(at(0.0), at(1.0), 0), (at(1.1), at(2.1), 0)]
    m = phases(1, runs, {ACQUIRED: [at(0.0), at(1.09)], RELEASED: [at(1.05)]})
    assert m == {"events_acquired": 2, "events_released": 1}
