"""Tagged task factories: the only way a flow gets tasks that touch a shared resource.

A flow package binds its name once (``tasks = flow_tasks(FLOW)``) and decorates its functions
with ``@tasks.database(name=...)``, ``@tasks.api(name=...)`` or ``@tasks.local(name=...)``.
A resource task then

* carries the resource's tag (and the flow's cap tag when ``limits.toml`` caps the flow), so
  the server-side limit ``tag:<resource>`` bounds it across every flow and process;
* takes retries (with exponential backoff) and its timeout from the registry, and retries only
  what a second try may fix (:func:`is_permanent`);
* opens the resource itself (one database connection, or one partner-API client), passes it
  as the function's first argument, and closes it when the task ends;
* stops its resource session as soon as its slot may have gone to someone else
  (:mod:`common.lease`): that attempt fails with :class:`~common.lease.SlotLost` and is not
  retried in the same task run, which would run without a slot;
* logs, at INFO, how long the task run waited for its slot (Prefect only logs that at DEBUG);
* takes one slot of the resource's rate limit right before it opens the resource, when the
  limits file gives the resource a ``rate_per_second``.

Every flow builds its resource tasks here, so all of them contend for the same limits.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

import structlog
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.sync import rate_limit
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff

from common.lease import SlotLost, guarding
from common.logs import get_logger
from common.resources import API, DATABASE, Resource, check_flow_name, get_registry
from common.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from common.api_client import PartnerApi

P = ParamSpec("P")
R = TypeVar("R")
H = TypeVar("H")

log = get_logger("tasks")


@dataclass(frozen=True)
class Session(Generic[H]):
    """An open resource: the handle a task function gets, and how to stop its work from
    another thread (the lease guard does, when the slot is lost)."""

    handle: H
    interrupt: Callable[[], None]
    fence: Callable[[Callable[[], None]], None] = lambda check: None  # runs ``check`` before each use


def slot_wait_seconds(ctx: TaskRunContext | None) -> float | None:
    """Seconds between the task run entering Pending and Running: the wait for its slots.

    The engine acquires every tag limit before it proposes Running, so this is the time the
    run spent polling the server for free slots (plus a few milliseconds of bookkeeping).
    """
    if ctx is None or ctx.task_run is None:
        return None
    pending_at = ctx.task_run.expected_start_time
    running_at = ctx.task_run.start_time or datetime.now(UTC)
    if pending_at is None:
        return None
    return max(0.0, (running_at - pending_at).total_seconds())


def _bind_and_log_wait(resource: Resource) -> dict[str, Any]:
    ctx = TaskRunContext.get()
    ids: dict[str, Any] = {}
    if ctx is not None and ctx.task_run is not None:
        ids = {
            "flow_run_id": str(ctx.task_run.flow_run_id),
            "task_run_id": str(ctx.task_run.id),
            "task_run": ctx.task_run.name,
        }
        if ctx.task_run.run_count <= 1:
            waited = slot_wait_seconds(ctx)
            upstream = any(
                getattr(i, "input_type", None) == "task_run"
                for inputs in (ctx.task_run.task_inputs or {}).values()
                for i in inputs
            )
            what = f"upstream results and a '{resource.tag}' slot" if upstream else f"a '{resource.tag}' slot"
            if waited is not None:
                log.info(
                    f"{ctx.task_run.name}: waited {waited:.2f} s for {what}",
                    tag=resource.tag,
                    slot_wait_s=round(waited, 3),
                    **ids,
                )
    return ids


def _running_since(ctx: TaskRunContext | None) -> datetime | None:
    """When the task run went Running (its slots were granted just before), as this process
    recorded it."""
    if ctx is None or ctx.task_run is None:
        return None
    state = ctx.task_run.state
    return state.timestamp if state is not None and state.is_running() else ctx.task_run.start_time


def _take_rate_slot(resource: Resource) -> None:
    """Block until the resource's rate limit admits one more use; strict, so a rate declared
    in the file but missing on the server fails the task instead of running unpaced."""
    if resource.rate_limit_name is not None:
        rate_limit(resource.rate_limit_name, occupy=1, strict=True)


# A client error from the partner that a retry cannot fix (408 and 429 are worth a retry).
_RETRYABLE_4XX = frozenset({408, 429})


def is_permanent(exc: BaseException) -> bool:
    """True for a failure that would repeat on every retry: bad SQL or a value the database
    refuses, a partner answer that is a client error or not JSON, bad input to our own code.
    Connection drops, timeouts, 429/5xx and anything unknown stay worth retrying."""
    from sqlalchemy.exc import DataError, ProgrammingError

    from common.api_client import PartnerApiError

    if isinstance(exc, PartnerApiError):
        return exc.status is not None and exc.status < 500 and exc.status not in _RETRYABLE_4XX
    return isinstance(exc, (ProgrammingError, DataError, ValueError, TypeError, KeyError))


def _worth_retrying(task: Task[Any, Any], task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: skip the retries (and their back-off) for a
    permanent failure, so the run fails now with the real reason; and never retry an attempt
    that lost its slot (the task run holds no slot any more: the flow submits it again)."""
    try:
        state.result()
    except SlotLost:
        log.info(f"not retrying {task_run.name} in this task run: it lost its slot (the flow runs it again)")
        return False
    except Exception as exc:
        if is_permanent(exc):
            log.info(f"not retrying {task_run.name}: {type(exc).__name__} will not pass on a retry")
            return False
    return True


