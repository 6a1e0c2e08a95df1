"""The limits file: the one source of truth, refused with one clear line when malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.resources import LimitsFileError, load_registry, parse_limits

GOOD = """
[resources.database]
slots = 3
description = "db"

[resources.api]
slots = 10
"""


def parse(text: str):  # type: ignore[no-untyped-def]
    return parse_limits(text, Path("limits.toml"))


def test_repository_limits_file_has_the_documented_defaults() -> None:
    registry = load_registry(Path(__file__).resolve().parents[1] / "limits.toml")
    assert registry.tag_limits() == {"database": 3, "api": 10}
    assert registry["database"].limit_name == "tag:database"


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
        (('description = "db"', 'description = "db"\nflows = { ingest = 4 }'),
         "[resources.database.flows] ingest = 4 is above the resource's 3 slots"),
        (("[resources.api]", "[resources.apis]"), "missing [resources.api]"),
        (("[resources.api]", "[resources.database]"), "not valid TOML"),
        (("slots = 10", "slots = 10\n[extra]\nx = 1"), "unknown top-level key 'extra'"),
        (("[resources.database]", "[resources.Data Base]"), "not valid TOML"),
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
