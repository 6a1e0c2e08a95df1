"""The ingest flow: every table of the shared database into the lake, enriched by the API.

Submit everything at once and let the server's limits pace it: 20 extracts contend for the
``database`` slots (3 across all flows), the reference pages for the ``api`` slots. Wait for
every result, and only then clean up.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

from prefect import allow_failure, flow
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from common import (
    TABLES,
    check_table,
    configure_logging,
    failed_calls,
    get_logger,
    get_registry,
    get_settings,
    name_failures,
    require_limits,
    settle,
    staging_dir,
    sweep_abandoned_staging,
)
from flow_ingest import FLOW
from flow_ingest.catalog import ENRICHED_TABLES
from flow_ingest.tasks import (
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


def failure_summary(
    datasets: list[str], total: int, calls: dict[str, PrefectFuture[Any]], causes: list[str],
    engine_errors: dict[Any, str] | None = None,
) -> str:
    """One line: which datasets kept their last good data, and which calls failed and why
    (root causes only, at most a few of them, so the line stays readable)."""
    failed = failed_calls(calls, engine_errors)
    text = f"{len(datasets)} of {total} datasets failed, last good data kept ({', '.join(sorted(datasets))})"
    if failed:
        text += "; failed calls: " + name_failures(failed)
    return "; ".join([text, *causes])


@flow(name=FLOW)
def ingest(tables: list[str] | None = None) -> dict[str, Any]:
    """Extract ``tables`` (default: all 20) into the lake; returns rows per dataset."""
    configure_logging()  # a served run is its own process: this is its entry point
    selected = [check_table(t) for t in (tables or list(TABLES))]
    require_limits(get_registry())
    run_id = str(flow_run.id or uuid4())
    sweep_abandoned_staging(get_settings().lake_dir, keep=run_id)  # what cancelled or killed runs left
    staging = str(staging_dir(get_settings().lake_dir, run_id))

    extracts = {t: extract_table.submit(t, staging) for t in selected}
    # Every submitted call, labelled for the failure message (which call failed, and why).
    calls: dict[str, PrefectFuture[Any]] = {f"extract-table {t}": f for t, f in extracts.items()}
    causes: list[str] = []  # failures that are no task run's (the partner lacks a dataset)

    engine_errors: dict[Any, str] = {}  # task runs whose engine raised (see common.outcomes.settle)
    needs_reference = any(t in ENRICHED_TABLES for t in selected)
    reference: dict[str, PrefectFuture[Any]] = {}
    if needs_reference:
        # A failed index must not abort the flow here: the other tables still load and the
        # staging folder is still cleaned up; the enriched tables keep their last good data.
        index = fetch_reference_index.submit()
        calls["fetch-reference-index"] = index
        engine_errors = settle([index])
        pages = index.result() if not engine_errors and index.state.is_completed() else None
        missing = [d for d in REFERENCE_DATASETS if pages is not None and d not in pages]
        if missing:
            causes.append(f"the partner API has no reference dataset {missing[0]!r}")
        elif pages is not None:
            page_futures = {
                d: [fetch_reference_page.submit(d, p) for p in range(1, pages[d] + 1)] for d in REFERENCE_DATASETS
            }
            for d, futs in page_futures.items():
                calls.update({f"fetch-reference-page {d} page {p}": f for p, f in enumerate(futs, 1)})
            reference = {f"ref_{d}": stage_reference.submit(d, futs, staging) for d, futs in page_futures.items()}
            calls.update({f"stage-reference {d}": f for d, f in reference.items()})

    loads = {
        table: load_dataset.submit(extract, reference if table in ENRICHED_TABLES else None)
        for table, extract in extracts.items()
        if reference or table not in ENRICHED_TABLES
    }
    # The staged reference files feed the enrichment above: publish them only after it.
    enrichments = [allow_failure(loads[t]) for t in loads if t in ENRICHED_TABLES]
    for name, staged in reference.items():
        loads[name] = load_dataset.submit(staged, wait_for=enrichments)
    calls.update({f"load-dataset {name}": f for name, f in loads.items()})

    # Wait for every extract and load before cleaning up (the seed's "submit all, wait all").
    everything = [*extracts.values(), *loads.values()]
    engine_errors.update(settle(everything))
    cleanup_staging(run_id)  # every extract and load is over, whatever its outcome

    not_loaded = [t for t in selected if t not in loads]  # enriched, but no reference data
    if needs_reference and not reference:
        not_loaded += [f"ref_{d}" for d in REFERENCE_DATASETS]
    failures = [name for name, fut in loads.items() if not fut.state.is_completed()] + not_loaded
    summary = {name: fut.result().rows for name, fut in loads.items() if name not in failures}
    log.info(f"ingest published {len(summary)} datasets, {len(failures)} failed", rows=sum(summary.values()))
    if failures:
        raise IngestFailed(failure_summary(failures, len(loads) + len(not_loaded), calls, causes, engine_errors))
    return {"rows": summary}
