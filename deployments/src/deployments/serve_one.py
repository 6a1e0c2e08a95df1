"""``uv run serve-ingest`` / ``uv run serve-reports``: one deployment per process (per machine).

Shared limits only hold when every process talks to the same Prefect server, so these
commands never start a server of their own: ``PREFECT_API_URL`` must name a running one
(they refuse, in one line, when it is unset or unreachable). Everything else is serve-all's
own code: the limits sync and fail-closed check (``--no-sync``: check only), the demo parts
when no real database or API is configured, and ``prefect.serve`` of the package's
deployment. Ctrl-C (or SIGTERM) stops the runner and whatever demo part it started.
"""

from __future__ import annotations

import os

import typer

from common.entry import user_errors
from common.logs import configure_logging
from common.resources import get_registry
from common.server import ServerUnavailableError, check_reachable, use_api
from common.settings import export_to_env, get_settings
from deployments.serve import banner, install_stop_signals, prepare_limits

NO_SYNC_HELP = (
    "Do not change the server's limits (they are managed elsewhere, e.g. by CI): only check "
    "them and refuse to start if a task tag has no active limit."
)


def shared_server_url(command: str) -> str:
    """``PREFECT_API_URL``, checked to answer; one clear line when it does not."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ServerUnavailableError(
            f"PREFECT_API_URL is not set: {command} serves one deployment on a shared Prefect "
            "server (every machine must use the same one); set it to that server's API URL, "
            "e.g. http://prefect.internal:4200/api, or use `uv run serve-all` on one machine"
        )
    api_url = use_api()
    check_reachable(api_url)
    return api_url


def serve_one(package: str, command: str, no_sync: bool = False) -> None:
    """Serve the deployment of one flow package against the shared server."""
    configure_logging()
    install_stop_signals()
    with user_errors():
        settings = get_settings()
        export_to_env(settings)
        registry = get_registry()  # a bad limits file stops us before anything starts
        api_url = shared_server_url(command)
        print(f"using the Prefect server at {api_url}")
    with user_errors():
        from prefect import serve

        from common.demo_parts import demo_parts
        from deployments.registry import build_deployments, deployment_names

        prepare_limits(registry, settings, no_sync)
        with demo_parts(settings, registry) as done:
            for line in done:
                print(line)
            deployments = build_deployments((package,))
            print(banner(api_url.removesuffix("/api"), deployment_names((package,))))
            serve(*deployments, limit=None)


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
