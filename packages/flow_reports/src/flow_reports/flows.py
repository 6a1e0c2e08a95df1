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

from common import get_settings, run_scope
from flow_reports import FLOW
from flow_reports.catalog import REPORTS, ReportName
from flow_reports.tasks import promote_reports, publish_report, run_report, sort_out, summary_markdown, write_report


@flow(name=FLOW)
def reports(names: list[ReportName] | None = None) -> dict[str, Any]:
    """Run ``names`` (default: every report); returns rows per report and what was skipped."""
    settings = get_settings()
    with run_scope(FLOW, stage_in=settings.reports_dir) as run:
        runnable, skipped = sort_out(names or list(REPORTS), settings)  # lake reports wait for ingest
        steps = {}
        for n in runnable:
            query = run.submit(f"{n} run-report", run_report, n)  # waits for a `database` slot
            write = run.submit(f"{n} write-report", write_report, query, run.staging)
            publish = run.submit(f"{n} publish-report", publish_report, query)  # waits for an `api` slot
            steps[n] = (query, write, publish)
        done = run.results(steps, noun="reports", kept="last good reports kept")  # waits for all of it
        promote_reports(run.staging, summary_markdown(list(done.values()), skipped, flow_run.name or run.run_id))
    return {"rows": {n: len(r.rows) for n, r in done.items()}, "skipped": skipped, "folder": str(settings.reports_dir)}
