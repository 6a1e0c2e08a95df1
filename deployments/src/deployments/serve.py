"""``uv run serve-all``: one command from a fresh machine to both flows served side by side.

1. A Prefect server: ``PREFECT_API_URL`` if set, else a local one on 127.0.0.1:4200 (its home
   in the project's data folder, persistent lease storage, no telemetry).
2. The server's limits made to match ``limits.toml``, then checked (fail closed).
3. The demo database and demo partner API, unless real ones are configured.
4. Both deployments in one ``prefect.serve`` call.

Ctrl-C (or SIGTERM) stops the runner, then the demo API and the server this command started.
"""

from __future__ import annotations

import os
import signal
import threading

import typer

from common.errors import user_errors
from common.prefect_api import DEFAULT_PORT
from deployments.startup import install_stop_signals, started

app = typer.Typer(add_completion=False, help=__doc__)


def banner(ui_url: str, names: list[str]) -> str:
    runs = "\n".join(f"    uv run prefect deployment run '{n}'" for n in names)
    return (
        f"\nPrefect UI: {ui_url}\n"
        f"Trigger runs (from another terminal in this folder):\n{runs}\n"
        "Watch the shared slots:  uv run slots --watch\n"
        "Stop everything:         Ctrl-C\n"
    )


def serve_packages(ui_url: str, packages: tuple[str, ...] | None = None) -> None:
    """Serve the deployments of ``packages`` (default: every flow package) in one
    ``prefect.serve`` call, after printing what to type next."""
    from prefect import serve

    from deployments.registry import FLOW_PACKAGES, build_deployments, deployment_names

    packages = packages or FLOW_PACKAGES
    deployments = build_deployments(packages)
    print(banner(ui_url, deployment_names(packages)))
    serve(*deployments, limit=None)


@app.command()
def serve_all(
    demo: bool = typer.Option(False, "--demo", help="Also trigger one run of each deployment now and print slot usage while they run."),
    once: bool = typer.Option(False, "--once", help="With --demo: stop serving when the demo runs finish (exit 1 if one failed or a limit was exceeded)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port of the local Prefect server (when PREFECT_API_URL is unset)."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Do not change the server's limits (they are managed elsewhere, e.g. by CI): only check them and refuse to start if a task tag has no active limit."),
    server_db: str = typer.Option("postgres", "--server-db", help="Database of the local Prefect server: postgres (embedded, fast slot hand-off) or sqlite."),
) -> None:
    """Serve the ingest and reports deployments side by side on one Prefect server."""
    install_stop_signals()
    outcome: dict[str, bool] = {}
    with started("serve-all", "local", sync=not no_sync, port=port, server_db=server_db) as up, user_errors():
        if demo:
            from deployments.demo import run_demo, wait_for_flow_run_processes
            from deployments.registry import deployment_names

            def drive() -> None:
                try:
                    outcome["ok"] = run_demo(deployment_names(), up.registry, up.api_url)
                finally:
                    if once:
                        wait_for_flow_run_processes()
                        os.kill(os.getpid(), signal.SIGTERM)  # the runner's own graceful stop

            threading.Thread(target=drive, name="serve-all-demo", daemon=True).start()
        serve_packages(up.ui_url)
    if once and demo and not outcome.get("ok", False):
        raise SystemExit(1)


def main() -> None:
    app()
