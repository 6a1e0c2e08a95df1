"""The reports flow: every report query at once, each finished report written and published.

Report queries hold ``database`` slots, publishing holds ``api`` slots: the same limits
ingest uses. Reports that need the lake are skipped, with the reason, until ingest has run,
and always when the shared database is not DuckDB (they read Parquet with DuckDB).
Files are promoted only when every report succeeded, so a failed run never replaces the
last good reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from common import (
    configure_logging,
    failed_calls,
    failure_reason,
    get_logger,
    get_registry,
    get_settings,
    name_failures,
    require_limits,
    settle,
    sweep_abandoned_staging,
)
from flow_reports import FLOW
from flow_reports.catalog import REPORTS, check_reports
from flow_reports.tasks import (
    cleanup_reports_staging,
    promote_reports,
    publish_report,
    run_report,
    skip_reason,
    summary_markdown,
    write_report,
)

log = get_logger(FLOW)


class ReportsFailed(RuntimeError):
    """Some reports failed; no report file was replaced."""


def _failure(steps: dict[str, PrefectFuture[Any]], engine_errors: dict[Any, str]) -> str | None:
    """The first step of one report that failed, named, with why (one line); None if all completed."""
    root = failed_calls(steps, engine_errors)
    if root:
        return root[0]
    return next((f"{label}: {r}" for label, f in steps.items() if (r := failure_reason(f, engine_errors))), None)


@flow(name=FLOW)
def reports(names: list[str] | None = None) -> dict[str, Any]:
    """Run ``names`` (default: every report); returns rows per report and what was skipped."""
    configure_logging()  # a served run is its own process: this is its entry point
    selected = check_reports(names or list(REPORTS))
    require_limits(get_registry())
    settings = get_settings()
    skipped = {}
    for name in selected:
        reason = skip_reason(name, settings)
        if reason:
            skipped[name] = reason
            log.warning(f"skipping report {name}: {reason}", report=name)
    runnable = [n for n in selected if n not in skipped]

    run_id = str(flow_run.id or uuid4())
    sweep_abandoned_staging(settings.reports_dir, keep=run_id)  # what cancelled or killed runs left
    staging = settings.reports_dir / ".staging" / run_id
    staging.mkdir(parents=True, exist_ok=True)

    queries = {n: run_report.submit(n) for n in runnable}
    writes = {n: write_report.submit(queries[n], str(staging)) for n in runnable}
    publishes = {n: publish_report.submit(queries[n]) for n in runnable}

    everything = [*queries.values(), *writes.values(), *publishes.values()]
    engine_errors = settle(everything)
    failures = {
        n: reason
        for n in runnable
        if (reason := _failure({"run-report": queries[n], "write-report": writes[n], "publish-report": publishes[n]},
                               engine_errors))
    }
    if not failures:
        finished = [queries[n].result() for n in runnable]
        promote_reports.submit(
            str(staging), summary_markdown(finished, skipped, flow_run.name or run_id)
        ).result()
    cleanup_reports_staging(str(staging))  # every report call is over, whatever its outcome

    if failures:
        named = sorted(failures.items())
        raise ReportsFailed(
            f"{len(failures)} of {len(runnable)} reports failed, last good reports kept "
            f"({', '.join(n for n, _ in named)}); failed calls: {name_failures([f'{n} {r}' for n, r in named])}"
        )
    rows = {n: len(queries[n].result().rows) for n in runnable}
    log.info(f"reports published {len(rows)}, skipped {len(skipped)}", reports=len(rows))
    return {"rows": rows, "skipped": skipped, "folder": str(Path(settings.reports_dir))}
