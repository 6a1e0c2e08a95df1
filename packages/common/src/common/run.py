"""The run scope: what every flow run does around its tasks, and the outcome collector.

A flow body then reads like the pattern it follows: submit everything, wait for everything,
clean up, raise or return::

    with run_scope(FLOW) as run:
        checks = {name: run.submit(f"run-check {name}", run_check, name) for name in names}
        rows = run.results(checks, noun="checks")   # waits for all; one failure line if any failed
    return rows

The scope does by construction what every run must: logging configured (a served run is its
own process); the fail-closed check (a tag the factories use with no active limit on the
server would run unlimited); the staging folders of cancelled or killed runs swept; a staging
folder of the run's own, removed in a ``finally`` once every submitted task is over.

The collector labels each call once (:meth:`RunScope.submit`), waits for all of them
(:meth:`RunScope.results`), and submits again, as new task runs that take fresh slots, the
calls that failed only because the control plane was away: a slot lost
(:class:`common.lease.SlotLost`), a task engine that could not reach the server, a crash.
Never a call that failed on its own (bad SQL, a refusing partner). It then builds one line
naming what failed and why, root causes only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from uuid import uuid4

from common.lease import SlotLost
from common.logs import get_logger

R = TypeVar("R")

MAX_NAMED_CALLS = 3  # a failure line names at most this many calls, so it stays readable
REDO_ROUNDS = 3  # how many times a call lost to the control plane is submitted again
RECORD_PATIENCE = 10.0  # seconds the final states of a run that blinked get to reach the server
_EXCEPTION_PREFIX = "Task run encountered an exception "


class RunFailed(RuntimeError):
    """Some of the run's work failed; the message is one line naming what and why."""


