"""The lake: one Parquet file per dataset, replaced atomically.

Writers always write beside the target (a staging folder on the same filesystem) and then
``os.replace`` the finished file into place: a reader sees the old dataset or the new one,
never half of one; a run that fails before the rename leaves the last good data untouched;
re-running writes the same content again instead of appending (idempotent).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb
from sqlalchemy.engine import Connection

from common.db import is_duckdb, sql_literal
from common.duckdb_memory import local_duckdb
from common.logs import get_logger

__all__ = [
    "copy_query_to_parquet",
    "csv_to_parquet",
    "dataset_path",
    "local_duckdb",
    "parquet_rows",
    "publish",
    "remove_staging",
    "staging_dir",
    "sweep_abandoned_staging",
    "write_batches_to_parquet",
]

_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BATCH_ROWS = 50_000


def dataset_path(lake_dir: Path, dataset: str) -> Path:
    """The published file of a dataset; dataset names are identifiers, checked here."""
    if not _DATASET.match(dataset):
        raise ValueError(f"invalid dataset name {dataset!r}: use lowercase letters, digits and '_'")
    return lake_dir / f"{dataset}.parquet"


def staging_dir(lake_dir: Path, run_id: str) -> Path:
    """A run's private staging folder inside the lake (same filesystem, so rename is atomic)."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", run_id):
        raise ValueError(f"invalid run id {run_id!r}")
    path = lake_dir / ".staging" / run_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def publish(staged: Path, target: Path, *, keep: bool = False) -> None:
    """Atomically replace ``target`` with ``staged`` (fsync first, so a crash keeps one whole
    file). ``keep``: the staged file stays for other work of the run that still reads it (a
    hard link to it is renamed into place)."""
    with open(staged, "rb") as fh:
        os.fsync(fh.fileno())
    target.parent.mkdir(parents=True, exist_ok=True)
    if keep:
        linked = staged.with_name(staged.name + ".published")
        linked.unlink(missing_ok=True)
        os.link(staged, linked)
        staged = linked
    os.replace(staged, target)


def remove_staging(lake_dir: Path, run_id: str) -> bool:
    """Delete a run's staging folder; True when something was removed."""
    path = lake_dir / ".staging" / run_id
    if path.exists():
        shutil.rmtree(path)
        return True
    return False


def sweep_abandoned_staging(root: Path, keep: str) -> list[str]:
    """Remove the staging folders under ``root`` whose flow run the Prefect server reports as
    over (a cancelled or killed run never reaches its own cleanup); returns their run ids.

    Folders of runs still going, of ``keep`` (the caller's run) and of runs this server does
    not know stay: only a finished run's leftovers are certainly nobody's.
    """
    staging = root / ".staging"
    ids: list[UUID] = []
    for path in staging.iterdir() if staging.is_dir() else []:
        try:
            run_id = UUID(path.name)
        except ValueError:
            continue
        if path.is_dir() and path.name != keep:
            ids.append(run_id)
    if not ids:
        return []
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from common.prefect_rest import FINAL_STATES

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
    over = [str(r.id) for r in runs if r.state_type is not None and r.state_type.value in FINAL_STATES]
    for over_id in over:
        shutil.rmtree(staging / over_id, ignore_errors=True)
    if over:
        get_logger("lake").info(
            f"removed {len(over)} staging folder(s) left by runs that ended without cleaning up: {', '.join(over)}",
            root=str(root),
        )
    return over


def parquet_rows(path: Path) -> int:
    """Row count from the Parquet footer (no data scan)."""
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT coalesce(sum(row_group_num_rows), 0) FROM "
            "(SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(?))",
            [str(path)],
        ).fetchone()
    return int(row[0]) if row else 0


