"""``uv run ingest`` / ``uv run reports``: one direct run of a flow, in this terminal, against
the shared server and bound by the same limits as the served deployments.

Arguments are checked before any flow run exists (an unknown table or report is one line);
then the common start-up path (:mod:`deployments.startup`): the server must already run
(``PREFECT_API_URL``, or serve-all's local server), its limits must hold every factory tag
(never changed from here), and the demo parts come up when no real ones are configured.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from common.errors import user_errors
from deployments.startup import started


def run_flow(label: str, flow: Any, parameters: dict[str, Any]) -> None:
    """Run ``flow`` once and print its result; exit 1 with one line if it did not complete."""
    with started(label, "existing", sync=False):
        state = flow()(**parameters, return_state=True)
    if state.is_completed():
        print(json.dumps(state.result(), indent=2, default=str))
        return
    reason = (state.message or "no reason given").strip().splitlines()
    print(f"error: {label} run ended {state.name}: {reason[0] if reason else 'no reason given'}", file=sys.stderr)
    raise SystemExit(1)


def _ingest_flow() -> Any:
    from flow_ingest.flows import ingest

    return ingest


def _reports_flow() -> Any:
    from flow_reports.flows import reports

    return reports


ingest_app = typer.Typer(add_completion=False, help="One direct run of the ingest flow against the shared server.")
reports_app = typer.Typer(add_completion=False, help="One direct run of the reports flow against the shared server.")


@ingest_app.command()
def ingest(
    table: list[str] = typer.Option(None, "--table", "-t", help="Only these tables (repeatable)."),
) -> None:
    """Run ingest once, bound by the same server-side limits as the served deployments."""
    from common.catalog import check_table

    with user_errors():  # an unknown table is refused here, before any flow run exists
        tables = [check_table(t) for t in table or []]
    run_flow("ingest", _ingest_flow, {"tables": tables or None})


@reports_app.command()
def reports(
    report: list[str] = typer.Option(None, "--report", "-r", help="Only these reports (repeatable)."),
) -> None:
    """Run reports once, bound by the same server-side limits as the served deployments."""
    from flow_reports.catalog import check_reports

    with user_errors():  # refused here, before any flow run exists
        check_reports(report or [])
    run_flow("reports", _reports_flow, {"names": report or None})


def ingest_main() -> None:
    """Console script ``ingest``."""
    ingest_app()


def reports_main() -> None:
    """Console script ``reports``."""
    reports_app()
