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

from common.entry import require_limits, user_errors
from common.logs import configure_logging
from common.resources import Registry, get_registry
from common.server import DEFAULT_PORT, LocalPrefectServer, check_reachable, use_api
from common.settings import Settings, export_to_env, get_settings

app = typer.Typer(add_completion=False, help=__doc__)


def banner(ui_url: str, names: list[str]) -> str:
    runs = "\n".join(f"    uv run prefect deployment run '{n}'" for n in names)
    return (
        f"\nPrefect UI: {ui_url}\n"
        f"Trigger runs (from another terminal in this folder):\n{runs}\n"
        "Watch the shared slots:  uv run slots --watch\n"
        "Stop everything:         Ctrl-C\n"
    )


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def install_stop_signals() -> None:
    """Ctrl-C works even when a script started us with SIGINT ignored; until the runner
    installs its own handler, SIGTERM unwinds like Ctrl-C so ``finally`` stops what we started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def prepare_limits(registry: Registry, settings: Settings, no_sync: bool) -> None:
    """Make the server's limits match the file (unless ``no_sync``), then fail closed: a tag
    with no active limit would run unlimited. Call after ``use_api``."""
    from prefect.client.orchestration import get_client

    from common.limits_sync import sync

    if not no_sync:
        with get_client(sync_client=True) as client:
            for change in sync(client, registry):
                if change.changes_server:
                    print(f"limits: {change.describe()}")
    require_limits(registry)
    print("limits match " + str(settings.limits_file) + ": "
          + ", ".join(f"{t}={n}" for t, n in registry.tag_limits().items()))


@app.command()
def serve_all(
    demo: bool = typer.Option(False, "--demo", help="Also trigger one run of each deployment now and print slot usage while they run."),
    once: bool = typer.Option(False, "--once", help="With --demo: stop serving when the demo runs finish (exit 1 if one failed or a limit was exceeded)."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port of the local Prefect server (when PREFECT_API_URL is unset)."),
    no_sync: bool = typer.Option(False, "--no-sync", help="Do not change the server's limits (they are managed elsewhere, e.g. by CI): only check them and refuse to start if a task tag has no active limit."),
    server_db: str = typer.Option("postgres", "--server-db", help="Database of the local Prefect server: postgres (embedded, fast slot hand-off) or sqlite."),
) -> None:
    """Serve the ingest and reports deployments side by side on one Prefect server."""
    configure_logging()
    install_stop_signals()
    server: LocalPrefectServer | None = None
    outcome: dict[str, bool] = {}
    with user_errors():
        settings = get_settings()
        export_to_env(settings)
        registry = get_registry()  # a bad limits file stops us before anything starts
        if os.environ.get("PREFECT_API_URL"):
            api_url = use_api()
            check_reachable(api_url)
            ui_url = api_url.removesuffix("/api")
            print(f"using the Prefect server at {api_url}")
        else:
            local = LocalPrefectServer(home=settings.prefect_home, port=port, backend=server_db)
            if local.start():
                server = local
                print(f"starting a local Prefect server on {local.ui_url} (log: {local.log_path}) ...")
                print(f"Prefect server healthy after {local.wait_healthy():.1f} s")
            else:
                print(f"using the Prefect server already running on {local.ui_url}")
            api_url = use_api(local.api_url)
            ui_url = api_url.removesuffix("/api")
    try:
        with user_errors():
            from prefect import serve

            from common.demo_parts import demo_parts
            from deployments.registry import build_deployments, deployment_names

            prepare_limits(registry, settings, no_sync)
            with demo_parts(settings, registry) as done:
                for line in done:
                    print(line)
                deployments = build_deployments()
                names = deployment_names()
                print(banner(ui_url, names))
                if demo:
                    from deployments.demo import run_demo, wait_for_flow_run_processes

                    def drive() -> None:
                        try:
                            outcome["ok"] = run_demo(names, registry)
                        finally:
                            if once:
                                wait_for_flow_run_processes()
                                os.kill(os.getpid(), signal.SIGTERM)  # the runner's own graceful stop

                    threading.Thread(target=drive, name="serve-all-demo", daemon=True).start()
                serve(*deployments, limit=None)
    finally:
        if server is not None:
            print("stopping the local Prefect server ...")
            server.stop()
    if once and demo and not outcome.get("ok", False):
        raise SystemExit(1)


def main() -> None:
    app()
