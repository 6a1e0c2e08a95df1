"""The limits file: the one source of truth, refused with one clear line when malformed; and
the plan sync makes from it for rate limits (pure: the server's limits are given)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.limits_check import LimitChange, assess, diff, diff_rates
from common.prefect_rest import LimitRec
from common.resources import LimitsFileError, load_registry, parse_limits
from support import ROOT

GOOD = """
[resources.database]
slots = 3
description = "db"

[resources.api]
slots = 10
"""

RATE_ERR = "rate_per_second must be a number of requests per second above 0, got"


def parse(text: str):
    return parse_limits(text, Path("limits.toml"))


def test_repository_limits_file_has_the_documented_defaults() -> None:
    registry = load_registry(ROOT / "limits.toml")
    assert registry.tag_limits() == {"database": 3, "api": 10}
    assert registry["database"].limit_name == "tag:database"
    assert registry.rate_limits() == {}  # no rate by default: only tag limits on the server
    assert registry["api"].rate_limit_name is None


@pytest.mark.parametrize(
    ("rate", "limit", "decay"),
    [("4", 4, 4.0), ("2.5", 3, 2.5), ("0.5", 1, 0.5), ("1", 1, 1.0)],
)
def test_rate_per_second_becomes_a_decaying_rate_limit(rate: str, limit: int, decay: float) -> None:
    registry = parse(GOOD.replace("slots = 10", f"slots = 10\nrate_per_second = {rate}"))
    api = registry["api"]
    assert api.rate_per_second == decay
    assert api.rate_limit_name == "rate:api"
    assert api.rate_limit == (limit, decay)  # ceil(rate) may start at once, then `rate` per second
    assert registry.rate_limits() == {"api": (limit, decay)}
    assert registry.tag_limits() == {"database": 3, "api": 10}  # the tag limit is unchanged
    assert registry["database"].rate_limit_name is None


def test_flow_caps_add_a_per_flow_tag_with_its_own_limit() -> None:
    registry = parse(GOOD.replace('description = "db"', 'description = "db"\nflows = { ingest = 2 }'))
    database = registry["database"]
    assert database.tags_for("ingest") == ["database", "database:ingest"]
    assert database.tags_for("reports") == ["database"]
    assert registry.tag_limits() == {"database": 3, "database:ingest": 2, "api": 10}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("slots = 3", "slots = 0"), "[resources.database] slots must be at least 1, got 0"),
        (("slots = 3", "slots = -2"), "[resources.database] slots must be at least 1, got -2"),
        (("slots = 3", "slots = 2.5"), "[resources.database] slots must be a whole number, got 2.5"),
        (("slots = 3", 'slots = "3"'), "[resources.database] slots must be a whole number, got '3'"),
        (("slots = 3", "slot = 3"), "[resources.database] unknown key 'slot'"),
        (
            ('description = "db"', 'description = "db"\nflows = { ingest = 4 }'),
            "[resources.database.flows] ingest = 4 is above the resource's 3 slots",
        ),
        (("[resources.api]", "[resources.apis]"), "missing [resources.api]"),
        (("[resources.api]", "[resources.database]"), "not valid TOML"),
        (("slots = 10", "slots = 10\n[extra]\nx = 1"), "unknown top-level key 'extra'"),
        (("[resources.database]", "[resources.Data Base]"), "not valid TOML"),
        (("slots = 10", "slots = 10\nrate_per_second = 0"), f"[resources.api] {RATE_ERR} 0"),
        (("slots = 10", "slots = 10\nrate_per_second = -1.5"), f"{RATE_ERR} -1.5"),
        (("slots = 10", 'slots = 10\nrate_per_second = "4"'), f"{RATE_ERR} '4'"),
        (("slots = 10", "slots = 10\nrate_per_second = true"), f"{RATE_ERR} True"),
        (("slots = 10", "slots = 10\nrate_per_second = inf"), f"{RATE_ERR} inf"),  # TOML allows inf, nan
        (("slots = 10", "slots = 10\nrate_per_second = nan"), f"{RATE_ERR} nan"),
        (("slots = 10", "slots = 10\nrate = 4"), "[resources.api] unknown key 'rate'"),
    ],
)
def test_malformed_file_is_refused_with_one_line_naming_the_problem(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(LimitsFileError) as err:
        parse(GOOD.replace(*edit, 1))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("limits.toml: ")
    assert message in text


def test_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(LimitsFileError, match="ETL_LIMITS_FILE"):
        load_registry(tmp_path / "nope.toml")


# --- the sync plan for rate limits (pure: the server's limits are given) ---------------------

RATED = GOOD.replace("slots = 10", "slots = 10\nrate_per_second = 4")


def gcl(name: str, limit: int, decay: float = 0.0, active: bool = True) -> LimitRec:
    """A server-side limit as the REST reader reads it."""
    return LimitRec(name=name, limit=limit, active=active, active_slots=0, slot_decay_per_second=decay)


def rate_plan(
    text: str,
    server: dict[str, LimitRec],
    managed: frozenset[str] = frozenset(),
    prune: bool = False,
) -> list[LimitChange]:
    return diff_rates(parse(text), server, set(managed), prune=prune)


@pytest.mark.parametrize(
    ("server", "action", "message"),
    [
        ({}, "create", "rate:api: missing on the server; create with 4 per second with a burst of 4"),
        ({"api": gcl("rate:api", 4, 4.0)}, "ok", "rate:api: 4 per second with a burst of 4, matches the file"),
        (
            {"api": gcl("rate:api", 4, 2.0)},
            "update",
            "rate:api: 2 per second with a burst of 4 on the server, the file says 4 per second with a burst of 4",
        ),
        (
            {"api": gcl("rate:api", 9, 4.0)},
            "update",
            "rate:api: 4 per second with a burst of 9 on the server, the file says 4 per second with a burst of 4",
        ),
        (
            {"api": gcl("rate:api", 4, 4.0, active=False)},
            "activate",
            "rate:api: inactive on the server (unpaced); activate with 4 per second with a burst of 4",
        ),
    ],
)
def test_rate_plan_creates_updates_and_activates_the_declared_rate(
    server: dict[str, LimitRec], action: str, message: str
) -> None:
    [change] = rate_plan(RATED, server)
    assert (change.action, change.limit, change.describe()) == (action, "rate:api", message)
    assert change.as_dict()["limit"] == "rate:api"
    assert change.changes_server == (action != "ok")


def test_undeclared_rate_limit_is_extra_unless_pruned_and_managed() -> None:
    server = {"api": gcl("rate:api", 4, 4.0), "other": gcl("rate:other", 2, 2.0)}
    extra = {c.tag: c for c in rate_plan(GOOD, server, prune=False, managed=frozenset({"api"}))}
    assert {t: c.action for t, c in extra.items()} == {"api": "extra", "other": "extra"}
    assert extra["api"].describe() == (
        "rate:api: on the server (4 per second with a burst of 4) but not in the file; left alone"
    )
    pruned = {c.tag: c.action for c in rate_plan(GOOD, server, prune=True, managed=frozenset({"api"}))}
    assert pruned == {"api": "delete", "other": "extra"}  # never deletes a limit it did not create


def test_a_rate_leaves_the_tag_plan_as_it_was() -> None:
    server = {"database": gcl("tag:database", 7), "api": gcl("tag:api", 10)}
    with_rate = [(c.action, c.describe()) for c in diff(parse(RATED), server, set())]
    without = [(c.action, c.describe()) for c in diff(parse(GOOD), server, set())]
    assert (
        with_rate
        == without
        == [
            ("update", "tag:database: 7 slots on the server, the file says 3"),
            ("ok", "tag:api: 10 slots, matches the file"),
        ]
    )


def test_check_fails_closed_on_a_missing_or_inactive_rate_and_warns_on_drift() -> None:
    errors, warnings = assess(rate_plan(RATED, {}))
    assert errors == [
        "rate limit rate:api is missing on the server, so every 'api' task would fail taking its rate slot: "
        "run `uv run limits sync`"
    ]
    errors, _ = assess(rate_plan(RATED, {"api": gcl("rate:api", 4, 4.0, active=False)}))
    assert errors and "inactive, so Prefect would not pace 'api' at all" in errors[0]
    errors, warnings = assess(rate_plan(RATED, {"api": gcl("rate:api", 4, 1.0)}))
    assert errors == []
    assert warnings == [
        "rate limit rate:api is 1 per second with a burst of 4 but the limits file says "
        "4 per second with a burst of 4: `uv run limits sync` makes the server match the file"
    ]
    assert assess(rate_plan(RATED, {"api": gcl("rate:api", 4, 4.0)})) == ([], [])
