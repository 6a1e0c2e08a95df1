"""Ingest's tasks. Every task that touches the shared database or the partner API comes from
``common``'s factories, bound to this flow once: the tags, retries and timeouts are not this
flow's choice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Connection, PartnerApi, flow_tasks, get_logger, get_settings, lake
from flow_ingest import FLOW
from flow_ingest.catalog import ENRICHED_TABLES, enrich_query, extract_query

REFERENCE_DATASETS = ("fx_rates", "countries")
tasks = flow_tasks(FLOW)  # FLOW = "ingest": every resource task of the package carries its cap
log = get_logger(FLOW)


@dataclass(frozen=True)
class StagedFile:
    """A dataset written to the run's staging folder, not yet published."""

    dataset: str
    path: Path
    rows: int


@dataclass(frozen=True)
class LoadedDataset:
    dataset: str
    rows: int
    unmatched_rows: int = 0


@tasks.database(name="extract-table", task_run_name="extract-table-{table}")
def extract_table(connection: Connection, table: str, staging: Path) -> StagedFile:
    """Stream one table of the shared database into a staged Parquet file (one connection)."""
    target = staging / f"{table}.parquet"
    rows = lake.copy_query_to_parquet(connection, extract_query(table), target, get_settings().sqlalchemy_url)
    log.info(f"extracted {table}: {rows} rows", table=table, rows=rows)
    return StagedFile(table, target, rows)


@tasks.api(name="fetch-reference-index")
def fetch_reference_index(api: PartnerApi) -> dict[str, int]:
    """How many pages each reference dataset has at the partner API."""
    index = api.fetch_reference_index()
    return {name: int(meta["pages"]) for name, meta in index["datasets"].items() if name in REFERENCE_DATASETS}


@tasks.api(name="fetch-reference-page", task_run_name="fetch-reference-page-{dataset}-{page}")
def fetch_reference_page(api: PartnerApi, dataset: str, page: int) -> list[dict[str, Any]]:
    """One page of reference rows (one request in flight = one ``api`` slot)."""
    return list(api.fetch_reference_page(dataset, page)["rows"])


@tasks.local(name="stage-reference", task_run_name="stage-reference-{dataset}")
def stage_reference(dataset: str, pages: list[list[dict[str, Any]]], staging: Path) -> StagedFile:
    """Write the fetched pages of one reference dataset as one staged Parquet file."""
    rows = [row for page in pages for row in page]
    if not rows:
        raise ValueError(f"the partner API returned no rows for reference dataset {dataset!r}")
    raw = staging / f"ref_{dataset}.json"
    raw.write_text(json.dumps(rows), encoding="utf-8")
    target = staging / f"ref_{dataset}.parquet"
    with lake.local_duckdb() as con:
        con.read_json(str(raw), format="array").write_parquet(str(target), compression="zstd")
    raw.unlink()
    return StagedFile(f"ref_{dataset}", target, len(rows))


_UNMATCHED_COLUMN = {"orders": "total_amount_eur", "payments": "amount_eur"}


@tasks.local(name="load-dataset", task_run_name="load-dataset-{staged.dataset}")
def load_dataset(staged: StagedFile, reference: dict[str, StagedFile] | None = None) -> LoadedDataset:
    """Publish one dataset to the lake, enriched with reference data where the catalog says so.

    The enriched file is written beside the staged one and renamed into place: the lake holds
    the old dataset or the new one, never a half-written file. Reference datasets stay staged
    when published: the enrichments read them too.
    """
    target = lake.dataset_path(get_settings().lake_dir, staged.dataset)
    if staged.dataset not in ENRICHED_TABLES:
        lake.publish(staged.path, target, keep=staged.dataset.startswith("ref_"))
        return LoadedDataset(staged.dataset, staged.rows)
    if reference is None:
        raise ValueError(f"{staged.dataset} needs reference data to be enriched")
    enriched = staged.path.with_suffix(".enriched.parquet")
    params = {
        "staged": str(staged.path),
        "fx": str(reference["fx_rates"].path),
        "countries": str(reference["countries"].path),
    }
    sql = enrich_query(staged.dataset)
    with lake.local_duckdb() as con:
        con.sql(sql, params={k: v for k, v in params.items() if f"${k}" in sql}).write_parquet(
            str(enriched), compression="zstd"
        )
        column = _UNMATCHED_COLUMN[staged.dataset]
        row = con.execute(f"SELECT count(*) FROM read_parquet(?) WHERE {column} IS NULL", [str(enriched)]).fetchone()
    unmatched = int(row[0]) if row else 0
    rows = lake.parquet_rows(enriched)
    if unmatched:
        log.warning(f"{staged.dataset}: {unmatched} rows had no exchange rate", rows=unmatched)
    lake.publish(enriched, target)
    return LoadedDataset(staged.dataset, rows, unmatched)
