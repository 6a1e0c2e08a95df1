"""Task factories: the tag, retries and the resource handle come from common, never a flow."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefect import Task

from common.resources import get_registry
from common.tasks import api_task, database_task, resource_task

ROOT = Path(__file__).resolve().parents[1]


def test_database_task_carries_the_registry_tag_retries_and_hides_the_connection() -> None:
    @database_task(name="probe-query")
    def probe(connection: object, table: str, limit: int = 5) -> str:
        return table

    database = get_registry()["database"]
    assert isinstance(probe, Task)
    assert probe.name == "probe-query"
    assert probe.tags == {"database"}
    assert probe.retries == database.retries
    assert list(inspect.signature(probe.fn).parameters) == ["table", "limit"]


def test_api_task_uses_the_api_tag() -> None:
    @api_task(name="probe-call", flow="ingest")
    def probe(api: object) -> None:
        return None

    assert probe.tags == {"api"}  # no cap for ingest in the default limits file


def test_resource_task_passes_the_opened_handle_and_closes_it() -> None:
    events: list[str] = []

    @contextmanager
    def handle(resource):  # type: ignore[no-untyped-def]
        events.append(f"open {resource.name}")
        yield "HANDLE"
        events.append("close")

    @resource_task("database", handle, name="probe-handle")
    def probe(h: str, x: int) -> str:
        events.append(f"run {h} {x}")
        return h

    # Calling the underlying function (what the engine runs) outside a run context.
    assert probe.fn(7) == "HANDLE"
    assert events == ["open database", "run HANDLE 7", "close"]


def test_flow_packages_never_name_a_resource_tag() -> None:
    """A flow gets its tags from the factories only: no tags= and no tag strings."""
    resources = set(get_registry().tag_limits())
    for path in (ROOT / "packages").glob("flow_*/src/**/*.py"):
        source = path.read_text()
        assert "tags=" not in source, f"{path} sets tags itself"
        for tag in resources:
            assert not re.search(rf"""["']{re.escape(tag)}["']""", source), f"{path} names tag {tag!r}"
