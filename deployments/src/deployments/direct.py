"""Direct runs: one run of a declared flow, in this terminal, against the shared server and
bound by the same limits as the served deployments.

``uv run run-flow NAME [--param key=value ...]`` runs any declared flow; ``uv run ingest`` and
``uv run reports`` are the same for the two flows of this repository, with their own flags.
Arguments are checked before any flow run exists (an unknown table, report or parameter is one
line); then the common start-up path (:mod:`deployments.startup`): the server must already run
(``PREFECT_API_URL``, or serve-all's local server), its limits must hold every factory tag
(never changed from here), and the demo parts come up when no real ones are configured.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from common.errors import UserError, user_errors
from common.logs import configure_logging
from common.prefect_api import use_api
from deployments.registry import check_flows, load_flow
from deployments.startup import started


class BadParameterError(UserError):
    """A parameter the flow does not take, or one its type refuses."""


def run_declared(name: str, parameters: dict[str, Any]) -> None:
    """Run the declared flow ``name`` once and print its result; exit 1 with one line if it
    did not complete. Its parameters are checked first, against the flow's own signature,
    before anything starts or any flow run exists."""
    configure_logging()
    use_api()  # before Prefect is imported with the flow: every process uses one server
    with user_errors():
        flow = load_flow(name)
        checked = validated(flow, parameters)
    with started(name, "existing", sync=False):
        state = flow(**checked, return_state=True)
    if state.is_completed():
        print(json.dumps(state.result(), indent=2, default=str))
        return
    reason = (state.message or "no reason given").strip().splitlines()
    print(f"error: {name} run ended {state.name}: {reason[0] if reason else 'no reason given'}", file=sys.stderr)
    raise SystemExit(1)


def validated(flow: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters as the flow's signature types them (pydantic, as Prefect validates them);
    one line, the validator's own words, for the first one refused."""
    import inspect
    import typing

    from pydantic import TypeAdapter, ValidationError

    accepted = inspect.signature(flow.fn).parameters
    if unknown := [key for key in parameters if key not in accepted]:
        raise BadParameterError(
            f"{flow.name} takes no parameter {unknown[0]!r}; it takes: {', '.join(accepted) or 'none'}"
        )
    hints = typing.get_type_hints(flow.fn, include_extras=True)
    out: dict[str, Any] = {}
    for key, value in parameters.items():
        try:
            out[key] = TypeAdapter(hints.get(key, Any)).validate_python(value)
        except ValidationError as exc:
            error = exc.errors()[0]
            inner = (error.get("ctx") or {}).get("error")
            raise BadParameterError(str(inner) if inner else f"{flow.name}: {key}: {error['msg']}") from None
    return out


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs, as ``prefect deployment run --param`` takes them: a value that is
    JSON is parsed (``tables='["orders"]'``), anything else is a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadParameterError(f"--param {pair!r}: write it as key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


run_flow_app = typer.Typer(add_completion=False, help="One direct run of a declared flow against the shared server.")
ingest_app = typer.Typer(add_completion=False, help="One direct run of the ingest flow against the shared server.")
reports_app = typer.Typer(add_completion=False, help="One direct run of the reports flow against the shared server.")


@run_flow_app.command()
def run_flow(
    name: str = typer.Argument(..., help="The flow, as its package declares it (e.g. ingest)."),
    param: list[str] = typer.Option(
        [], "--param", "-p", help="A flow parameter, key=value (JSON values parsed); repeatable."
    ),
) -> None:
    """Run a declared flow once, bound by the same server-side limits as the served deployments."""
    with user_errors():  # refused here, before any flow run exists
        check_flows([name])
        parameters = parse_params(param)
    run_declared(name, parameters)


@ingest_app.command()
def ingest(
    table: list[str] = typer.Option(None, "--table", "-t", help="Only these tables (repeatable)."),
) -> None:
    """Run ingest once, bound by the same server-side limits as the served deployments."""
    run_declared("ingest", {"tables": table or None})


@reports_app.command()
def reports(
    report: list[str] = typer.Option(None, "--report", "-r", help="Only these reports (repeatable)."),
) -> None:
    """Run reports once, bound by the same server-side limits as the served deployments."""
    run_declared("reports", {"names": report or None})


def run_flow_main() -> None:
    """Console script ``run-flow``."""
    run_flow_app()


def ingest_main() -> None:
    """Console script ``ingest``."""
    ingest_app()


def reports_main() -> None:
    """Console script ``reports``."""
    reports_app()
