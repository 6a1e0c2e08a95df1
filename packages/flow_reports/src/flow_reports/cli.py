"""``uv run reports``: one direct run of the reports flow against the shared server."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def run(
    report: list[str] = typer.Option(None, "--report", "-r", help="Only these reports (repeatable)."),
) -> None:
    """Run reports once, bound by the same server-side limits as the served deployments."""
    from common.catalog import REPORTS
    from common.entry import fail
    from common.flow_cli import run_flow

    unknown = [r for r in report or [] if r not in REPORTS]
    if unknown:  # refused here, before any flow run exists
        fail(f"unknown report {unknown[0]!r}: choose one of {', '.join(REPORTS)}")
    run_flow("reports", "flow_reports.flows:reports", {"names": report or None})


def main() -> None:
    app()