def _root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost exception in the chain."""
    root, seen = exc, {id(exc)}
    while (inner := root.__cause__ or root.__context__) is not None and id(inner) not in seen:
        root = inner
        seen.add(id(root))
    text = str(root).strip()
    return f"{type(root).__name__}: {text.splitlines()[0]}" if text else type(root).__name__


def _first_line(text: str | None, default: str) -> str:
    lines = [line.strip() for line in (text or "").strip().removeprefix(_EXCEPTION_PREFIX).splitlines() if line.strip()]
    return lines[0] if lines else default


@dataclass(eq=False)
class Call(Generic[R]):
    """One labelled call of a task: its arguments (other calls among them) and the future of
    the task run that carries it now (a call submitted again gets a new one)."""

    label: str
    task: Any  # prefect.Task
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: Any = None  # prefect.futures.PrefectFuture of the current task run
    runs: int = 0  # task runs submitted for this call
    engine_error: BaseException | None = None  # the task engine raised instead of ending in a state

    def upstream(self) -> list[Call[Any]]:
        """The calls whose results this one takes as arguments."""
        found: list[Call[Any]] = []

        def visit(value: Any) -> None:
            if isinstance(value, Call):
                found.append(value)
            elif isinstance(value, (list, tuple, set)):
                for item in value:
                    visit(item)
            elif isinstance(value, dict):
                for item in value.values():
                    visit(item)

        visit(self.args)
        visit(self.kwargs)
        return found

    @property
    def completed(self) -> bool:
        return self.engine_error is None and self.future is not None and self.future.state.is_completed()

    @property
    def lost(self) -> str | None:
        """Why the call failed only because the control plane was away, or None."""
        if self.engine_error is not None:
            return _root_cause(self.engine_error)
        state = self.future.state
        if state.is_crashed():
            return _first_line(state.message, "crashed")
        if state.is_failed() and isinstance(state.result(raise_on_failure=False), SlotLost):
            return _first_line(state.message, "lost its slot")
        return None

    @property
    def failure(self) -> str | None:
        """Why the call failed for a reason of its own (not because a call it needs failed)."""
        if self.completed or (self.engine_error is None and self.future.state.name == "NotReady"):
            return None
        if self.engine_error is not None:
            return _root_cause(self.engine_error)
        return _first_line(self.future.state.message, self.future.state.name)

    def result(self) -> R:
        return self.future.result()  # type: ignore[no-any-return]


def _resolved(value: Any) -> Any:
    """``value`` with every call in it replaced by its current future."""
    if isinstance(value, Call):
        return value.future
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolved(v) for v in value)
    if isinstance(value, dict):
        return {k: _resolved(v) for k, v in value.items()}
    return value


def name_failures(failures: list[str], limit: int = MAX_NAMED_CALLS) -> str:
    """The first ``limit`` failures joined by "; ", with how many more there were."""
    more = f" (and {len(failures) - limit} more)" if len(failures) > limit else ""
    return "; ".join(failures[:limit]) + more


@dataclass
class RunScope:
    """What a flow body works with inside :func:`run_scope`."""

    flow: str
    run_id: str
    staging: Path  # the run's own staging folder
    patience: float  # how long to wait for the server to come back before a call is submitted again
    calls: list[Call[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    blinked: bool = False  # the control plane lost calls of this run

    def submit(self, label: str, task: Any, *args: Any, **kwargs: Any) -> Call[Any]:
        """Submit ``task`` now (arguments may hold other calls: their results are passed) and
        remember it under ``label``, which names it in the failure line."""
        call: Call[Any] = Call(label, task, args, kwargs)
        self.calls.append(call)
        self._submit(call)
        return call

    def note(self, cause: str) -> None:
        """A failure that is no call's (a dataset the partner does not have), for the line."""
        self.notes.append(cause)

    def value(self, call: Call[R]) -> R | None:
        """Wait for ``call`` now and return its result, or None when it failed (it is named
        in the failure line); for a result the rest of the submissions depend on."""
        self._wait([call])
        return call.result() if call.completed else None

    def results(
        self, items: Mapping[str, Call[Any] | Sequence[Call[Any]] | None], *, noun: str, kept: str = "nothing replaced"
    ) -> dict[str, Any]:
        """Wait for every call of the run; then the result of each item's (first) call, or
        :class:`RunFailed` with one line naming the items that failed (an item fails when one
        of its calls did, or when it has none) and the calls that failed, with why."""
        self._wait(self.calls)
        if self.blinked:  # events carrying final states may have been lost with the connection too
            _record_final_states([c.future for c in self.calls if c.engine_error is None], patience=RECORD_PATIENCE)
        calls = {name: [c] if isinstance(c, Call) else list(c or ()) for name, c in items.items()}
        failed = sorted(name for name, cs in calls.items() if not cs or not all(c.completed for c in cs))
        if failed or self.notes:
            text = f"{len(failed)} of {len(items)} {noun} failed, {kept} ({', '.join(failed)})"
            causes = [f"{c.label}: {reason}" for c in self.calls if (reason := c.failure)]
            if causes:
                text += "; failed calls: " + name_failures(causes)
            raise RunFailed("; ".join([text, *self.notes]))
        get_logger(self.flow).info(f"{self.flow}: {len(items)} {noun} done", **{noun: len(items)})
        return {name: cs[0].result() for name, cs in calls.items()}

    # --- waiting, and submitting again what the control plane lost ---------------------------

    def _submit(self, call: Call[Any]) -> None:
        call.future = call.task.submit(*_resolved(call.args), **_resolved(call.kwargs))
        call.engine_error = None
        call.runs += 1

    def settle(self, calls: Sequence[Call[Any]] | None = None) -> None:
        """Wait until every call's task run is over; an engine that raised is recorded, not raised."""
        for call in self.calls if calls is None else calls:
            try:
                call.future.wait()
            except Exception as exc:
                call.engine_error = exc

    def _wait(self, wanted: Sequence[Call[Any]]) -> None:
        scope = _with_upstream(wanted)
        for round_ in range(REDO_ROUNDS + 1):
            self.settle(scope)
            lost = [(c, why) for c in scope if not c.completed and (why := c.lost)]
            if not lost or not self._server_back():
                return
            self.blinked = True
            _record_final_states([c.future for c, _ in lost if c.engine_error is None])
            if round_ == REDO_ROUNDS:
                return
            again = {c for c, _ in lost}
            grown = True
            while grown:  # what a call submitted again feeds must run again too, unless it completed
                more = {c for c in self.calls if c not in again and not c.completed and set(c.upstream()) & again}
                again |= more
                grown = bool(more)
            get_logger(self.flow).warning(
                f"{len(lost)} call(s) lost to the control plane ({lost[0][0].label}: {lost[0][1]}); "
                f"submitting {len(again)} call(s) again as new task runs",
                calls=len(again),
            )
            for call in self.calls:
                if call in again:
                    self._submit(call)
            scope = _with_upstream([*scope, *again])

    def _server_back(self) -> bool:
        """True once the Prefect server answers ready again (within the run's patience)."""
        from prefect.settings import PREFECT_API_URL

        from common.prefect_api import not_ready

        api_url = str(PREFECT_API_URL.value())
        deadline = time.monotonic() + self.patience
        while (problem := not_ready(api_url, timeout=5.0)) is not None:
            if time.monotonic() > deadline:
                get_logger(self.flow).warning(
                    f"the Prefect server at {api_url} is still away after "
                    f"{self.patience:.0f} s ({problem}); not submitting again"
                )
                return False
            time.sleep(1.0)
        return True


