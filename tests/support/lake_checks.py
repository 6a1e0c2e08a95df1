"""Content checks of the demo database and the lake: rows plus an order-independent hash of
every row, so two datasets compare equal only when they hold the same rows."""

from __future__ import annotations

from pathlib import Path

import duckdb

from common.catalog import TABLES


def _rows_and_hash(con: duckdb.DuckDBPyConnection, relation: str, params: list[str]) -> tuple[int, int]:
    row = con.execute(f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM {relation} t", params).fetchone()
    return int(row[0]), int(row[1])  # type: ignore[index]


def table_checksums(database: Path, tables: tuple[str, ...] = TABLES) -> dict[str, tuple[int, int]]:
    """Per allowlisted table of a DuckDB file."""
    with duckdb.connect(str(database), read_only=True) as con:
        return {t: _rows_and_hash(con, f'"{t}"', []) for t in tables}


def lake_checksums(lake: Path) -> dict[str, tuple[int, int]]:
    """Per published dataset of a lake (reading each file whole: a half-written Parquet file
    would fail here)."""
    with duckdb.connect() as con:
        return {p.stem: _rows_and_hash(con, "read_parquet(?)", [str(p)]) for p in sorted(lake.glob("*.parquet"))}


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file()}


def extract_matches_lake(database: Path, lake: Path, tables: tuple[str, ...] = TABLES) -> dict[str, tuple[int, int]]:
    """Tables whose lake dataset does not hold exactly the rows of ingest's extract of them,
    with (rows, hash) of the extract: the source checksum against the dataset's, compared on
    the extract's columns (ingest adds columns to the enriched ones)."""
    from common.lake import dataset_path
    from flow_ingest.catalog import extract_query

    differ: dict[str, tuple[int, int]] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        for table in tables:
            query = extract_query(table)
            columns = ", ".join(f'"{c[0]}"' for c in con.execute(f"SELECT * FROM ({query}) LIMIT 0").description)
            source = _rows_and_hash(con, f"({query})", [])
            target = _rows_and_hash(con, f"(SELECT {columns} FROM read_parquet(?))", [str(dataset_path(lake, table))])
            if source != target:
                differ[table] = source
    return differ