def copy_query_to_parquet(connection: Connection, query: str, target: Path, url: str) -> int:
    """Run ``query`` on the shared database and write its result to the Parquet file ``target``.

    DuckDB streams the result straight to Parquet (COPY). PostgreSQL over psycopg streams it
    as CSV with ``COPY (query) TO STDOUT`` on the task's own connection. Any other database
    streams it in batches of ``BATCH_ROWS`` of Python rows. Both of the latter go through a
    CSV file beside the target that DuckDB turns into Parquet, so a table never sits whole in
    Python memory. COPY is several times faster than fetching rows (bench/RESULTS.md).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_duckdb(url):
        connection.exec_driver_sql(f"COPY ({query}) TO {sql_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)")
        return parquet_rows(target)
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        return _postgres_copy_to_parquet(connection, query, target)
    result = connection.execution_options(stream_results=True).exec_driver_sql(query)
    columns = list(result.keys())
    return write_batches_to_parquet(columns, iter(lambda: result.fetchmany(BATCH_ROWS), []), target)


# PostgreSQL type OIDs -> DuckDB types; anything else is read as text.
_PG_OID_TYPES: dict[int, str] = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    26: "BIGINT",
    700: "REAL",
    701: "DOUBLE",
    1082: "DATE",
    1083: "TIME",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    1186: "INTERVAL",
    2950: "UUID",
}
_PG_NUMERIC = 1700
UNCONSTRAINED_DECIMAL = "DECIMAL(38, 10)"


def _postgres_type(type_code: int, precision: int | None, scale: int | None) -> str:
    if type_code == _PG_NUMERIC:
        if precision is not None and scale is not None and 0 < precision <= 38:
            return f"DECIMAL({precision}, {scale})"
        return UNCONSTRAINED_DECIMAL
    return _PG_OID_TYPES.get(type_code, "VARCHAR")


def _postgres_copy_to_parquet(connection: Connection, query: str, target: Path) -> int:
    """PostgreSQL's own CSV of the result (NULL unquoted-empty, '' quoted), then Parquet.

    The column types come from the result description of the same query with no rows
    (planned, not run), so numeric(p, s) stays DECIMAL(p, s) in the lake.
    """
    raw = connection.connection.driver_connection
    scratch = target.with_suffix(".scratch.csv")
    try:
        with raw.cursor() as cur:  # type: ignore[union-attr]
            cur.execute("SET DateStyle = ISO")  # the text form DuckDB reads back
            cur.execute(f"SELECT * FROM ({query}) AS q LIMIT 0")
            columns = [col.name for col in cur.description]
            types = [_postgres_type(col.type_code, col.precision, col.scale) for col in cur.description]
            with open(scratch, "wb") as fh, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as copy:
                for chunk in copy:
                    fh.write(chunk)
        return csv_to_parquet(scratch, columns, types, target)
    finally:
        scratch.unlink(missing_ok=True)


def csv_to_parquet(source: Path, columns: Sequence[str], types: Sequence[str], target: Path) -> int:
    """A headerless CSV (unquoted empty field = NULL, ``""`` = empty string) as Parquet."""
    if len(set(columns)) != len(columns):
        raise ValueError(f"the query returns duplicate column names: {', '.join(columns)}")
    with local_duckdb(queue=False) as con:
        con.sql(
            "SELECT * FROM read_csv(?, columns = ?, header = false, auto_detect = false, "
            "delim = ',', quote = '\"', escape = '\"', allow_quoted_nulls = false)",
            params=[str(source), dict(zip(columns, types, strict=True))],
        ).write_parquet(str(target), compression="zstd")
    return parquet_rows(target)


def _duckdb_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, Decimal):
        return UNCONSTRAINED_DECIMAL
    if isinstance(value, datetime):
        return "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    return "VARCHAR"


class _Null:
    """Written by ``csv`` as an unquoted empty field under QUOTE_NONNUMERIC (it counts as a
    number), while every string, even an empty one, is quoted: NULL and '' stay apart
    (Python 3.11 has no QUOTE_NOTNULL)."""

    __slots__ = ()

    def __float__(self) -> float:
        return float("nan")

    def __str__(self) -> str:
        return ""


_NULL = _Null()


def write_batches_to_parquet(columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], target: Path) -> int:
    """Write row batches to one Parquet file through a CSV file beside it.

    Column types come from the first non-null value of each column in the first batch
    (no value: VARCHAR). Why CSV: DuckDB's ``executemany`` into a table took 230 s for the
    50,000 rows of the products extract; this route takes about 13 s per million rows.
    """
    scratch = target.with_suffix(".scratch.csv")
    types: list[str] | None = None
    try:
        with open(scratch, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
            for batch in batches:
                if types is None:
                    types = [
                        _duckdb_type(next((r[i] for r in batch if r[i] is not None), None)) for i in range(len(columns))
                    ]
                writer.writerows(row if None not in row else [_NULL if v is None else v for v in row] for row in batch)
        return csv_to_parquet(scratch, columns, types or ["VARCHAR"] * len(columns), target)
    finally:
        scratch.unlink(missing_ok=True)
