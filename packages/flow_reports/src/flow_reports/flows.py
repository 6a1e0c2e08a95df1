"""The reports flow: every report query at once, each finished report written and published.

Report queries hold ``database`` slots, publishing holds ``api`` slots: the same limits every
other flow uses. Reports that need the lake are skipped, with the reason, until ingest has
run, and always when the shared database is not DuckDB (they read Parquet with DuckDB).
Files are promoted only when every report succeeded, so a failed run never replaces the
last good reports.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from common import get_logger, get_settings, run_scope
from flow_reports import FLOW
from flow_reports.catalog import REPORTS, ReportName
from flow_reports.tasks import promote_reports, publish_report, run_report, skip_reason, summary_markdown, write_report

log = get_logger(FLOW)


@flow(name=FLOW)
def reports(names: list[ReportName] | None = None) -> dict[str, Any]:
    """Run ``names`` (default: every report); returns rows per report and what was skipped."""
    selected = list(names or REPORTS)
    settings = get_settings()
    with run_scope(FLOW, stage_in=settings.reports_dir) as run:
        skipped = {n: reason for n in selected if (reason := skip_reason(n, settings))}
        for name, reason in skipped.items():
            log.warning(f"skipping report {name}: {reason}", report=name)
        steps = {}
        for n in (n for n in selected if n not in skipped):
            query = run.submit(f"{n} run-report", run_report, n)
            steps[n] = (
                query,
                run.submit(f"{n} write-report", write_report, query, run.staging),
                run.submit(f"{n} publish-report", publish_report, query),
            )
        done = run.results(steps, noun="reports", kept="last good reports kept")
        promote_reports(run.staging, summary_markdown(list(done.values()), skipped, flow_run.name or run.run_id))
    return {"rows": {n: len(r.rows) for n, r in done.items()}, "skipped": skipped, "folder": str(settings.reports_dir)}
