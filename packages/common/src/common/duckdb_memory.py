"""Every DuckDB instance a flow run opens gets a memory budget and a spill folder of its own.

DuckDB's default budget is 80% of the machine's RAM for each instance, and a flow run opens
several: one per ``database`` slot it holds (each connection to the shared DuckDB file is an
in-memory instance that attaches the file, see :func:`common.db.connect`) and one per lake
step. With the default, a run's memory grows with the data (bench/RESULTS.md: 6.1 GiB for
ingest at demo scale 10); with ``ETL_DUCKDB_MEMORY_LIMIT`` each instance spills its sorts,
joins and aggregates to disk instead. One folder per instance: two instances spilling into
the same folder would write the same file names.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from common.settings import Settings, get_settings


@contextmanager
def spill_folder(settings: Settings) -> Iterator[Path]:
    """A private folder under ``<data>/spill`` for one instance, removed when it closes."""
    root = settings.data_dir / "spill"  # type: ignore[operator]
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"duckdb-{os.getpid()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def duckdb_config(settings: Settings, spill: Path, threads: int | None = None) -> dict[str, str | int]:
    """The configuration of one DuckDB instance: the budget, its spill folder, its threads."""
    config: dict[str, str | int] = {"memory_limit": settings.duckdb_memory_limit, "temp_directory": str(spill)}
    if threads is not None:
        config["threads"] = threads
    return config


@contextmanager
def local_duckdb(settings: Settings | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB for a flow's own work on lake files (enrichment, staging), within
    the budget."""
    settings = settings or get_settings()
    with spill_folder(settings) as spill, duckdb.connect(":memory:", config=duckdb_config(settings, spill)) as con:
        yield con
