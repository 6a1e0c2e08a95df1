"""Run outcomes: wait for every submitted task, then say in one line what did not complete.

Both flows submit everything at once, wait for all of it (the seed's "submit all, wait
all"), clean up, and fail with one readable line naming the calls that failed and why.
:func:`settle` waits without letting one raising engine end the flow before its cleanup;
:func:`failed_calls` turns labelled futures into that line's parts, root causes only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_NAMED_CALLS = 3  # a failure line names at most this many calls, so it stays readable

_EXCEPTION_PREFIX = "Task run encountered an exception "


def failure_reason(future: Any, engine_errors: dict[Any, str] | None = None) -> str | None:
    """Why a submitted task run did not complete, as one line (None when it completed).

    Flows build their failure message from these, and a user reads it as the one
    ``error:`` line of the run, so it must not carry a multi-line database error.
    ``engine_errors`` (from :func:`settle`) name the runs whose engine raised.
    """
    if engine_errors and future.task_run_id in engine_errors:
        return engine_errors[future.task_run_id]
    state = future.state
    if state.is_completed():
        return None
    text = (state.message or state.name or "did not complete").strip().removeprefix(_EXCEPTION_PREFIX)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else state.name


def settle(futures: Iterable[Any]) -> dict[Any, str]:
    """Wait for every future; return, by task run id, the one-line error of each future whose
    task engine raised instead of ending the task run in a state.

    Prefect's engine raises, rather than failing the task run, when the Prefect server is
    unreachable as a task asks for its slot (a server restart mid-run does it), and every
    future that depends on that one raises too. ``prefect.futures.wait`` would let the first
    such error end the flow before its cleanup; the flows wait with this instead, so they
    still clean up and say why.
    """
    errors: dict[Any, str] = {}
    for future in futures:
        try:
            future.wait()
        except Exception as exc:  # noqa: BLE001 - reported by the caller, not swallowed
            errors[future.task_run_id] = _root_cause(exc)
    return errors


def _root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost exception in the chain."""
    root, seen = exc, {id(exc)}
    while (inner := root.__cause__ or root.__context__) is not None and id(inner) not in seen:
        root = inner
        seen.add(id(root))
    text = str(root).strip()
    return f"{type(root).__name__}: {text.splitlines()[0]}" if text else type(root).__name__


def failed_upstream(future: Any) -> bool:
    """True when the task run never ran because a task it needs failed (Prefect's NotReady):
    not a root cause to report."""
    return future.state.name == "NotReady"


def failed_calls(calls: Mapping[str, Any], engine_errors: dict[Any, str] | None = None) -> list[str]:
    """``label: reason`` of each labelled future that failed for a reason of its own (a call
    that never ran because a call it needed failed is not a root cause), in label order."""
    return [
        f"{label}: {reason}"
        for label, future in calls.items()
        if not failed_upstream(future) and (reason := failure_reason(future, engine_errors))
    ]


def name_failures(failures: list[str], limit: int = MAX_NAMED_CALLS) -> str:
    """The first ``limit`` failures joined by "; ", with how many more there were."""
    more = f" (and {len(failures) - limit} more)" if len(failures) > limit else ""
    return "; ".join(failures[:limit]) + more
