"""Task factories: the tag, retries and the resource handle come from common, never a flow."""

from __future__ import annotations

import inspect
import re
from contextlib import contextmanager

import pytest
from prefect import Task

from common.factories import Session, flow_tasks, resource_task
from common.resources import get_registry
from support import ROOT


def test_database_task_carries_the_registry_tag_retries_and_hides_the_connection() -> None:
    @flow_tasks("probe").database(name="probe-query")
    def probe(connection: object, table: str, limit: int = 5) -> str:
        return table

    database = get_registry()["database"]
    assert isinstance(probe, Task)
    assert probe.name == "probe-query"
    assert probe.tags == {"database"}
    assert probe.retries == database.retries
    assert list(inspect.signature(probe.fn).parameters) == ["table", "limit"]


def test_api_task_uses_the_api_tag() -> None:
    @flow_tasks("ingest").api(name="probe-call")
    def probe(api: object) -> None:
        return None

    assert probe.tags == {"api"}  # no cap for ingest in the default limits file


def test_resource_task_passes_the_opened_handle_and_closes_it() -> None:
    events: list[str] = []

    @contextmanager
    def handle(resource, check):
        events.append(f"open {resource.name}")
        yield Session("HANDLE", lambda: None)
        events.append("close")

    @resource_task("database", handle, "probe", name="probe-handle")
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


def test_permanent_failures_are_told_apart_from_transient_ones() -> None:
    from sqlalchemy.exc import DataError, OperationalError, ProgrammingError

    from common.api_client import PartnerApiError
    from common.factories import is_permanent

    def partner(status: int | None) -> PartnerApiError:
        return PartnerApiError("x", method="GET", path="/v1/reference", status=status, attempts=1)

    permanent = [
        ProgrammingError("SELECT", {}, Exception("no such table")),
        DataError("SELECT", {}, Exception("bad date")),
        partner(404),
        partner(401),
        partner(200),
        ValueError("unknown table"),
    ]
    transient = [
        OperationalError("SELECT", {}, Exception("connection closed")),
        partner(None),
        partner(429),
        partner(408),
        partner(500),
        partner(503),
        TimeoutError("slow"),
        OSError("disk"),
    ]
    assert [e for e in permanent if not is_permanent(e)] == []
    assert [e for e in transient if is_permanent(e)] == []


@pytest.mark.integration
def test_bad_sql_fails_at_once_and_a_dropped_connection_is_retried(stack) -> None:
    """Real runs on the session server: the retries from limits.toml apply to the transient
    failure only; bad SQL against the real demo database fails on its first attempt."""
    from prefect import flow
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    attempts: list[str] = []

    tasks = flow_tasks("retry-probe")

    @tasks.database(name="bad-sql", retry_delay_seconds=0)
    def bad_sql(connection) -> None:
        attempts.append("bad-sql")
        connection.execute(text("SELECT * FROM no_such_table"))

    @tasks.database(name="dropped", retry_delay_seconds=0)
    def dropped(connection) -> None:
        attempts.append("dropped")
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))

    @flow(name="retry-probe")
    def probe() -> list[str]:
        states = [bad_sql(return_state=True), dropped(return_state=True)]
        return [s.type.value for s in states]

    assert probe() == ["FAILED", "FAILED"]
    retries = get_registry()["database"].retries
    assert attempts.count("bad-sql") == 1
    assert attempts.count("dropped") == 1 + retries


def test_the_scope_waits_for_all_and_names_the_root_cause_of_engine_errors(tmp_path) -> None:
    """A future whose engine raised (Prefect does when the server is unreachable as a task asks
    for its slot) must not stop the wait for the others; its error is named by root cause, and
    it counts as lost to the control plane (submitted again), not as a failure of its own data."""
    from concurrent.futures import Future
    from uuid import uuid4

    import httpx
    from prefect.futures import PrefectConcurrentFuture
    from prefect.states import Completed

    from common.run import Call, RunScope

    done: Future[object] = Future()
    done.set_result(Completed())
    broken: Future[object] = Future()
    try:
        try:
            raise httpx.ConnectError("All connection attempts failed")
        except httpx.ConnectError as inner:
            raise RuntimeError("Failed to resolve inputs in parameter 'pages'") from inner
    except RuntimeError as outer:
        broken.set_exception(outer)
    later: Future[object] = Future()
    later.set_result(Completed())
    scope = RunScope("probe", "run-1", tmp_path, patience=0)
    scope.calls = [
        Call(f"call {i}", None, (), {}, PrefectConcurrentFuture(uuid4(), f))
        for i, f in enumerate((done, broken, later))
    ]

    scope.settle()
    assert [c.failure for c in scope.calls] == [None, "ConnectError: All connection attempts failed", None]
    assert [c.lost for c in scope.calls] == [None, "ConnectError: All connection attempts failed", None]
    assert [c.completed for c in scope.calls] == [True, False, True]


def test_no_resource_task_can_be_made_without_its_flow() -> None:
    """A flow binds its name once (``flow_tasks(FLOW)``); nothing in the public surface makes a
    resource task without one, and a bad name is refused at once."""
    import common
    from common.resources import LimitsFileError

    assert {"database_task", "api_task", "resource_task"}.isdisjoint(common.__all__)
    assert [name for name in common.__all__ if "task" in name.lower()] == ["FlowTasks", "flow_tasks"]
    with pytest.raises(TypeError):
        resource_task("database", None, name="no-flow")  # type: ignore[call-arg, arg-type]
    with pytest.raises(LimitsFileError, match="flow name 'Bad Name'"):
        flow_tasks("Bad Name")
