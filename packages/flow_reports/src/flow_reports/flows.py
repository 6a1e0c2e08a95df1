"""The reports flow: every report query at once, each finished report written and published.

Report queries hold ``database`` slots, publishing holds ``api`` slots: the same limits
ingest uses. Reports that need the lake are skipped, with the reason, until ingest has run.
Files are promoted only when every report succeeded, so a failed run never replaces the
last good reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import uuid4

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run

from common.catalog import REPORTS
from common.entry import require_limits
from common.logs import configure_logging, get_logger
from common.resources import get_registry
from common.settings import get_settings
from flow_reports.tasks import (
    FLOW,
    cleanup_reports_staging,
    missing_lake_tables,
    promote_reports,
    publish_report,
    run_report,
    summary_markdown,
    write_report,
)

log = get_logger(FLOW)


class ReportsFailed(RuntimeError):
    """Some reports failed; no report file was replaced."""


def _failure(future: PrefectFuture[Any]) -> str | None:
    state = future.state
    return None if state.is_completed() else (state.message or state.name or "did not complete")


def _check_names(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in REPORTS]
    if unknown:
        raise ValueError(f"unknown report {unknown[0]!r}: choose from {', '.join(REPORTS)}")
    return names


@flow(name=FLOW)
def reports(names: list[str] | None = None) -> dict[str, Any]:
    """Run ``names`` (default: every report); returns rows per report and what was skipped."""
    configure_logging()  # a served run is its own process: this is its entry point
    selected = _check_names(names or list(REPORTS))
    require_limits(get_registry())
    settings = get_settings()
    skipped = {}
    for name in selected:
        missing = missing_lake_tables(name, settings.lake_dir)
        if missing:
            skipped[name] = f"needs lake datasets {', '.join(missing)}: run ingest first"
            log.warning(f"skipping report {name}: {skipped[name]}", report=name)
    runnable = [n for n in selected if n not in skipped]

    run_id = str(flow_run.id or uuid4())
    staging = settings.reports_dir / ".staging" / run_id
    staging.mkdir(parents=True, exist_ok=True)

    queries = {n: run_report.submit(n) for n in runnable}
    writes = {n: write_report.submit(queries[n], str(staging)) for n in runnable}
    publishes = {n: publish_report.submit(queries[n]) for n in runnable}

    everything = [*queries.values(), *writes.values(), *publishes.values()]
    wait(everything)
    failures = {
        n: reason
        for n in runnable
        for reason in [_failure(queries[n]) or _failure(writes[n]) or _failure(publishes[n])]
        if reason
    }
    if not failures:
        finished = [queries[n].result() for n in runnable]
        promote_reports.submit(
            str(staging), summary_markdown(finished, skipped, flow_run.name or run_id)
        ).result()
    cleanup_reports_staging.submit(str(staging), wait_for=[allow_failure(f) for f in everything]).result()

    if failures:
        detail = "; ".join(f"{n}: {r}" for n, r in sorted(failures.items()))
        raise ReportsFailed(f"{len(failures)} of {len(runnable)} reports failed, last good reports kept ({detail})")
    rows = {n: len(queries[n].result().rows) for n in runnable}
    log.info(f"reports published {len(rows)}, skipped {len(skipped)}", reports=len(rows))
    return {"rows": rows, "skipped": skipped, "folder": str(Path(settings.reports_dir))}
