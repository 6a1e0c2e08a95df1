"""Reports' tasks. The report queries hold ``database`` slots and publishing holds ``api``
slots, both through ``common``'s factories bound to this flow, so reports and every other
flow share the same limits."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from common import Connection, PartnerApi, Settings, flow_tasks, get_logger, get_settings, lake
from flow_reports import FLOW
from flow_reports.catalog import REPORTS, report_query

tasks = flow_tasks(FLOW)
log = get_logger(FLOW)


@dataclass(frozen=True)
class Report:
    """A finished report: small, bounded, ready to write and publish."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    generated_at: str


def missing_lake_tables(name: str, lake_dir: Path) -> list[str]:
    """Lake datasets a report needs that ingest has not published yet."""
    return [t for t in REPORTS[name].lake_tables if not lake.dataset_path(lake_dir, t).exists()]


def skip_reason(name: str, settings: Settings) -> str | None:
    """Why report ``name`` cannot run now, or None.

    Lake reports read Parquet files with DuckDB's ``read_parquet`` on the shared database's
    connection: a PostgreSQL shared database cannot run them, so they are skipped rather
    than failing the run (running them on a local DuckDB instead would take a ``database``
    slot for work that never touches the database, and on a machine that may not hold the
    lake).
    """
    backend = settings.database_backend
    if REPORTS[name].reads_lake and backend != "duckdb":
        return f"reads the lake with DuckDB's read_parquet, which the shared database ({backend}) cannot run"
    missing = missing_lake_tables(name, settings.lake_dir)
    if missing:
        return f"needs lake datasets {', '.join(missing)}: run ingest first"
    return None


def sort_out(names: list[str], settings: Settings) -> tuple[list[str], dict[str, str]]:
    """The reports that can run now, and the others with why not (each said once, as a warning)."""
    skipped = {n: reason for n in names if (reason := skip_reason(n, settings))}
    for name, reason in skipped.items():
        log.warning(f"skipping report {name}: {reason}", report=name)
    return [n for n in names if n not in skipped], skipped


def _plain(value: Any) -> Any:
    """JSON- and CSV-friendly values (Decimal, dates) without losing meaning."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


@tasks.database(name="run-report", task_run_name="run-report-{name}")
def run_report(connection: Connection, name: str) -> Report:
    """Run one report query on the shared database (and the lake, for lake reports)."""
    spec = REPORTS[name]
    result = connection.exec_driver_sql(report_query(name, get_settings().lake_dir))
    columns = list(result.keys())
    rows = [[_plain(v) for v in row] for row in result.fetchall()]
    log.info(f"report {name}: {len(rows)} rows", report=name, rows=len(rows))
    return Report(name, spec.title, columns, rows, datetime.now(UTC).isoformat())


@tasks.local(name="write-report", task_run_name="write-report-{report.name}")
def write_report(report: Report, staging: Path) -> Path:
    """Write the report as CSV into the run's staging folder (promoted only if all succeed)."""
    path = staging / f"{report.name}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(report.columns)
        writer.writerows(report.rows)
    return path


@tasks.api(name="publish-report", task_run_name="publish-report-{report.name}")
def publish_report(api: PartnerApi, report: Report) -> dict[str, Any]:
    """Send a finished report to the partner API (one request in flight = one ``api`` slot)."""
    payload = {
        "title": report.title,
        "columns": report.columns,
        "rows": report.rows,
        "generated_at": report.generated_at,
    }
    return dict(api.publish_report(report.name, payload))


def summary_markdown(reports: list[Report], skipped: dict[str, str], run_name: str) -> str:
    lines = [f"# Reports ({run_name})", ""]
    for report in reports:
        lines.append(f"## {report.title} (`{report.name}.csv`)")
        lines.append("")
        lines.append(f"{len(report.rows)} rows, generated {report.generated_at}.")
        if report.rows:
            lines.append("")
            lines.append("| " + " | ".join(report.columns) + " |")
            lines.append("|" + "---|" * len(report.columns))
            for row in report.rows[:5]:
                lines.append("| " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    for name, reason in sorted(skipped.items()):
        lines.append(f"- skipped `{name}`: {reason}")
    return "\n".join(lines).rstrip() + "\n"


def promote_reports(staging: Path, summary: str) -> list[str]:
    """Move every staged report, and the summary, into the reports folder (each file renamed
    atomically into place); called once every report of the run succeeded."""
    target_dir = get_settings().reports_dir
    (staging / "SUMMARY.md").write_text(summary, encoding="utf-8")
    promoted = sorted(p.name for p in staging.iterdir())
    for name in promoted:
        lake.publish(staging / name, target_dir / name)
    return promoted
