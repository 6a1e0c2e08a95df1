"""The lake: one Parquet file per dataset, replaced atomically.

Writers always write beside the target (a staging folder on the same filesystem) and then
``os.replace`` the finished file into place: a reader sees the old dataset or the new one,
never half of one; a run that fails before the rename leaves the last good data untouched;
re-running writes the same content again instead of appending (idempotent).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy.engine import Connection

from common.db import is_duckdb

_DATASET = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
BATCH_ROWS = 50_000


def sql_literal(text: str) -> str:
    """A SQL string literal for a path we control (COPY targets cannot be bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


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


def publish(staged: Path, target: Path) -> None:
    """Atomically replace ``target`` with ``staged`` (fsync first, so a crash keeps one whole file)."""
    with open(staged, "rb") as fh:
        os.fsync(fh.fileno())
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staged, target)


def remove_staging(lake_dir: Path, run_id: str) -> bool:
    """Delete a run's staging folder; True when something was removed."""
    path = lake_dir / ".staging" / run_id
    if path.exists():
        shutil.rmtree(path)
        return True
    return False


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

    DuckDB streams the result straight to Parquet (COPY). Other databases stream it in
    batches of ``BATCH_ROWS`` into a local DuckDB file that then writes the Parquet file,
    so a table never sits whole in Python memory.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_duckdb(url):
        connection.exec_driver_sql(
            f"COPY ({query}) TO {sql_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)"
        )
        return parquet_rows(target)
    result = connection.execution_options(stream_results=True).exec_driver_sql(query)
    columns = list(result.keys())
    return write_batches_to_parquet(columns, iter(lambda: result.fetchmany(BATCH_ROWS), []), target)


def _duckdb_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    if isinstance(value, float):
        return "DOUBLE"
    if isinstance(value, Decimal):
        return "DECIMAL(38, 10)"
    if isinstance(value, datetime):
        return "TIMESTAMPTZ" if value.tzinfo else "TIMESTAMP"
    if isinstance(value, date):
        return "DATE"
    return "VARCHAR"


def write_batches_to_parquet(
    columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], target: Path
) -> int:
    """Write row batches to one Parquet file through a scratch DuckDB file beside it."""
    scratch = target.with_suffix(".scratch.duckdb")
    rows = 0
    try:
        with duckdb.connect(str(scratch)) as con:
            created = False
            quoted = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            for batch in batches:
                batch = [tuple(r) for r in batch]
                if not created:
                    types = []
                    for i, column in enumerate(columns):
                        sample = next((r[i] for r in batch if r[i] is not None), None)
                        types.append(f'"{column.replace(chr(34), chr(34) * 2)}" {_duckdb_type(sample)}')
                    con.execute(f"CREATE TABLE batch_rows ({', '.join(types)})")
                    created = True
                con.executemany(f"INSERT INTO batch_rows ({quoted}) VALUES ({marks})", batch)
                rows += len(batch)
            if not created:
                con.execute(
                    "CREATE TABLE batch_rows (" + ", ".join(f'"{c}" VARCHAR' for c in columns) + ")"
                )
            con.execute(f"COPY batch_rows TO {sql_literal(str(target))} (FORMAT parquet, COMPRESSION zstd)")
    finally:
        scratch.unlink(missing_ok=True)
        Path(str(scratch) + ".wal").unlink(missing_ok=True)
    return rows
