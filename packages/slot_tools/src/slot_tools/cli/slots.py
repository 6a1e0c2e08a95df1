"""``uv run slots``: who holds each shared slot, who waits for one, and what looks wrong;
``slots history`` proves from the server's records that every limit held; ``slots repair``
frees slots no live task run holds."""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import typer

from common.errors import fail
from common.prefect_rest import PrefectRest
from slot_tools.cli.session import session
from slot_tools.render import as_dict, render
from slot_tools.rules import findings
from slot_tools.snapshot import take_snapshot

app = typer.Typer(add_completion=False, invoke_without_command=True, help=__doc__)


@app.callback()
def show(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the snapshot as JSON (stable keys)."),
    watch: bool = typer.Option(False, "--watch", help="Refresh about once a second until Ctrl-C."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when any anomaly is found."),
) -> None:
    """Show every shared limit: slots used, holders by flow, waiters, anomalies."""
    if ctx.invoked_subcommand is not None:
        return
    import json

    with session() as (registry, api_url):
        from rich.console import Console
        from rich.live import Live

        console = Console()
        snapshot = take_snapshot(registry, api_url)
        if watch:
            try:
                with Live(render(snapshot), console=console, refresh_per_second=4) as live:
                    while True:
                        time.sleep(1.0)  # the refresh period of --watch
                        snapshot = take_snapshot(registry, api_url)
                        live.update(render(snapshot))
            except KeyboardInterrupt:
                pass
        elif as_json:
            print(json.dumps(as_dict(snapshot), indent=2))
        else:
            console.print(render(snapshot))
    if check and findings(snapshot):
        raise SystemExit(1)


SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SINCE = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_since(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d`` or a sum like ``1h30m``; ValueError names the fix."""
    compact = text.strip().lower().replace(" ", "")
    parts = _SINCE.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"--since {text!r}: use a duration like 90s, 30m, 2h, 1d or 1h30m")
    seconds = sum(float(n) * SINCE_UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"--since {text!r}: the duration must be more than zero")
    return timedelta(seconds=seconds)


def _flow_run_ids(values: list[str]) -> list[UUID]:
    out = []
    for value in values:
        try:
            out.append(UUID(value.strip()))
        except ValueError:
            fail(f"--flow-run {value!r} is not a flow run id (a UUID, as `prefect flow-run ls` shows)")
    return out


def _drift_notes(rest: PrefectRest, limits: dict[str, int]) -> list[str]:
    """The verdict uses the limits file; say so when the server holds another value now."""
    from common.limits_check import read_server_limits

    server = read_server_limits(rest)["tag"]
    notes = []
    for tag, slots in limits.items():
        gcl = server.get(tag)
        if gcl is None or not gcl.active:
            notes.append(f"tag:{tag} has no active limit on the server now; judged against the file's {slots}")
        elif gcl.limit != slots:
            notes.append(f"tag:{tag} has {gcl.limit} slots on the server now; judged against the file's {slots}")
    return notes


@app.command("history")
def history(
    since: str | None = typer.Option(
        None, "--since", help="How far back: 90s, 30m, 2h, 1d (default 2h; no bound with --flow-run)."
    ),
    flow_run: list[str] = typer.Option([], "--flow-run", help="Only these flow runs (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (stable keys)."),
    html_file: Path | None = typer.Option(None, "--html", help="Write a self-contained HTML timeline here."),
) -> None:
    """Prove from the server's task-run records that every limit held; exit 1 if one was exceeded."""
    import json
    import sqlite3

    from common.logs import configure_logging
    from slot_tools.history import read_window, summarize, window_of
    from slot_tools.ledger import Ledger
    from slot_tools.render import render_history
    from slot_tools.timeline import render_html

    configure_logging()
    try:
        period = parse_since(since) if since is not None else (None if flow_run else timedelta(hours=2))
    except ValueError as exc:
        fail(str(exc))
    flow_run_ids = _flow_run_ids(flow_run) or None
    with session() as (registry, api_url):
        from rich.console import Console

        limits = registry.tag_limits()
        now = datetime.now(UTC)
        start = now - period if period else None
        with PrefectRest(api_url) as rest:
            window = None
            if start is not None and not flow_run_ids:  # a stretch of time: settled holds kept locally
                ledger = Ledger.in_data_dir(api_url)
                try:
                    window = window_of([iv for tag in limits for iv in ledger.read(rest, tag, start, now)], start, now)
                except sqlite3.Error as exc:  # a cache that cannot be used: read the server whole
                    print(
                        f"note: slot ledger {ledger.path} unusable ({exc}); read the server whole "
                        "(delete the file to start it again)",
                        file=sys.stderr,
                    )
            if window is None:
                window = read_window(rest, limits, start, flow_run_ids, now=now)
            notes = _drift_notes(rest, limits)
        report = summarize(window.intervals, limits, window.start, window.end)
        if html_file is not None:
            html_file.parent.mkdir(parents=True, exist_ok=True)
            html_file.write_text(render_html(report, window.intervals), encoding="utf-8")
        if as_json:
            print(json.dumps({**report.as_dict(), "notes": notes}, indent=2))
            if html_file is not None:
                print(html_file.resolve(), file=sys.stderr)
        elif html_file is not None:
            print(html_file.resolve())
        else:
            Console().print(render_history(report, notes))
    if report.exceeded:
        raise SystemExit(1)


@app.command("board")
def board(
    port: int | None = typer.Option(None, "--port", help="Port on 127.0.0.1 (default: ETL_BOARD_PORT, else 4280)."),
) -> None:
    """Serve the live slot board (lanes per slot, holders by flow, waiters) and its /metrics
    for Prometheus until Ctrl-C."""
    from common.settings import get_settings
    from slot_tools.asgi import run_in_foreground
    from slot_tools.board.app import create_board
    from slot_tools.reading import Readings

    with session() as (registry, api_url):
        port = port or get_settings().board_port
        app_ = create_board(Readings(registry, api_url))
        print(
            f"slot board: http://127.0.0.1:{port}  metrics: http://127.0.0.1:{port}/metrics  "
            f"(reading {api_url}; Ctrl-C stops it)",
            flush=True,
        )
        try:
            run_in_foreground(app_, "127.0.0.1", port)
        except KeyboardInterrupt:  # Ctrl-C is how it stops: uvicorn passes the signal on once done
            pass
        except OSError as exc:
            fail(
                f"cannot serve the slot board on 127.0.0.1:{port} ({exc.strerror or exc}): "
                "set ETL_BOARD_PORT or --port to a free port"
            )


@app.command("doctor")
def doctor() -> None:
    """Repair leaked slots automatically, every few seconds, and send an event for each anomaly
    and repair, until Ctrl-C (a sidecar for a server serve-all did not start; serve-all runs the
    same watchdog itself)."""
    import threading

    from slot_tools.alerts import Alerts
    from slot_tools.reading import Readings
    from slot_tools.watchdog import GRACE_SECONDS, INTERVAL_SECONDS, Watchdog

    with session() as (registry, api_url):
        print(
            f"slots doctor: watching {api_url} every {INTERVAL_SECONDS:g} s; a leak is freed once it "
            f"persisted {GRACE_SECONDS:g} s (Ctrl-C stops it)",
            flush=True,
        )
        try:
            alerts = Alerts(registry.alerts.saturated_after_seconds)
            Watchdog(Readings(registry, api_url), alerts=alerts).run(threading.Event())
        except KeyboardInterrupt:
            pass


@app.command("repair")
def repair(
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
) -> None:
    """Free slots that no live task run holds (shows the plan and asks first)."""
    from slot_tools.repair import apply_repair, confirmed, freed_meanwhile, plan_repair

    with session() as (registry, api_url):
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            actions = plan_repair(take_snapshot(registry, api_url))
            fixes = [a for a in actions if a.kind != "wait"]
            for action in actions:
                print(("will " if action.kind != "wait" else "note: ") + action.describe())
            if not fixes:
                print("nothing to repair: every taken slot has a live holder")
                return
            if not yes and not typer.confirm(f"Apply {len(fixes)} repair(s)?", default=False):
                print("nothing changed")
                raise SystemExit(1)
            # Read again: a slot taken or freed since the plan voids the plan, not a live lease.
            fresh = plan_repair(take_snapshot(registry, api_url))
            still = confirmed(fixes, fresh)
            for action in apply_repair(client, still):
                print(f"done: {action.describe()}")
            freed = freed_meanwhile(fixes, fresh)
            for action in freed:
                print(f"freed by itself meanwhile, nothing to do: tag:{action.tag}")
            if changed := len(fixes) - len(still) - len(freed):
                print(
                    f"{changed} repair(s) not applied: the slots changed since the plan "
                    "was made; run `uv run slots repair` again"
                )
                raise SystemExit(1)
