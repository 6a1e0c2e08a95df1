"""The history of the shared slots as one self-contained HTML page.

One timeline per limit, one horizontal lane per slot, one bar per task run that held a
slot, coloured by flow: two flows interleaving on the same lanes, and never more bars at
once than lanes, is the picture of a limit holding across flows. A hold that found every
lane busy lands on a red overflow lane, so a breach cannot hide.

Inline CSS and inline SVG only (no script, no external asset, no URL at all), so the page
can be mailed, attached to a ticket or opened on a machine with no network. Hover titles
are SVG ``<title>`` elements. Every text from the records goes through ``html.escape``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from slot_tools.history import HistoryReport, Interval, TagReport

# Tableau 10 without its red (it marks overflow lanes and breaches), pink and grey (too close
# to red and to the unknown flow). The order is arbitrary; this one gives the two reference
# flows the most distinct pair: ingest blue, reports orange.
PALETTE = ("#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#4e79a7")
UNKNOWN_COLOUR = "#8c8c8c"

WIDTH = 1300
GUTTER = 78  # lane labels
RIGHT = 36  # room for a tick label centred on the last moment
LANE_H = 24
AXIS_H = 30
TOP = 6
PLOT_W = WIDTH - GUTTER - RIGHT
NICE_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def flow_colours(flows: Iterable[str]) -> dict[str, str]:
    """A colour per flow from a hash of its name, so a flow keeps its colour across pages;
    a clash on this page moves the later name (in name order) to the next free colour."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for flow in sorted(set(flows)):
        if flow == "?":
            out[flow] = UNKNOWN_COLOUR
            continue
        start = int(hashlib.sha256(flow.encode()).hexdigest(), 16) % len(PALETTE)
        for step in range(len(PALETTE)):
            colour = PALETTE[(start + step) % len(PALETTE)]
            if colour not in used or len(used) >= len(PALETTE):
                break
        out[flow] = colour
        used.add(colour)
    return out


def _local(moment: datetime) -> datetime:
    return moment.astimezone()


def _clock(moment: datetime, fraction: bool = True) -> str:
    text = _local(moment).strftime("%H:%M:%S.%f")
    return text[:-3] if fraction else text[:8]


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(value, 60)
    return f"{int(minutes)} min {seconds:.0f} s"


