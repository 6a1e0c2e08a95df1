"""The ingest flow: every table of the shared database into the lake, enriched by the API.

Submit everything at once and let the server's limits pace it: 20 extracts contend for the
``database`` slots (3 across all flows), the reference pages for the ``api`` slots. Wait for
every result, and only then clean up.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture, wait
from prefect.runtime import flow_run

from common.catalog import ENRICHED_TABLES, TABLES, check_table
from common.entry import require_limits
from common.lake import staging_dir
from common.logs import configure_logging, get_logger
from common.resources import get_registry
from common.settings import get_settings
from flow_ingest.tasks import (
    FLOW,
    REFERENCE_DATASETS,
    cleanup_staging,
    extract_table,
    fetch_reference_index,
    fetch_reference_page,
    load_dataset,
    stage_reference,
)

log = get_logger(FLOW)


class IngestFailed(RuntimeError):
    """Some datasets failed; the others were published, the failed ones kept their last good data."""


def _failure(future: PrefectFuture[Any]) -> str | None:
    state = future.state
    if state.is_completed():
        return None
    return state.message or state.name or "did not complete"


@flow(name=FLOW)
def ingest(tables: list[str] | None = None) -> dict[str, Any]:
    """Extract ``tables`` (default: all 20) into the lake; returns rows per dataset."""
    configure_logging()  # a served run is its own process: this is its entry point
    selected = [check_table(t) for t in (tables or list(TABLES))]
    require_limits(get_registry())
    run_id = str(flow_run.id or uuid4())
    staging = str(staging_dir(get_settings().lake_dir, run_id))

    extracts = {t: extract_table.submit(t, staging) for t in selected}

    reference: dict[str, PrefectFuture[Any]] = {}
    if any(t in ENRICHED_TABLES for t in selected):
        pages = fetch_reference_index.submit().result()
        missing = [d for d in REFERENCE_DATASETS if d not in pages]
        if missing:
            raise IngestFailed(f"the partner API has no reference dataset {missing[0]!r}")
        page_futures = {
            d: [fetch_reference_page.submit(d, p) for p in range(1, pages[d] + 1)] for d in REFERENCE_DATASETS
        }
        reference = {f"ref_{d}": stage_reference.submit(d, futs, staging) for d, futs in page_futures.items()}

    loads = {
        table: load_dataset.submit(extract, reference if table in ENRICHED_TABLES else None)
        for table, extract in extracts.items()
    }
    # The staged reference files feed the enrichment above: publish them only after it.
    enrichments = [allow_failure(loads[t]) for t in loads if t in ENRICHED_TABLES]
    for name, staged in reference.items():
        loads[name] = load_dataset.submit(staged, wait_for=enrichments)

    # Wait for every extract and load before cleaning up (the seed's "submit all, wait all").
    everything = [*extracts.values(), *loads.values()]
    wait(everything)
    cleanup_staging.submit(run_id, wait_for=[allow_failure(f) for f in everything]).result()

    failures = {name: reason for name, fut in loads.items() if (reason := _failure(fut))}
    summary = {name: fut.result().rows for name, fut in loads.items() if name not in failures}
    log.info(f"ingest published {len(summary)} datasets, {len(failures)} failed", rows=sum(summary.values()))
    if failures:
        detail = "; ".join(f"{name}: {reason}" for name, reason in sorted(failures.items()))
        raise IngestFailed(f"{len(failures)} of {len(loads)} datasets failed, last good data kept ({detail})")
    return {"rows": summary}
