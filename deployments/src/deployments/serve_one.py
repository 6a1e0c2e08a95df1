"""``uv run serve-flow NAME``: one flow's deployment per process (per machine); ``serve-ingest``
and ``serve-reports`` are the same for this repository's two flows.

Shared limits only hold when every process talks to the same Prefect server, so these
commands never start a server of their own: ``PREFECT_API_URL`` must name a running one
(they refuse, in one line, when it is unset or unreachable). Everything else is serve-all's
own start-up path (:mod:`deployments.startup`): the limits sync and fail-closed check
(``--no-sync``: check only), the demo parts when no real database or API is configured, and
a Prefect runner serving the flow's deployment. Ctrl-C (or SIGTERM) stops the runner and
whatever demo part it started.
"""

from __future__ import annotations

import typer

from common.errors import user_errors
from deployments.registry import check_flows
from deployments.serve import serve_flows
from deployments.startup import install_stop_signals, started

NO_SYNC_HELP = (
    "Do not change the server's limits (they are managed elsewhere, e.g. by CI): only check "
    "them and refuse to start if a task tag has no active limit."
)


def serve_one(name: str, command: str, no_sync: bool = False) -> None:
    """Serve the deployment of one declared flow against the shared server."""
    with user_errors():
        check_flows([name])
    install_stop_signals()
    with started(command, "shared", sync=not no_sync) as up, user_errors():
        serve_flows(up, [name], caretakers=False)


def _app(name: str) -> typer.Typer:
    app = typer.Typer(add_completion=False, help=__doc__)

    @app.command()
    def run(no_sync: bool = typer.Option(False, "--no-sync", help=NO_SYNC_HELP)) -> None:
        """Serve this flow's deployment on the shared Prefect server (PREFECT_API_URL)."""
        serve_one(name, f"serve-{name}", no_sync=no_sync)

    return app


serve_flow_app = typer.Typer(add_completion=False, help=__doc__)


@serve_flow_app.command()
def serve_flow(
    name: str = typer.Argument(..., help="The flow, as its package declares it (e.g. ingest)."),
    no_sync: bool = typer.Option(False, "--no-sync", help=NO_SYNC_HELP),
) -> None:
    """Serve one declared flow's deployment on the shared Prefect server (PREFECT_API_URL)."""
    serve_one(name, "serve-flow", no_sync=no_sync)


def serve_flow_main() -> None:
    """Console script ``serve-flow``."""
    serve_flow_app()


def serve_ingest() -> None:
    """Console script ``serve-ingest``."""
    _app("ingest")()


def serve_reports() -> None:
    """Console script ``serve-reports``."""
    _app("reports")()
