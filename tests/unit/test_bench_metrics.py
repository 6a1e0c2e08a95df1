"""The benchmark's arithmetic (bench.handoff.metrics) on hand-made task-run records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bench.handoff import Case, metrics

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


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
    assert (m["gap_median_s"], m["gap_max_s"]) == (0.2, 0.3)  # gaps 0.1 and 0.3
    assert m["ramp_s"] == 0.2 and m["run_overhead_s"] == 0.0
    assert m["peak"] == 2
    assert [r[0] for r in m["task_runs"]] == [0, 1, 0, 1]


def test_metrics_catch_an_overrun() -> None:
    case = Case(flows=1, tasks=3, seconds=1.0, limit=2)
    runs = [(at(0), at(1), 0), (at(0.1), at(1.1), 0), (at(0.5), at(1.5), 0)]
    assert metrics(case, runs)["peak"] == 3