def resource_task(
    resource_name: str,
    open_session: Callable[[Resource, Callable[[], None]], AbstractContextManager[Session[H]]],
    flow: str,
    *,
    name: str,
    **task_options: Any,
) -> Callable[[Callable[Concatenate[H, P], R]], Task[P, R]]:
    """Decorator factory: a Prefect task of ``flow`` bound to one shared resource.

    ``open_session`` opens the resource for one attempt (calling the check it gets before each
    try, which raises once the slot may be gone); the decorated function receives its handle as
    its first argument and never sees the tag.
    """
    resource = get_registry()[resource_name]
    check_flow_name(flow)

    def decorate(fn: Callable[Concatenate[H, P], R]) -> Task[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            ids = _bind_and_log_wait(resource)
            started = _running_since(TaskRunContext.get())
            with structlog.contextvars.bound_contextvars(**ids), guarding(resource.tag, started) as guard:
                _take_rate_slot(resource)
                check = guard.ensure if guard is not None else _always
                check()  # nothing is opened once the slot may be someone else's
                try:
                    with open_session(resource, check) as session:
                        if guard is not None:
                            guard.attach(session.interrupt)
                            session.fence(check)
                        check()
                        try:
                            result = fn(session.handle, *args, **kwargs)
                        finally:
                            if guard is not None:
                                guard.detach()
                except Exception:
                    if guard is not None and guard.lost is not None:
                        raise SlotLost(guard.lost) from None  # what the interrupt caused, not a failure of its own
                    raise
                check()  # finished, but maybe not within its slot: do it again
                return result

        # Prefect reads the parameters from the signature: hide the injected handle.
        signature = inspect.signature(fn)
        hidden = signature.replace(parameters=list(signature.parameters.values())[1:])
        run.__signature__ = hidden  # type: ignore[attr-defined]  # functools.wraps' result type has no such slot
        options: dict[str, Any] = {
            "name": name,
            "tags": resource.tags_for(flow),
            "retries": resource.retries,
            "retry_delay_seconds": exponential_backoff(backoff_factor=resource.retry_delay_seconds)
            if resource.retries
            else 0,
            "retry_condition_fn": _worth_retrying,
            "cache_policy": NO_CACHE,
            "persist_result": False,
        }
        options.update(task_options)
        return task(**options)(run)

    return decorate


def _always() -> None:
    """The check of a task run that holds no lease (its tags have no limit): nothing to lose."""


@contextmanager
def _database_session(resource: Resource, check: Callable[[], None]) -> Iterator[Session[Connection]]:
    from sqlalchemy import event

    from common.db import connect, interrupter

    settings = get_settings()
    with connect(settings, timeout_seconds=resource.timeout_seconds, check=check) as connection:

        def fence(check: Callable[[], None]) -> None:
            # before each statement, and after: a statement the process froze in the middle of
            # ends on waking (or is interrupted), and its result is thrown away
            event.listen(connection, "before_cursor_execute", lambda *args, **kwargs: check())
            event.listen(connection, "after_cursor_execute", lambda *args, **kwargs: check())

        yield Session(connection, interrupter(connection, settings.sqlalchemy_url), fence)


@contextmanager
def _partner_session(resource: Resource, check: Callable[[], None]) -> Iterator[Session[PartnerApi]]:
    from common.api_client import PartnerApi

    settings = get_settings()
    timeout = resource.timeout_seconds or settings.api_timeout_seconds
    # Name the setting that actually applies, so a timeout error says what to raise.
    where = (
        f"timeout_seconds of [resources.{resource.name}] in {settings.limits_file}"
        if resource.timeout_seconds
        else "ETL_API_TIMEOUT_SECONDS"
    )
    with PartnerApi(
        settings.effective_api_url, token=settings.api_token, timeout=timeout, timeout_setting=where
    ) as client:
        yield Session(client, client.interrupt, client.before_each_request)


@dataclass(frozen=True)
class FlowTasks:
    """The task factories of one flow. Bind once per flow package, ``tasks = flow_tasks(FLOW)``:
    every resource task it makes then carries the flow's cap tag when the limits file caps it."""

    flow: str

    def database(
        self, *, name: str, **task_options: Any
    ) -> Callable[[Callable[Concatenate[Connection, P], R]], Task[P, R]]:
        """A task holding one ``database`` slot and one connection (``sqlalchemy.Connection``)."""
        return resource_task(DATABASE, _database_session, self.flow, name=name, **task_options)

    def api(self, *, name: str, **task_options: Any) -> Callable[[Callable[Concatenate[PartnerApi, P], R]], Task[P, R]]:
        """A task holding one ``api`` slot and one partner-API client (``PartnerApi``)."""
        return resource_task(API, _partner_session, self.flow, name=name, **task_options)

    def local(self, *, name: str, **task_options: Any) -> Callable[[Callable[P, R]], Task[P, R]]:
        """A task that touches no shared resource (lake files, cleanup): no tag, no slot."""
        options: dict[str, Any] = {"name": name, "cache_policy": NO_CACHE, "persist_result": False}
        options.update(task_options)
        return task(**options)


def flow_tasks(flow: str) -> FlowTasks:
    """The task factories of ``flow``, the name its ``@flow(name=...)`` and caps use."""
    check_flow_name(flow)
    return FlowTasks(flow)
