"""``uv run slots``: who holds each shared slot, who waits for one, and what looks wrong.

Built from the server's own records (Prefect's REST API, read with httpx so the command
answers without importing Prefect): the limit's counter
(``active_slots``), the task runs holding live leases on it, and the Pending task runs
carrying its tag inside Running flow runs. A counter above the number of live holders, or a
holder that already finished, is a leaked slot.
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import typer

from common.entry import cli_session
from common.prefect_rest import FINAL_STATES, FlowRunRec, PrefectRest, TaskRunRec
from common.resources import Registry, limit_name_for

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

    from common.history import HistoryReport



@dataclass
class RunRef:
    """A task run with the flow run, flow and deployment it belongs to."""

    task_run_id: str
    task_run: str | None = None
    state: str | None = None
    flow: str | None = None
    deployment: str | None = None
    flow_run: str | None = None
    flow_run_id: str | None = None
    flow_run_state: str | None = None
    seconds: float | None = None  # held for (holders) or waiting for (waiters)


@dataclass
class LimitView:
    tag: str
    limit: str
    description: str
    file_slots: int
    server_slots: int | None
    active: bool | None
    used: int
    holders: list[RunRef] = field(default_factory=list)
    waiters: list[RunRef] = field(default_factory=list)
    blocked_upstream: int = 0
    anomalies: list[str] = field(default_factory=list)

    @property
    def per_flow(self) -> dict[str, dict[str, int]]:
        held = Counter(h.flow or "?" for h in self.holders)
        waiting = Counter(w.flow or "?" for w in self.waiters)
        return {f: {"holding": held[f], "waiting": waiting[f]} for f in sorted(set(held) | set(waiting))}


@dataclass
class Snapshot:
    taken_at: str
    api_url: str
    limits: list[LimitView]

    @property
    def anomalies(self) -> list[str]:
        return [a for view in self.limits for a in view.anomalies]

    def as_dict(self) -> dict[str, Any]:
        return {
            "taken_at": self.taken_at,
            "api_url": self.api_url,
            "limits": [{**asdict(v), "per_flow": v.per_flow} for v in self.limits],
            "anomalies": self.anomalies,
        }


def _seconds_since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max(0.0, (now - moment).total_seconds()), 2)


class _Resolver:
    """Looks up flow runs, flows and deployments once per snapshot."""

    def __init__(self, rest: PrefectRest) -> None:
        self.rest = rest
        self.flow_runs: dict[UUID, FlowRunRec] = {}
        self.flows: dict[UUID, str] = {}
        self.deployments: dict[UUID, str] = {}

    def load_parents(self, runs: list[TaskRunRec]) -> None:
        wanted = list({r.flow_run_id for r in runs if r.flow_run_id and r.flow_run_id not in self.flow_runs})
        if wanted:
            self.flow_runs.update(self.rest.flow_runs_by_id(wanted))
        flow_ids = list({fr.flow_id for fr in self.flow_runs.values() if fr.flow_id not in self.flows})
        if flow_ids:
            self.flows.update(self.rest.names("flows", flow_ids))
        dep_ids = list({fr.deployment_id for fr in self.flow_runs.values()
                        if fr.deployment_id and fr.deployment_id not in self.deployments})
        if dep_ids:
            self.deployments.update(self.rest.names("deployments", dep_ids))

    def ref(self, task_run_id: UUID, run: TaskRunRec | None, since: datetime | None, now: datetime) -> RunRef:
        ref = RunRef(task_run_id=str(task_run_id), seconds=_seconds_since(since, now))
        if run is None:
            return ref
        ref.task_run = run.name
        ref.state = run.state_type
        fr = self.flow_runs.get(run.flow_run_id) if run.flow_run_id else None
        if fr is not None:
            ref.flow_run, ref.flow_run_id, ref.flow_run_state = fr.name, str(fr.id), fr.state_type
            ref.flow = self.flows.get(fr.flow_id)
            ref.deployment = self.deployments.get(fr.deployment_id) if fr.deployment_id else None
        return ref


def take_snapshot(registry: Registry, api_url: str) -> Snapshot:
    """One consistent-enough view of every limit the limits file declares (REST reads only)."""
    with PrefectRest(api_url) as rest:
        return _snapshot(rest, registry, api_url)


def _snapshot(rest: PrefectRest, registry: Registry, api_url: str) -> Snapshot:
    now = datetime.now(timezone.utc)
    server = {g.name.removeprefix("tag:"): g for g in rest.global_limits() if g.name.startswith("tag:")}
    resolver = _Resolver(rest)
    views: list[LimitView] = []
    descriptions = {t: r.description for r in registry.resources.values() for t in r.limits()}
    for tag, file_slots in registry.tag_limits().items():
        gcl = server.get(tag)
        view = LimitView(
            tag=tag, limit=limit_name_for(tag), description=descriptions.get(tag, ""), file_slots=file_slots,
            server_slots=gcl.limit if gcl else None, active=gcl.active if gcl else None,
            used=gcl.active_slots if gcl else 0,
        )
        views.append(view)
        if gcl is None:
            view.anomalies.append(f"{view.limit}: no limit on the server, tag '{tag}' runs unlimited")
        elif not gcl.active:
            view.anomalies.append(f"{view.limit}: inactive, tag '{tag}' runs unlimited")
        elif gcl.limit != file_slots:
            view.anomalies.append(f"{view.limit}: server has {gcl.limit} slots, limits file says {file_slots}")
        holder_ids = rest.tag_holders(tag) if gcl is not None else []
        pending = rest.pending_with_tag(tag)
        holder_runs = rest.task_runs_by_id(holder_ids)
        upstream = rest.task_runs_by_id(list({u for r in pending for u in r.upstream}))
        resolver.load_parents([*holder_runs.values(), *pending])
        for hid in holder_ids:
            run = holder_runs.get(hid)
            ref = resolver.ref(hid, run, run.start_time if run else None, now)
            view.holders.append(ref)
            if ref.state in FINAL_STATES:
                view.anomalies.append(
                    f"{view.limit}: slot still held by task run {ref.task_run} which is {ref.state} "
                    "(leaked until its lease expires; `slots repair` frees it)"
                )
            elif ref.flow_run_state in FINAL_STATES:
                view.anomalies.append(
                    f"{view.limit}: slot held by task run {ref.task_run} of flow run {ref.flow_run} which is "
                    f"{ref.flow_run_state}: its process is gone (leaked until its lease expires; `slots repair` frees it)"
                )
        held = set(holder_ids)
        for run in pending:
            if run.id in held:
                continue  # acquired; its Running state has not reached the server yet
            if any(u in upstream and upstream[u].state_type != "COMPLETED" for u in run.upstream):
                view.blocked_upstream += 1  # waits for an upstream task, not for a slot
                continue
            view.waiters.append(resolver.ref(run.id, run, run.expected_start_time or run.created, now))
        view.holders.sort(key=lambda r: -(r.seconds or 0))
        view.waiters.sort(key=lambda r: -(r.seconds or 0))
        if gcl is not None and view.used > len(holder_ids):
            view.anomalies.append(
                f"{view.limit}: counter says {view.used} slots taken but only {len(holder_ids)} live holders "
                "(leaked slots; `slots repair` frees them)"
            )
    return Snapshot(taken_at=now.isoformat(), api_url=api_url, limits=views)


def render(snapshot: Snapshot, max_waiters: int = 10) -> Any:
    """Rich renderable: one table per limit (longest waiters first), then anomalies."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for view in snapshot.limits:
        total = view.server_slots if view.server_slots is not None else "no limit"
        title = f"{view.limit}  {view.used}/{total} slots used  ({view.description})"
        table = Table(title=title, title_justify="left", expand=False)
        for col in ("", "flow", "deployment", "flow run", "task run", "for"):
            table.add_column(col)
        for h in view.holders:
            table.add_row("holds", h.flow or "?", h.deployment or "-", h.flow_run or "?",
                          h.task_run or h.task_run_id, f"{h.seconds:.1f}s" if h.seconds is not None else "?")
        for w in view.waiters[:max_waiters]:
            table.add_row("waits", w.flow or "?", w.deployment or "-", w.flow_run or "?",
                          w.task_run or w.task_run_id, f"{w.seconds:.1f}s" if w.seconds is not None else "?")
        if len(view.waiters) > max_waiters:
            table.add_row("waits", f"+{len(view.waiters) - max_waiters} more", "", "", "", "")
        if not view.holders and not view.waiters:
            table.add_row("idle", "", "", "", "", "")
        parts.append(table)
        totals = ", ".join(f"{f}: {c['holding']} holding, {c['waiting']} waiting" for f, c in view.per_flow.items())
        extra = f"  ({view.blocked_upstream} more wait for upstream tasks)" if view.blocked_upstream else ""
        if totals or extra:
            parts.append(Text(f"  per flow: {totals or '-'}{extra}"))
    if snapshot.anomalies:
        parts.append(Text("anomalies:", style="bold red"))
        parts.extend(Text(f"  ! {a}", style="red") for a in snapshot.anomalies)
    else:
        parts.append(Text("no anomalies", style="green"))
    return Group(*parts)


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

    with cli_session() as (registry, api_url):
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
            print(json.dumps(snapshot.as_dict(), indent=2))
        else:
            console.print(render(snapshot))
    if check and snapshot.anomalies:
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
    from common.entry import fail

    out = []
    for value in values:
        try:
            out.append(UUID(value.strip()))
        except ValueError:
            fail(f"--flow-run {value!r} is not a flow run id (a UUID, as `prefect flow-run ls` shows)")
    return out


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%H:%M:%S")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def render_history(report: "HistoryReport", notes: list[str]) -> Any:
    """Rich renderable: one row per limit, then one row per limit and flow, then the verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    start, end = report.window_start.astimezone(), report.window_end.astimezone()
    window = f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S %z} ({report.window_seconds:.0f} s)"
    # Two-line headers keep both tables inside 80 columns (the width of a pipe or CI log).
    limits = Table(title=f"slot history  {window}", title_justify="left")
    for col, justify in (("limit", "left"), ("task\nruns", "right"), ("peak", "right"), ("peak at", "left"),
                         ("exceeded", "left"), ("utilization", "right"), ("flows\nshared", "right")):
        limits.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    flows = Table(title="per flow", title_justify="left")
    for col, justify in (("limit", "left"), ("flow", "left"), ("task\nruns", "right"), ("slot-\nseconds", "right"),
                         ("wait\nmedian", "right"), ("wait\np95", "right")):
        flows.add_column(col, justify=justify, no_wrap=justify == "right")  # type: ignore[arg-type]
    for t in report.tags:
        limits.add_row(
            f"tag:{t.tag}", str(t.task_runs), f"{t.peak}/{t.limit}", _clock(t.peak_at),
            Text("YES", style="bold red") if t.exceeded else Text("no", style="green"),
            f"{t.utilization:.1%}", f"{t.shared_seconds:.1f}s",
        )
        for f in t.flows:
            flows.add_row(f"tag:{t.tag}", f.flow, str(f.task_runs), f"{f.slot_seconds:.2f}",
                          _secs(f.wait_median), _secs(f.wait_p95))
    if not any(t.flows for t in report.tags):
        flows.add_row("-", "no task runs with these tags in the window", "", "", "", "")
    shared = Text("  flows shared: seconds during which more than one flow held slots of the limit")
    parts: list[Any] = [limits, shared, flows]
    parts.extend(Text(f"note: {n}", style="yellow") for n in notes)
    exceeded = [f"tag:{t.tag}" for t in report.tags if t.exceeded]
    parts.append(Text(f"EXCEEDED: {', '.join(exceeded)}", style="bold red") if exceeded
                 else Text("every limit held", style="green"))
    return Group(*parts)


def _drift_notes(client: "SyncPrefectClient", limits: dict[str, int]) -> list[str]:
    """The verdict uses the limits file; say so when the server holds another value now."""
    from common.limits_sync import read_tag_limits

    server = read_tag_limits(client)
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

    from common.entry import fail
    from common.history import read_window, summarize
    from common.logs import configure_logging
    from common.timeline import render_html

    configure_logging()
    try:
        period = parse_since(since) if since is not None else (None if flow_run else timedelta(hours=2))
    except ValueError as exc:
        fail(str(exc))
    flow_run_ids = _flow_run_ids(flow_run) or None
    with cli_session() as (registry, api_url):
        from prefect.client.orchestration import get_client
        from rich.console import Console

        limits = registry.tag_limits()
        now = datetime.now(timezone.utc)
        with get_client(sync_client=True) as client:
            window = read_window(client, limits, now - period if period else None, flow_run_ids, now=now)
            notes = _drift_notes(client, limits)
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


def _register_repair() -> None:
    from common.repair import repair_command

    app.command("repair")(repair_command)


_register_repair()


def main() -> None:
    app()