@dataclass(frozen=True)
class _Scale:
    """Maps moments of the window to x positions of the plot."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 1e-3)

    def x(self, moment: datetime) -> float:
        offset = (moment - self.start).total_seconds() / self.seconds
        return GUTTER + PLOT_W * min(1.0, max(0.0, offset))

    def ticks(self, target: int = 10) -> list[datetime]:
        """Round moments (multiples of a nice step since the epoch) inside the window."""
        step = next((s for s in NICE_STEPS if self.seconds / s <= target), NICE_STEPS[-1])
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        first = -(-(self.start - epoch).total_seconds() // step) * step
        out = []
        moment = epoch + timedelta(seconds=first)
        while moment <= self.end:
            out.append(moment)
            moment += timedelta(seconds=step)
        return out


def _bar_title(iv: Interval, window_end: datetime) -> str:
    end = iv.end or window_end
    lines = [
        iv.task_run,
        f"flow: {iv.flow}",
        f"flow run: {iv.flow_run_id}",
        f"start: {_local(iv.start).strftime('%Y-%m-%d')} {_clock(iv.start)}",
        f"duration: {_seconds((end - iv.start).total_seconds())}" + ("" if iv.end else " (still running)"),
        f"waited (Pending to Running): {_seconds(iv.waited)}",
        f"state: {iv.state}",
    ]
    return "\n".join(lines)


def _lane_rows(report: TagReport, lanes: int) -> list[str]:
    parts = []
    for lane in range(lanes):
        y = TOP + lane * LANE_H
        over = lane >= report.limit
        label = f"overflow {lane - report.limit + 1}" if over else f"slot {lane + 1}"
        fill = "#fde0e0" if over else ("#f4f5f7" if lane % 2 else "#eceef1")
        parts.append(
            f'<rect class="{"lane overflow" if over else "lane"}" data-lane="{lane}" x="{GUTTER}" y="{y}" '
            f'width="{PLOT_W}" height="{LANE_H - 2}" fill="{fill}"/>'
        )
        parts.append(
            f'<text x="{GUTTER - 8}" y="{y + LANE_H / 2 + 3:.1f}" text-anchor="end" '
            f'class="{"lane-label over" if over else "lane-label"}">{escape(label)}</text>'
        )
    return parts


def _axis(scale: _Scale, lanes: int) -> list[str]:
    bottom = TOP + lanes * LANE_H
    fraction = scale.seconds <= 5
    parts = [f'<line x1="{GUTTER}" y1="{bottom}" x2="{GUTTER + PLOT_W}" y2="{bottom}" class="axis"/>']
    for tick in scale.ticks():
        x = scale.x(tick)
        label = _clock(tick, fraction=fraction)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom + 4}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle" class="tick">{escape(label)}</text>')
    return parts


def _bars(report: TagReport, intervals: list[Interval], scale: _Scale, colours: dict[str, str]) -> list[str]:
    parts = []
    for iv in sorted(intervals, key=lambda i: i.start):
        lane = report.lanes.get(iv.task_run_id)
        if lane is None:
            continue
        y = TOP + lane * LANE_H
        colour = colours.get(iv.flow, UNKNOWN_COLOUR)
        x0 = scale.x(iv.start)
        x1 = scale.x(iv.end or scale.end)
        group = [f'<g class="run"><title>{escape(_bar_title(iv, scale.end))}</title>']
        if iv.pending_at is not None and iv.pending_at < iv.start:
            xp = scale.x(iv.pending_at)
            group.append(
                f'<rect class="wait" x="{xp:.1f}" y="{y + 2}" width="{max(x0 - xp, 0.5):.1f}" height="3" '
                f'fill="{colour}" fill-opacity="0.45"/>'
            )
        group.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y + 7}" width="{max(x1 - x0, 1.5):.1f}" height="{LANE_H - 11}" '
            f'fill="{colour}" stroke="#ffffff" stroke-width="0.5"/>'
        )
        group.append("</g>")
        parts.append("".join(group))
    return parts


def render_svg(report: TagReport, intervals: list[Interval], scale: _Scale, colours: dict[str, str]) -> str:
    """One limit's timeline: lanes, time axis, then waits and bars on top."""
    lanes = report.lane_count
    height = TOP + lanes * LANE_H + AXIS_H
    mine = [iv for iv in intervals if iv.tag == report.tag]
    body = [*_lane_rows(report, lanes), *_axis(scale, lanes), *_bars(report, mine, scale, colours)]
    if not mine:
        body.append(
            f'<text x="{GUTTER + PLOT_W / 2}" y="{TOP + lanes * LANE_H / 2 + 4:.1f}" text-anchor="middle" '
            f'class="empty">no task run held a slot in this window</text>'
        )
    label = escape(f"timeline of tag:{report.tag}, {report.limit} slots")
    return (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{label}" '
        f'preserveAspectRatio="xMinYMin meet">' + "".join(body) + "</svg>"
    )


def _swatch(colour: str) -> str:
    return f'<span class="swatch" style="background:{colour}"></span>'


