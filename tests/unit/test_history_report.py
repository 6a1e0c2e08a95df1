"""The history report and its HTML timeline, from synthetic task-run intervals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from slot_tools.history import Interval, assign_lanes, percentile, summarize
from slot_tools.timeline import flow_colours, render_html

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def iv(
    flow: str,
    start: float,
    end: float | None,
    *,
    tag: str = "database",
    pending: float | None = None,
    name: str | None = None,
) -> Interval:
    return Interval(
        tag=tag,
        task_run_id=f"{tag}-{flow}-{start}-{end}",
        task_run=name or f"t-{start}",
        flow=flow,
        flow_run_id=f"fr-{flow}",
        pending_at=None if pending is None else T0 + timedelta(seconds=pending),
        start=T0 + timedelta(seconds=start),
        end=None if end is None else T0 + timedelta(seconds=end),
        state="COMPLETED",
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def overlaps(a: Interval, b: Interval) -> bool:
    return a.start < (b.end or at(1e9)) and b.start < (a.end or at(1e9))


HELD = [
    iv("ingest", 0, 4, pending=0),
    iv("reports", 0, 2, pending=0),
    iv("ingest", 1, 3, pending=0.5),
    iv("reports", 2, 6, pending=0),
    iv("ingest", 3, 5, pending=1),
    iv("reports", 4, 8, pending=1),
    iv("ingest", 5, 7, pending=2),
]


def test_lanes_never_hold_two_overlapping_runs_and_stay_under_the_limit() -> None:
    lanes = assign_lanes(HELD, limit=3)
    assert set(lanes) == {i.task_run_id for i in HELD}
    assert max(lanes.values()) == 2  # three lanes used, none beyond the limit
    for a in HELD:
        for b in HELD:
            if a is not b and lanes[a.task_run_id] == lanes[b.task_run_id]:
                assert not overlaps(a, b), (a, b)


def test_a_hand_off_at_the_same_instant_reuses_the_lane() -> None:
    runs = [iv("a", 0, 1), iv("b", 1, 2), iv("a", 2, 3)]
    assert set(assign_lanes(runs, limit=1).values()) == {0}


def test_the_lowest_free_lane_is_taken() -> None:
    runs = [iv("a", 0, 10), iv("b", 0.1, 2), iv("c", 0.2, 10), iv("d", 3, 4)]
    lanes = assign_lanes(runs, limit=3)
    assert [lanes[r.task_run_id] for r in runs] == [0, 1, 2, 1]


def test_an_overflow_lane_appears_only_when_the_limit_is_exceeded() -> None:
    held = summarize(HELD, {"database": 3}, at(0), at(8)).tags[0]
    assert not held.exceeded and held.lane_count == 3 and max(held.lanes.values()) < 3

    breach = [*HELD, iv("ingest", 1.5, 2.5)]  # a fourth holder at 1.5 s
    report = summarize(breach, {"database": 3}, at(0), at(8))
    tag = report.tags[0]
    assert tag.exceeded and report.exceeded
    assert tag.peak == 4 and tag.peak_at == at(1.5)
    assert tag.lane_count == 4
    assert [k for k, lane in tag.lanes.items() if lane >= 3] == [breach[-1].task_run_id]


def test_utilization_is_busy_slot_seconds_over_capacity_and_clipped_to_the_window() -> None:
    runs = [iv("a", 0, 4), iv("b", 2, 6), iv("a", 8, None)]  # the last one still runs
    tag = summarize(runs, {"database": 2}, at(0), at(10)).tags[0]
    assert tag.slot_seconds == pytest.approx(4 + 4 + 2)
    assert tag.utilization == pytest.approx(10 / (2 * 10))
    assert tag.shared_seconds == pytest.approx(2.0)
    clipped = summarize([iv("a", 0, 20)], {"database": 1}, at(0), at(10)).tags[0]
    assert clipped.utilization == pytest.approx(1.0)


def test_per_flow_usage_and_wait_percentiles() -> None:
    runs = [iv("a", s, s + 1, pending=s - w) for s, w in ((10, 1), (20, 2), (30, 3), (40, 4))]
    runs.append(iv("b", 50, 52, pending=None))  # no Pending time: no wait to count
    tag = summarize(runs, {"database": 3}, at(0), at(60)).tags[0]
    a, b = tag.flows
    assert (a.flow, a.task_runs) == ("a", 4) and a.slot_seconds == pytest.approx(4.0)
    assert a.wait_median == pytest.approx(2.5)
    assert a.wait_p95 == pytest.approx(1 + 0.95 * 3)  # linear between closest ranks
    assert (b.flow, b.task_runs, b.slot_seconds, b.wait_median, b.wait_p95) == ("b", 1, 2.0, None, None)


def test_percentile_matches_the_textbook_values() -> None:
    assert percentile(range(101), 95) == pytest.approx(95)
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


def test_a_limit_with_no_runs_reports_zero() -> None:
    report = summarize(HELD, {"database": 3, "api": 10}, at(0), at(8))
    api = report.tags[1]
    assert (api.tag, api.task_runs, api.peak, api.peak_at, api.utilization, api.flows) == ("api", 0, 0, None, 0.0, [])
    assert api.lane_count == 10
    as_json = report.as_dict()
    assert [t["tag"] for t in as_json["limits"]] == ["database", "api"]  # type: ignore[attr-defined]
    assert as_json["exceeded"] is False


def lanes_per_svg(page: str) -> list[int]:
    return [len(re.findall(r'<rect class="lane[ "]', svg)) for svg in page.split("<svg")[1:]]


def test_the_page_is_self_contained_with_one_lane_per_slot() -> None:
    runs = [*HELD, *(iv("reports", s, s + 1, tag="api", pending=s - 0.5) for s in range(6))]
    report = summarize(runs, {"database": 3, "api": 10}, at(0), at(8))
    page = render_html(report, runs)
    assert page.startswith("<!doctype html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert lanes_per_svg(page) == [3, 10]
    assert page.count('<rect class="bar"') == len(runs)
    assert page.count('<rect class="wait"') == sum(1 for r in runs if r.waited)
    assert page.count("<title>") == 1 + len(runs)  # the page's own, then one per bar
    assert "overflow" not in page.split("<svg")[1]
    assert "every limit held" in page and "EXCEEDED" not in page


def test_the_page_shows_a_breach_on_a_red_overflow_lane() -> None:
    runs = [*HELD, iv("ingest", 1.5, 2.5)]
    page = render_html(summarize(runs, {"database": 3}, at(0), at(8)), runs)
    assert lanes_per_svg(page) == [4]
    assert page.count('class="lane overflow"') == 1
    assert "overflow 1</text>" in page
    assert "EXCEEDED" in page


def test_every_text_from_the_records_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    runs = [iv(evil, 0, 1, name=f"{evil}&more", pending=0)]
    page = render_html(summarize(runs, {"database": 3}, at(0), at(1)), runs)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;more" in page


def test_flow_colours_are_stable_and_distinct() -> None:
    pair = flow_colours(["reports", "ingest"])
    assert pair == flow_colours(["ingest", "reports", "ingest"])
    assert pair["ingest"] != pair["reports"]
    many = flow_colours(f"flow-{n}" for n in range(7))
    assert len(set(many.values())) == 7