def _record_final_states(futures: list[Any], patience: float = 0.0) -> None:
    """Make the server's record of each task run say how it ended. Prefect sends a task run's
    states as events; a process that was frozen or cut off can lose the one carrying the final
    state (written to a connection the server had already closed, and never confirmed before the
    process ended), and the record would stay Running for good, beside the runs that took its
    slot. After ``patience`` seconds for the events still on their way, each record the server
    still has unfinished is set as the run saw it: the same state, its own timestamp."""
    try:
        _set_unfinished(futures, patience)
    except Exception as exc:  # the server away again: the records stay as they are, the run goes on
        get_logger("run").warning(f"could not bring the server's task-run records up to date: {_root_cause(exc)}")


def _set_unfinished(futures: list[Any], patience: float) -> None:
    ended = {f.task_run_id: f.state for f in futures if f.state.is_final()}
    if not ended:
        return
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from common.prefect_rest import PrefectRest

    deadline = time.monotonic() + patience
    with PrefectRest(str(PREFECT_API_URL.value())) as rest:
        while True:
            records = rest.task_runs_by_id(list(ended))
            unfinished = [run_id for run_id, record in records.items() if not record.settled]
            if not unfinished or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
    if unfinished:
        with get_client(sync_client=True) as client:
            for run_id in unfinished:
                client.set_task_run_state(run_id, ended[run_id], force=True)


def _with_upstream(calls: Sequence[Call[Any]]) -> list[Call[Any]]:
    """``calls`` and every call they take results from, each once, upstream first."""
    out: list[Call[Any]] = []
    seen: set[int] = set()

    def visit(call: Call[Any]) -> None:
        if id(call) in seen:
            return
        seen.add(id(call))
        for up in call.upstream():
            visit(up)
        out.append(call)

    for call in calls:
        visit(call)
    return out


@contextmanager
def run_scope(flow: str, stage_in: Path | None = None) -> Iterator[RunScope]:
    """The scope of one flow run (see the module doc). ``stage_in``: the folder the run
    publishes into (default the lake); its staging folder is made inside it, so a finished
    file is renamed into place on the same filesystem."""
    from prefect.runtime import flow_run

    from common.lake import remove_staging, staging_dir, sweep_abandoned_staging
    from common.limits_check import require_limits
    from common.logs import configure_logging
    from common.resources import get_registry
    from common.settings import get_settings

    configure_logging()  # a served run is its own process: this is its entry point
    settings = get_settings()
    require_limits(get_registry())
    folder = stage_in or settings.lake_dir
    run_id = str(flow_run.id or uuid4())
    sweep_abandoned_staging(folder, keep=run_id)  # what cancelled or killed runs left behind
    scope = RunScope(flow, run_id, staging_dir(folder, run_id), settings.server_patience_seconds)
    try:
        yield scope
    finally:
        scope.settle()  # never remove the staging folder under a task that still runs
        remove_staging(folder, run_id)
