"""``uv run serve-ingest`` / ``uv run serve-reports``: one deployment per process (per machine).

Shared limits only hold when every process talks to the same Prefect server, so these
commands never start a server of their own: ``PREFECT_API_URL`` must name a running one
(they refuse, in one line, when it is unset or unreachable). Everything else is serve-all's
own start-up path (:mod:`deployments.startup`): the limits sync and fail-closed check
(``--no-sync``: check only), the demo parts when no real database or API is configured, and
a Prefect runner serving the package's deployment. Ctrl-C (or SIGTERM) stops the runner and
whatever demo part it started.
"""

from __future__ import annotations

import typer

from common.errors import user_errors
from deployments.serve import serve_packages
from deployments.startup import install_stop_signals, started

NO_SYNC_HELP = (
    "Do not change the server's limits (they are managed elsewhere, e.g. by CI): only check "
    "them and refuse to start if a task tag has no active limit."
)


def serve_one(package: str, command: str, no_sync: bool = False) -> None:
    """Serve the deployment of one flow package against the shared server."""
    install_stop_signals()
    with started(command, "shared", sync=not no_sync) as up, user_errors():
        serve_packages(up, (package,), caretakers=False)


def _app(package: str, command: str) -> typer.Typer:
    app = typer.Typer(add_completion=False, help=__doc__)

    @app.command()
    def run(no_sync: bool = typer.Option(False, "--no-sync", help=NO_SYNC_HELP)) -> None:
        """Serve this flow's deployment on the shared Prefect server (PREFECT_API_URL)."""
        serve_one(package, command, no_sync=no_sync)

    return app


def serve_ingest() -> None:
    """Console script ``serve-ingest``."""
    _app("flow_ingest", "serve-ingest")()


def serve_reports() -> None:
    """Console script ``serve-reports``."""
    _app("flow_reports", "serve-reports")()
