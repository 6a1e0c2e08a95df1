"""``uv run ingest``: one direct run of the ingest flow against the shared server."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def run(
    table: list[str] = typer.Option(None, "--table", "-t", help="Only these tables (repeatable)."),
) -> None:
    """Run ingest once, bound by the same server-side limits as the served deployments."""
    from common.catalog import check_table
    from common.entry import user_errors
    from common.flow_cli import run_flow

    with user_errors():  # an unknown table is refused here, before any flow run exists
        tables = [check_table(t) for t in table or []]
    run_flow("ingest", "flow_ingest.flows:ingest", {"tables": tables or None})


def main() -> None:
    app()
