"""The one start-up path of every application command (serve-all, serve-ingest,
serve-reports, ingest, reports).

In this order: logging; settings pinned in the environment (served flow runs inherit them);
a valid limits file, before anything touches a server (a bad file changes nothing); one
Prefect server (the one ``PREFECT_API_URL`` names, or for serve-all a local one it starts);
the server's limits made to match the file (unless ``sync=False``), then the fail-closed
check (a tag with no active limit would run unlimited); the demo database and demo partner
API when no real ones are configured. On the way out, everything it started is stopped, in
reverse order. Errors a user can fix are one line and exit status 2.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from common.errors import user_errors
from common.limits_check import require_limits
from common.logs import configure_logging
from common.prefect_api import AUTH_STRING_SETTING, DEFAULT_PORT, ServerUnavailableError, connect
from common.resources import Registry, get_registry
from common.settings import Settings, export_to_env, get_settings

# "local": PREFECT_API_URL if set, else a local server started here (serve-all);
# "shared": PREFECT_API_URL must name a running server (one deployment per machine);
# "existing": PREFECT_API_URL or the local default, which must already run (direct runs).
ServerMode = Literal["local", "shared", "existing"]


@dataclass(frozen=True)
class Started:
    """What a command has once it started: the registry and the server everything uses."""

    settings: Settings
    registry: Registry
    api_url: str
    local_server: Any = None  # the LocalPrefectServer this command started, if any
    demo_api: Any = None  # the DemoApiProcess it started, if any


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def install_stop_signals() -> None:
    """Ctrl-C works even when a script started us with SIGINT ignored; until the runner
    installs its own handler, SIGTERM unwinds like Ctrl-C so ``finally`` stops what we started."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _shared_server(command: str) -> str:
    if not os.environ.get("PREFECT_API_URL"):
        raise ServerUnavailableError(
            f"PREFECT_API_URL is not set: {command} serves one deployment on a shared Prefect "
            "server (every machine must use the same one); set it to that server's API URL, "
            "e.g. http://prefect.internal:4200/api, or use `uv run serve-all` on one machine"
        )
    return connect()


def prepare_limits(registry: Registry, settings: Settings, sync: bool) -> None:
    """Make the server's limits match the file (if ``sync``), then fail closed."""
    if sync:
        from prefect.client.orchestration import get_client

        from slot_tools.limits_sync import sync as sync_limits

        with get_client(sync_client=True) as client:
            for change in sync_limits(client, registry):
                if change.changes_server:
                    print(f"limits: {change.describe()}")
    require_limits(registry)
    print(
        "limits match "
        + str(settings.limits_file)
        + ": "
        + ", ".join(f"{t}={n}" for t, n in registry.tag_limits().items())
    )


@contextmanager
def started(
    command: str,
    server: ServerMode,
    *,
    sync: bool,
    port: int = DEFAULT_PORT,
    server_db: str = "postgres",
) -> Iterator[Started]:
    """Start everything ``command`` needs; stop what was started on the way out."""
    from local_server.prefect_server import LocalPrefectServer

    configure_logging()
    local: LocalPrefectServer | None = None
    with user_errors():
        settings = get_settings()
        export_to_env(settings)
        registry = get_registry()  # a bad limits file stops us before anything starts
        if server == "shared":
            api_url = _shared_server(command)
        elif server == "local" and not os.environ.get("PREFECT_API_URL"):
            # With PREFECT_SERVER_API_AUTH_STRING set, the local server requires it and every
            # client we start sends it (PREFECT_API_AUTH_STRING), as a production server would.
            auth = os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
            candidate = LocalPrefectServer(
                home=settings.prefect_home, port=port, backend=server_db, auth_string=auth, front=True
            )
            if auth:
                os.environ.setdefault(AUTH_STRING_SETTING, auth)
            started_here = candidate.start()
            for note in candidate.notes:
                print(note)
            if started_here:
                local = candidate
                print(f"starting a local Prefect server on {candidate.ui_url} (log: {candidate.log_path}) ...")
                print(f"Prefect server healthy after {candidate.wait_healthy():.1f} s")
            else:
                print(f"using the Prefect server already running on {candidate.ui_url}")
            api_url = connect(candidate.api_url)
        else:
            api_url = connect()
            if server != "existing":
                print(f"using the Prefect server at {api_url}")
    try:
        with user_errors():
            from demo_systems.parts import demo_parts

            if server == "existing":
                require_limits(registry)  # direct runs never change the server's limits
            else:
                prepare_limits(registry, settings, sync)
            with demo_parts(settings, registry) as parts:
                for line in parts.done:
                    print(line)
                yield Started(settings, registry, api_url, local, parts.api)
    finally:
        if local is not None:
            print("stopping the local Prefect server ...")
            local.stop()
