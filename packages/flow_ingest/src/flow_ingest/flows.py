"""The ingest flow: every table of the shared database into the lake, enriched by the API.

Submit everything at once and let the server's limits pace it: the extracts contend for the
``database`` slots (3 across every flow), the reference pages for the ``api`` slots. Wait for
every result, and only then clean up.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from common import TABLES, Call, RunScope, Table, run_scope
from flow_ingest import FLOW
from flow_ingest.catalog import ENRICHED_TABLES
from flow_ingest.tasks import (
    REFERENCE_DATASETS,
    StagedFile,
    extract_table,
    fetch_reference_index,
    fetch_reference_page,
    load_dataset,
    stage_reference,
)


@flow(name=FLOW)
def ingest(tables: list[Table] | None = None) -> dict[str, Any]:
    """Extract ``tables`` (default: all 20) into the lake; returns rows per dataset."""
    selected = list(tables or TABLES)
    enriched = [t for t in selected if t in ENRICHED_TABLES]
    with run_scope(FLOW) as run:
        extracts = {t: run.submit(f"extract-table {t}", extract_table, t, run.staging) for t in selected}
        reference = submit_reference(run) if enriched else {}
        loads: dict[str, Call[Any] | None] = {
            t: run.submit(f"load-dataset {t}", load_dataset, e) for t, e in extracts.items() if t not in enriched
        }
        # Enriched tables need the reference data; without it (None) they keep their last good data.
        for t in enriched:
            loads[t] = run.submit(f"load-dataset {t}", load_dataset, extracts[t], reference) if reference else None
        for d in REFERENCE_DATASETS if enriched else ():
            loads[f"ref_{d}"] = run.submit(f"load-dataset ref_{d}", load_dataset, reference[d]) if reference else None
        done = run.results(loads, noun="datasets", kept="last good data kept")
    return {"rows": {name: loaded.rows for name, loaded in done.items()}}


def submit_reference(run: RunScope) -> dict[str, Call[StagedFile]]:
    """The reference datasets, staged: ask the partner how many pages each has (the extracts
    run meanwhile), then fetch every page at once. Empty when the index failed or lacks a
    dataset (the enriched tables then keep their last good data)."""
    pages = run.value(run.submit("fetch-reference-index", fetch_reference_index))
    if pages is None:
        return {}
    if missing := [d for d in REFERENCE_DATASETS if d not in pages]:
        run.note(f"the partner API has no reference dataset {missing[0]!r}")
        return {}
    return {
        d: run.submit(
            f"stage-reference {d}",
            stage_reference,
            d,
            [
                run.submit(f"fetch-reference-page {d} page {p}", fetch_reference_page, d, p)
                for p in range(1, pages[d] + 1)
            ],
            run.staging,
        )
        for d in REFERENCE_DATASETS
    }
