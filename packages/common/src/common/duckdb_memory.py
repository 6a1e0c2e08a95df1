"""Every DuckDB instance a flow run opens gets a memory budget and a spill folder of its own.

DuckDB's default budget is 80% of the machine's RAM for each instance, and a flow run opens
several: one per ``database`` slot it holds (each connection to the shared DuckDB file is an
in-memory instance that attaches the file, see :func:`common.db.connect`) and one for its
lake steps, which take turns. With DuckDB's default, a run's memory grows with the data
(docs/performance.md); with ``ETL_DUCKDB_MEMORY_LIMIT`` each instance spills its sorts,
joins and aggregates to disk instead. One folder per instance: two instances spilling into the
same folder would write the same file names.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

from common.settings import Settings, get_settings


@contextmanager
def spill_folder(settings: Settings) -> Iterator[Path]:
    """A private folder under ``<data>/spill`` for one instance, removed when it closes."""
    root = settings.data_dir / "spill"
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"duckdb-{os.getpid()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


Config = dict[str, str | bool | int | float | list[str]]  # what duckdb.connect's config takes


def duckdb_config(settings: Settings, spill: Path, threads: int | None = None) -> Config:
    """The configuration of one DuckDB instance: the budget, its spill folder, its threads."""
    config: Config = {"memory_limit": settings.duckdb_memory_limit, "temp_directory": str(spill)}
    if threads is not None:
        config["threads"] = threads
    return config


# A flow's own lake steps (enrichment, staging reference data) take turns in one process: each
# opens an instance with a budget of its own, and one already keeps both cores busy. So a
# flow-run process holds at most one instance per database slot it holds plus this one.
_LAKE_STEP = threading.Lock()


@contextmanager
def local_duckdb(settings: Settings | None = None, *, queue: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB for a flow's own work on lake files, within the budget; one at a
    time in the process. ``queue=False`` is for the work an extract does while it holds a
    ``database`` slot (turning a CSV stream into Parquet): that instance stands for the
    slot's session and must not wait for a lake step with the slot held."""
    settings = settings or get_settings()
    with ExitStack() as stack:
        if queue:
            stack.enter_context(_LAKE_STEP)
        spill = stack.enter_context(spill_folder(settings))
        yield stack.enter_context(duckdb.connect(":memory:", config=duckdb_config(settings, spill)))
