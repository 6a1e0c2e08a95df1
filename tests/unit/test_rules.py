"""The rulebook of slot anomalies on hand-made readings, and what repair does with each."""

from __future__ import annotations

from slot_tools.model import LimitView, RunRef, Snapshot
from slot_tools.repair import confirmed, freed_meanwhile, plan_repair
from slot_tools.rules import RELEASE_GRACE_SECONDS, findings


def view(
    used: int,
    holders: list[RunRef],
    *,
    server_slots: int | None = 3,
    active: bool = True,
    used_after: int | None = None,
    file_slots: int = 3,
) -> LimitView:
    return LimitView(
        "database",
        "tag:database",
        "",
        file_slots,
        server_slots,
        active,
        used,
        holders,
        used_after=used if used_after is None else used_after,
    )


def live(i: int) -> RunRef:
    return RunRef(f"t{i}", f"extract-{i}", "RUNNING", "ingest", None, "fr", "f1", "RUNNING", 1.0)


def snap(*views: LimitView) -> Snapshot:
    return Snapshot("now", "http://x/api", list(views))


def kinds(s: Snapshot) -> list[str]:
    return [f.kind for f in findings(s)]


def test_a_healthy_reading_has_no_findings() -> None:
    assert kinds(snap(view(2, [live(1), live(2)]))) == []


def test_missing_inactive_and_drifted_limits_are_named() -> None:
    assert kinds(snap(view(0, [], server_slots=None))) == ["no-limit"]
    assert kinds(snap(view(0, [], active=False))) == ["inactive"]
    assert kinds(snap(view(0, [], server_slots=5))) == ["drift"]


def test_a_counter_above_its_holders_is_a_leak_only_when_both_readings_say_so() -> None:
    leaked = snap(view(3, [live(1)], used_after=3))
    assert kinds(leaked) == ["counter-above-holders"]
    assert findings(leaked)[0].slots == 2
    # a slot freed while the holders were read: the counter said 2, then 1, with 1 holder
    assert kinds(snap(view(2, [live(1)], used_after=1))) == []
    assert plan_repair(leaked)[0].kind == "decrement" and plan_repair(leaked)[0].slots == 2


def test_a_holder_that_is_over_leaks_only_after_the_release_grace() -> None:
    just_done = RunRef(
        "t9", "extract-9", "COMPLETED", "ingest", None, "fr", "f1", "RUNNING", 2.0, over_for=RELEASE_GRACE_SECONDS / 3
    )
    assert kinds(snap(view(1, [just_done]))) == []
    long_done = RunRef(
        "t9", "extract-9", "COMPLETED", "ingest", None, "fr", "f1", "RUNNING", 40.0, over_for=RELEASE_GRACE_SECONDS + 1
    )
    assert kinds(snap(view(1, [long_done]))) == ["holder-over"]


def test_dead_holders_are_revoked_only_when_no_live_holder_shares_the_limit() -> None:
    crashed = RunRef(
        "t8", "extract-8", "RUNNING", "ingest", None, "fr", "f2", "CRASHED", 30.0, over_for=RELEASE_GRACE_SECONDS * 2
    )
    alone = snap(view(1, [crashed]))
    assert kinds(alone) == ["holder-flow-run-over"]
    assert [a.kind for a in plan_repair(alone)] == ["revoke"]
    beside_live = snap(view(2, [crashed, live(1)]))
    assert [a.kind for a in plan_repair(beside_live)] == ["wait"]


def test_a_leak_that_freed_itself_before_the_repair_is_not_a_change() -> None:
    crashed = RunRef(
        "t8", "extract-8", "RUNNING", "ingest", None, "fr", "f2", "CRASHED", 30.0, over_for=RELEASE_GRACE_SECONDS * 2
    )
    planned = plan_repair(snap(view(1, [crashed])))
    assert [a.kind for a in planned] == ["revoke"]
    # the release was on its way: the fresh reading finds the limit idle
    assert freed_meanwhile(planned, plan_repair(snap(view(0, [])))) == planned
    # the fresh reading finds another leak on the same limit: changed, neither freed nor confirmed
    moved = plan_repair(snap(view(3, [live(1)])))
    assert freed_meanwhile(planned, moved) == [] and confirmed(planned, moved) == []
    # a dead holder now beside a live one: still a leak (left to expire), not freed
    assert freed_meanwhile(planned, plan_repair(snap(view(2, [crashed, live(1)])))) == []
