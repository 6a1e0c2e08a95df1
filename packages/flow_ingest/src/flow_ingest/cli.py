"""``uv run ingest``: one direct run of the ingest flow against the shared server."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def run(
    table: list[str] = typer.Option(None, "--table", "-t", help="Only these tables (repeatable)."),
) -> None:
    """Run ingest once, bound by the same server-side limits as the served deployments."""
    from common.flow_cli import run_flow

    run_flow("ingest", "flow_ingest.flows:ingest", {"tables": table or None})


def main() -> None:
    app()
