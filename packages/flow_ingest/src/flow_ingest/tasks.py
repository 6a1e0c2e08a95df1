"""Ingest's tasks. Every task that touches the shared database or the partner API comes
from a factory in ``common.factories``: the tag, retries and timeout are not this flow's choice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    api_task,
    copy_query_to_parquet,
    database_task,
    dataset_path,
    get_logger,
    get_settings,
    local_duckdb,
    local_task,
    parquet_rows,
    publish,
    remove_staging,
)
from flow_ingest import FLOW
from flow_ingest.catalog import ENRICHED_TABLES, enrich_query, extract_query

REFERENCE_DATASETS = ("fx_rates", "countries")
log = get_logger(FLOW)


@dataclass(frozen=True)
class StagedFile:
    """A dataset written to the run's staging folder, not yet published."""

    dataset: str
    path: str
    rows: int


@dataclass(frozen=True)
class LoadedDataset:
    dataset: str
    rows: int
    unmatched_rows: int = 0


@database_task(name="extract-table", flow=FLOW)
def extract_table(connection: Any, table: str, staging: str) -> StagedFile:
    """Stream one table of the shared database into a staged Parquet file (one connection)."""
    target = Path(staging) / f"{table}.parquet"
    rows = copy_query_to_parquet(connection, extract_query(table), target, get_settings().sqlalchemy_url)
    log.info(f"extracted {table}: {rows} rows", table=table, rows=rows)
    return StagedFile(table, str(target), rows)


@api_task(name="fetch-reference-index", flow=FLOW)
def fetch_reference_index(api: Any) -> dict[str, int]:
    """How many pages each reference dataset has at the partner API."""
    index = api.fetch_reference_index()
    return {name: int(meta["pages"]) for name, meta in index["datasets"].items() if name in REFERENCE_DATASETS}


@api_task(name="fetch-reference-page", flow=FLOW)
def fetch_reference_page(api: Any, dataset: str, page: int) -> list[dict[str, Any]]:
    """One page of reference rows (one request in flight = one ``api`` slot)."""
    rows = api.fetch_reference_page(dataset, page)["rows"]
    return list(rows)


@local_task(name="stage-reference")
def stage_reference(dataset: str, pages: list[list[dict[str, Any]]], staging: str) -> StagedFile:
    """Write the fetched pages of one reference dataset as one staged Parquet file."""
    rows = [row for page in pages for row in page]
    if not rows:
        raise ValueError(f"the partner API returned no rows for reference dataset {dataset!r}")
    raw = Path(staging) / f"ref_{dataset}.json"
    raw.write_text(json.dumps(rows), encoding="utf-8")
    target = Path(staging) / f"ref_{dataset}.parquet"
    with local_duckdb() as con:
        con.read_json(str(raw), format="array").write_parquet(str(target), compression="zstd")
    raw.unlink()
    return StagedFile(f"ref_{dataset}", str(target), len(rows))


_UNMATCHED_COLUMN = {"orders": "total_amount_eur", "payments": "amount_eur"}


@local_task(name="load-dataset")
def load_dataset(staged: StagedFile, reference: dict[str, StagedFile] | None = None) -> LoadedDataset:
    """Publish one dataset to the lake, enriched with reference data where the catalog says so.

    The enriched file is written beside the staged one and renamed into place: the lake
    holds the old dataset or the new one, never a half-written file.
    """
    lake = get_settings().lake_dir
    target = dataset_path(lake, staged.dataset)
    if staged.dataset not in ENRICHED_TABLES:
        publish(Path(staged.path), target)
        return LoadedDataset(staged.dataset, staged.rows)
    if reference is None:
        raise ValueError(f"{staged.dataset} needs reference data to be enriched")
    enriched = Path(staged.path).with_suffix(".enriched.parquet")
    params = {
        "staged": staged.path,
        "fx": reference["ref_fx_rates"].path,
        "countries": reference["ref_countries"].path,
    }
    sql = enrich_query(staged.dataset)
    used = {k: v for k, v in params.items() if f"${k}" in sql}
    with local_duckdb() as con:
        con.sql(sql, params=used).write_parquet(str(enriched), compression="zstd")
        column = _UNMATCHED_COLUMN[staged.dataset]
        unmatched = con.execute(
            f"SELECT count(*) FROM read_parquet(?) WHERE {column} IS NULL", [str(enriched)]
        ).fetchone()[0]  # type: ignore[index]
    rows = parquet_rows(enriched)
    if unmatched:
        log.warning(f"{staged.dataset}: {unmatched} rows had no exchange rate", rows=unmatched)
    publish(enriched, target)
    return LoadedDataset(staged.dataset, rows, int(unmatched))


@local_task(name="cleanup-staging")
def cleanup_staging(run_id: str) -> bool:
    """Remove the run's staging folder; runs only after every extract and load finished."""
    return remove_staging(get_settings().lake_dir, run_id)
