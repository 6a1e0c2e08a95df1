"""Peak concurrency and cross-flow overlap, computed from task-run intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slot_tools.history import Interval, peak_concurrency, shared_moments

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def iv(flow: str, start: float, end: float | None) -> Interval:
    return Interval(
        tag="database",
        task_run_id=f"{flow}{start}",
        task_run=f"t-{start}",
        flow=flow,
        flow_run_id="fr",
        pending_at=T0,
        start=T0 + timedelta(seconds=start),
        end=None if end is None else T0 + timedelta(seconds=end),
        state="COMPLETED",
    )


def test_peak_counts_overlaps_and_reports_when() -> None:
    peak, at = peak_concurrency([iv("a", 0, 4), iv("a", 1, 2), iv("b", 1.5, 3), iv("b", 3.5, 5)])
    assert peak == 3
    assert at == T0 + timedelta(seconds=1.5)


def test_a_hand_off_at_the_same_instant_is_not_an_overlap() -> None:
    peak, _ = peak_concurrency([iv("a", 0, 1), iv("b", 1, 2), iv("a", 2, 3)])
    assert peak == 1


def test_running_intervals_count_until_now() -> None:
    now = T0 + timedelta(seconds=10)
    assert peak_concurrency([iv("a", 0, None), iv("b", 9, None)], now=now)[0] == 2


def test_shared_moments_measure_time_both_flows_hold_slots() -> None:
    assert shared_moments([iv("a", 0, 4), iv("b", 1, 2), iv("b", 3, 6)]) == 2.0
    assert shared_moments([iv("a", 0, 1), iv("a", 0.5, 2), iv("b", 2, 3)]) == 0.0
    assert iv("a", 2.5, 3).waited == 2.5
