"""How ``slots`` and ``slots history`` look: rich tables for a terminal, JSON for scripts."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slot_tools.model import Snapshot
from slot_tools.rules import findings, limit_findings

if TYPE_CHECKING:
    from slot_tools.history import HistoryReport


def as_dict(snapshot: Snapshot) -> dict[str, Any]:
    """``slots --json``: the reading with every finding, per limit and in all (stable keys)."""
    return {
        "taken_at": snapshot.taken_at,
        "api_url": snapshot.api_url,
        "limits": [
            {**asdict(v), "anomalies": [f.message for f in limit_findings(v)], "per_flow": v.per_flow}
            for v in snapshot.limits
        ],
        "anomalies": [f.message for f in findings(snapshot)],
    }


def render(snapshot: Snapshot, max_waiters: int = 10) -> Any:
    """Rich renderable: one table per limit (longest waiters first), then anomalies."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = []
    for view in snapshot.limits:
        total = view.server_slots if view.server_slots is not None else "no limit"
        used = str(view.used) if view.consistent else f"{view.used}->{view.used_after}"
        title = f"{view.limit}  {used}/{total} slots used  ({view.description})"
        if not view.consistent:
            title += "  [the counter changed while the holders were read]"
        table = Table(title=title, title_justify="left", expand=False)
        for col in ("", "flow", "deployment", "flow run", "task run", "for"):
            table.add_column(col)
        for label, runs in (("holds", view.holders), ("waits", view.waiters[:max_waiters])):
            for r in runs:
                table.add_row(
                    label,
                    r.flow or "?",
                    r.deployment or "-",
                    r.flow_run or "?",
                    r.task_run or r.task_run_id,
                    f"{r.seconds:.1f}s" if r.seconds is not None else "?",
                )
        if len(view.waiters) > max_waiters:
            table.add_row("waits", f"+{len(view.waiters) - max_waiters} more", "", "", "", "")
        if not view.holders and not view.waiters:
            table.add_row("idle", "", "", "", "", "")
        parts.append(table)
        totals = ", ".join(f"{f}: {c['holding']} holding, {c['waiting']} waiting" for f, c in view.per_flow.items())
        extra = f"  ({view.blocked_upstream} more wait for upstream tasks)" if view.blocked_upstream else ""
        if totals or extra:
            parts.append(Text(f"  per flow: {totals or '-'}{extra}"))
    anomalies = [f.message for f in findings(snapshot)]
    if anomalies:
        parts.append(Text("anomalies:", style="bold red"))
        parts.extend(Text(f"  ! {a}", style="red") for a in anomalies)
    else:
        parts.append(Text("no anomalies", style="green"))
    return Group(*parts)


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone().strftime("%H:%M:%S")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def render_history(report: HistoryReport, notes: list[str]) -> Any:
    """Rich renderable: one row per limit, then one row per limit and flow, then the verdict."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    start, end = report.window_start.astimezone(), report.window_end.astimezone()
    window = f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S %z} ({report.window_seconds:.0f} s)"
    # Two-line headers keep both tables inside 80 columns (the width of a pipe or CI log).
    limits = Table(title=f"slot history  {window}", title_justify="left")
    for col, justify in (
        ("limit", "left"),
        ("task\nruns", "right"),
        ("peak", "right"),
        ("peak at", "left"),
        ("exceeded", "left"),
        ("utilization", "right"),
        ("flows\nshared", "right"),
    ):
        limits.add_column(col, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    flows = Table(title="per flow", title_justify="left")
    for col, justify in (
        ("limit", "left"),
        ("flow", "left"),
        ("task\nruns", "right"),
        ("slot-\nseconds", "right"),
        ("wait\nmedian", "right"),
        ("wait\np95", "right"),
    ):
        flows.add_column(col, justify=justify, no_wrap=justify == "right")  # type: ignore[arg-type]
    for t in report.tags:
        peak = f"{t.peak}/{t.limit}" if t.live_peak == t.peak else f"{t.peak}/{t.limit} ({t.live_peak} live)"
        limits.add_row(
            f"tag:{t.tag}",
            str(t.task_runs),
            peak,
            _clock(t.peak_at),
            Text("YES", style="bold red") if t.exceeded else Text("no", style="green"),
            f"{t.utilization:.1%}",
            f"{t.shared_seconds:.1f}s",
        )
        for f in t.flows:
            flows.add_row(
                f"tag:{t.tag}",
                f.flow,
                str(f.task_runs),
                f"{f.slot_seconds:.2f}",
                _secs(f.wait_median),
                _secs(f.wait_p95),
            )
    if not any(t.flows for t in report.tags):
        flows.add_row("-", "no task runs with these tags in the window", "", "", "", "")
    shared = Text("  flows shared: seconds during which more than one flow held slots of the limit")
    parts: list[Any] = [limits, shared, flows]
    for t in report.tags:
        if t.lost_holders:
            parts.append(
                Text(
                    f"tag:{t.tag}: above the limit only with holders that had lost their slots "
                    "(each stopped once it knew; live leases never exceeded it):",
                    style="yellow",
                )
            )
            parts.extend(Text(f"  {line}", style="yellow") for line in t.lost_holders)
    parts.extend(Text(f"note: {n}", style="yellow") for n in notes)
    exceeded = [f"tag:{t.tag}" for t in report.tags if t.exceeded]
    parts.append(
        Text(f"EXCEEDED: {', '.join(exceeded)}", style="bold red")
        if exceeded
        else Text("every limit held", style="green")
    )
    return Group(*parts)
