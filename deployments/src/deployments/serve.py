"""``uv run serve-all``: one command from a fresh machine to every flow served side by side.

1. A Prefect server: ``PREFECT_API_URL`` if set, else a local one on 127.0.0.1:4200 (its home
   in the project's data folder, persistent lease storage, no telemetry).
2. The server's limits made to match ``limits.toml``, then checked (fail closed).
3. The demo database and demo partner API, unless real ones are configured.
4. The deployment of every declared flow on one Prefect runner (what ``prefect.serve`` runs).

Ctrl-C (or SIGTERM) stops the runner, then the demo API and the server this command started.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import typer

from common.errors import user_errors
from common.prefect_api import DEFAULT_PORT, PROJECT_API_URL
from deployments.startup import Started, install_stop_signals, started
from deployments.supervisor import supervising

if TYPE_CHECKING:
    from slot_tools.reading import Readings
    from slot_tools.watchdog import Watchdog

app = typer.Typer(add_completion=False, help=__doc__)


def banner(api_url: str, names: list[str], board_url: str | None = None) -> str:
    """What to type next, exactly as it works from a fresh terminal in this folder: Prefect's
    CLI finds the default server through ``prefect.toml``; any other needs PREFECT_API_URL."""
    env = "" if api_url == PROJECT_API_URL else f"PREFECT_API_URL={api_url} "
    runs = "\n".join(f"    {env}uv run prefect deployment run '{n}'" for n in names)
    board = f"Live slot board:         {board_url}\n" if board_url else ""
    return (
        f"\nPrefect UI: {api_url.removesuffix('/api')}\n"
        f"Trigger runs (from another terminal in this folder):\n{runs}\n"
        f"Watch the shared slots:  {env}uv run slots --watch\n"
        f"{board}"
        "Stop everything:         Ctrl-C\n"
    )


@contextmanager
def slot_board(readings: Readings, port: int, watchdog: Watchdog | None) -> Iterator[str | None]:
    """The live slot board (and its /metrics) on 127.0.0.1 while serving; None (and one line)
    if its port is taken."""
    from slot_tools.asgi import run_in_thread
    from slot_tools.board.app import create_board

    board = create_board(readings, (lambda: watchdog.repaired) if watchdog is not None else list)
    with ExitStack() as stack:
        url: str | None = None
        try:
            url = stack.enter_context(run_in_thread(board, port=port, name="slot-board"))
        except OSError as exc:  # only the bind: what the block raises is not ours to catch
            print(
                f"warning: the live slot board was not started: 127.0.0.1:{port} is taken "
                f"({exc.strerror or exc}); set ETL_BOARD_PORT to a free port, or run `uv run slots board --port N`"
            )
        yield url


SERVING = "Your deployments are being served"


def serve_flows(up: Started, flows: list[str] | None = None, caretakers: bool = True, auto_repair: bool = True) -> None:
    """Serve the deployments of ``flows`` (default: every declared flow) on one Prefect
    runner, as ``prefect.serve`` does, and print what to type next once they are registered.

    ``prefect.serve`` itself prints ``$ prefect deployment run [DEPLOYMENT_NAME]``, which a
    fresh terminal cannot run (``prefect`` is this project's environment's, reached with ``uv
    run``); so its Runner, Prefect's public class behind ``serve``, is driven here and the
    banner is the only instructions printed. ``caretakers`` (serve-all's, not a one-flow
    server's): the slot board, the slot ledger kept read, and the watchdog (``auto_repair``)."""
    import asyncio

    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    from deployments.registry import build_deployments, deployment_names
    from slot_tools.ledger import Ledger, keeping
    from slot_tools.reading import Readings
    from slot_tools.watchdog import watching

    names = deployment_names(flows)
    with ExitStack() as stack:
        board_url = None
        if caretakers:  # serve-all's own: leaked slots freed, the board, the slot ledger kept read
            readings = Readings(up.registry, up.api_url)  # one reading serves the watchdog and the board
            dog = stack.enter_context(watching(readings)) if auto_repair else None
            board_url = stack.enter_context(slot_board(readings, up.settings.board_port, dog))
            stack.enter_context(keeping(Ledger.in_data_dir(up.api_url), up.registry.tag_limits()))
        runner = Runner(pause_on_shutdown=True, limit=None)
        for deployment in build_deployments(flows):
            runner.add_deployment(deployment)
        print(banner(up.api_url, names, board_url) + f"\n{SERVING}: {', '.join(names)}\n", flush=True)
        try:
            asyncio.run(runner.start())
        except (KeyboardInterrupt, TerminationSignal) as exc:
            print(f"received {type(exc).__name__}: stopping", flush=True)


@app.command()
def serve_all(
    demo: bool = typer.Option(
        False, "--demo", help="Also trigger one run of each deployment now and print slot usage while they run."
    ),
    once: bool = typer.Option(
        False,
        "--once",
        help="With --demo: stop serving when the demo runs finish (exit 1 if one failed or a limit was exceeded).",
    ),
    port: int = typer.Option(
        DEFAULT_PORT, "--port", help="Port of the local Prefect server (when PREFECT_API_URL is unset)."
    ),
    no_sync: bool = typer.Option(
        False,
        "--no-sync",
        help="Do not change the server's limits (they are managed elsewhere, e.g. by CI): only check them "
        "and refuse to start if a task tag has no active limit.",
    ),
    server_db: str = typer.Option(
        "postgres",
        "--server-db",
        help="Database of the local Prefect server: postgres (embedded, fast slot hand-off) or sqlite.",
    ),
    no_auto_repair: bool = typer.Option(
        False,
        "--no-auto-repair",
        help="Do not free leaked slots automatically (the watchdog); `uv run slots repair` still can.",
    ),
) -> None:
    """Serve the deployment of every declared flow side by side on one Prefect server."""
    install_stop_signals()
    outcome: dict[str, bool] = {}
    fatal: list[str] = []

    def give_up(message: str) -> None:
        """A part of the stack died for good: stop serving; everything started is stopped."""
        fatal.append(message)
        print(f"error: {message}", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # the runner's own graceful stop

    with (
        started("serve-all", "local", sync=not no_sync, port=port, server_db=server_db) as up,
        user_errors(),
        supervising(up.local_server, up.demo_api, give_up),
    ):
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
        serve_flows(up, auto_repair=not no_auto_repair)
    if fatal:
        raise SystemExit(1)
    if once and demo and not outcome.get("ok", False):
        raise SystemExit(1)


def main() -> None:
    app()