def _flow_table(report: TagReport, colours: dict[str, str]) -> str:
    rows = []
    for f in report.flows:
        share = f.slot_seconds / report.slot_seconds if report.slot_seconds else 0.0
        rows.append(
            f"<tr><td>{_swatch(colours.get(f.flow, UNKNOWN_COLOUR))}{escape(f.flow)}</td>"
            f'<td class="num">{f.task_runs}</td><td class="num">{f.slot_seconds:.2f}</td>'
            f'<td class="num">{share:.0%}</td><td class="num">{escape(_seconds(f.wait_median))}</td>'
            f'<td class="num">{escape(_seconds(f.wait_p95))}</td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="6" class="muted">no task runs</td></tr>')
    return (
        "<table><thead><tr><th>flow</th><th>task runs</th><th>slot-seconds</th><th>share</th>"
        "<th>wait median</th><th>wait p95</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _section(report: TagReport, intervals: list[Interval], scale: _Scale, colours: dict[str, str]) -> str:
    verdict = '<span class="badge bad">EXCEEDED</span>' if report.exceeded else '<span class="badge ok">held</span>'
    when = f" at {escape(_clock(report.peak_at))}" if report.peak_at else ""
    facts = [
        f"peak <b>{report.peak} / {report.limit}</b>{when}",
        f"utilization <b>{report.utilization:.1%}</b>",
        f"{report.task_runs} task runs",
        f"{report.slot_seconds:.1f} slot-seconds",
        f"more than one flow held slots for {report.shared_seconds:.1f} s",
    ]
    return (
        f"<section><h2>tag:{escape(report.tag)} {verdict}</h2>"
        f'<p class="facts">{" &middot; ".join(facts)}</p>'
        f"{render_svg(report, intervals, scale, colours)}{_flow_table(report, colours)}</section>"
    )


CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 4px}
section{margin:22px 0 30px}
.muted,.facts{color:#57606a}.facts{margin:0 0 6px}
.badge{display:inline-block;font-size:12px;padding:1px 8px;border-radius:10px;margin-left:6px;vertical-align:2px}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26;font-weight:600}
.legend span.item{margin-right:18px;white-space:nowrap}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.waitkey{display:inline-block;width:22px;height:3px;background:#57606a;opacity:.45;margin-right:6px;vertical-align:3px}
svg.timeline{display:block;max-width:1300px;margin:4px 0 8px}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#57606a}
svg text.lane-label.over{fill:#d62728;font-weight:600}
svg text.empty{fill:#8c959f;font-size:13px}
svg .grid{stroke:#d0d7de;stroke-width:1;stroke-dasharray:2 3}
svg .axis{stroke:#8c959f;stroke-width:1}
svg g.run:hover rect.bar{stroke:#1f2328;stroke-width:1.5}
table{border-collapse:collapse;margin-top:4px}
th,td{padding:3px 12px;border-bottom:1px solid #eaeef2;text-align:left}
th{font-weight:600;color:#57606a;font-size:12px}td.num{text-align:right;font-variant-numeric:tabular-nums}
"""


def render_html(report: HistoryReport, intervals: Iterable[Interval], title: str = "Shared slots: history") -> str:
    """The whole page: verdict, window, flow legend, then one section per limit."""
    everything = list(intervals)
    scale = _Scale(report.window_start, report.window_end)
    colours = flow_colours(iv.flow for iv in everything if any(iv.task_run_id in t.lanes for t in report.tags))
    start, end = _local(report.window_start), _local(report.window_end)
    offset = start.strftime("%z")
    verdict = (
        '<span class="badge bad">a limit was EXCEEDED</span>'
        if report.exceeded
        else '<span class="badge ok">every limit held</span>'
    )
    legend = "".join(f'<span class="item">{_swatch(c)}{escape(f)}</span>' for f, c in colours.items())
    legend += (
        '<span class="item"><span class="waitkey"></span>Pending before Running '
        "(waiting for a slot, or for an upstream task)</span>"
    )
    legend += f'<span class="item">{_swatch("#fde0e0")}overflow lane: more holders than slots</span>'
    window = (
        f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} (UTC{offset[:3]}:{offset[3:]}), {_seconds(report.window_seconds)}"
    )
    sections = "".join(_section(t, everything, scale, colours) for t in report.tags)
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style></head><body>"
        f"<h1>{escape(title)} {verdict}</h1>"
        f'<p class="muted">From the Prefect server\'s task-run records: each bar is one task run holding one '
        f"slot, from Running to its final state; the thin line before it, in the same colour, is the time it "
        f"was Pending. Window {escape(window)}.</p>"
        f'<p class="legend">{legend}</p>'
        f"{sections}</body></html>\n"
    )
