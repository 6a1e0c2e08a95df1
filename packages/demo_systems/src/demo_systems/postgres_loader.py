"""The demo dataset in PostgreSQL: DuckDB builds it, ``COPY ... FROM STDIN`` moves it.

``seed-demo --url postgresql+psycopg://...`` builds the same deterministic dataset as the
demo DuckDB file (in a temporary file), then loads each table into PostgreSQL through one
psycopg connection: DuckDB writes the table as CSV to a temporary file and psycopg streams
that file to the server in 1 MiB chunks, so no table is ever held in Python memory.

Each table is loaded into a staging table (``<table>__seed``) in its own transaction; when
all 20 are loaded, one transaction drops the old tables and renames the staging tables into
place. A failed or interrupted load therefore leaves the previous dataset whole (and its
staging tables are dropped, or dropped by the next load). Table names come only from the
catalog allowlist; column names and types come from the DuckDB build and are checked.

The load holds one connection of the role it connects as: seed before the flows run, or as
another role, when that role's ``CONNECTION LIMIT`` equals the ``database`` slots. At scale 1
(6.9 M rows) it took 20-43 s on 2 cores: 7-14 s to build, the rest to copy.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import duckdb

from common.catalog import TABLES, check_table
from common.db import redacted_url, sql_literal
from common.errors import UserError
from demo_systems.shop.build import seed_demo_database

if TYPE_CHECKING:
    import psycopg

STAGING_SUFFIX = "__seed"
CHUNK_BYTES = 1 << 20

_PG_TYPES: dict[str, str] = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "VARCHAR": "text",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d{1,2}),(\d{1,2})\)$")
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresLoadError(UserError):
    """The target is not a PostgreSQL database we can load; one line that says what to fix."""


@dataclass(frozen=True)
class LoadResult:
    """What one load produced, for the one-line summary and for tests."""

    target: str  # the URL with its password masked
    scale: int
    seconds: float
    build_seconds: float
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL column type for a DuckDB one (only the types the demo dataset uses and
    their close relatives; anything else is an error rather than a silent text column)."""
    decimal = _DECIMAL.match(duckdb_type)
    if decimal:
        return f"numeric({int(decimal[1])}, {int(decimal[2])})"
    try:
        return _PG_TYPES[duckdb_type]
    except KeyError:
        raise ValueError(f"no PostgreSQL type for DuckDB type {duckdb_type!r}") from None


def psycopg_url(url: str) -> str:
    """The URL with the psycopg 3 driver (the one installed); refuses non-PostgreSQL URLs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise PostgresLoadError("unparseable database URL: check --url") from None
    if parsed.get_backend_name() != "postgresql":
        raise PostgresLoadError(f"--url must be a PostgreSQL URL (postgresql+psycopg://...), got {redacted_url(url)!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


@contextmanager
def pg_connection(url: str) -> Iterator[psycopg.Connection]:
    """One psycopg connection made by SQLAlchemy from ``url`` (same URL rules as the flows),
    with no pool behind it: closing it closes the session."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(psycopg_url(url), poolclass=NullPool)
    try:
        raw = engine.raw_connection()
        try:
            pg = cast("psycopg.Connection", raw.driver_connection)
            pg.rollback()  # end whatever SQLAlchemy's first-connect checks began
            pg.autocommit = True  # so each ``pg.transaction()`` is a real BEGIN ... COMMIT
            yield pg
        finally:
            raw.close()
    finally:
        engine.dispose()


def _columns(duck: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    described = duck.execute(f'DESCRIBE "{check_table(table)}"').fetchall()
    columns = []
    for name, duck_type, *_ in described:
        if not _COLUMN.match(name):
            raise ValueError(f"unexpected column name {name!r} in {table}")
        columns.append((name, postgres_type(duck_type)))
    return columns


def _drop_staging(pg: psycopg.Connection) -> None:
    from psycopg import sql

    with pg.transaction():
        for table in TABLES:
            pg.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table + STAGING_SUFFIX)))


def _load_table(duck: duckdb.DuckDBPyConnection, pg: psycopg.Connection, table: str, scratch: Path) -> int:
    """Copy one table into its staging table (one transaction); returns the rows loaded."""
    from psycopg import sql

    columns = _columns(duck, table)
    expected = duck.execute(f'SELECT count(*) FROM "{check_table(table)}"').fetchone()[0]  # type: ignore[index]
    csv_path = scratch / f"{table}.csv"
    duck.execute(f'COPY "{table}" TO {sql_literal(str(csv_path))} (FORMAT csv, HEADER false)')
    staging = sql.Identifier(table + STAGING_SUFFIX)
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type)) for name, pg_type in columns
    )
    try:
        with pg.transaction(), pg.cursor() as cur:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(staging))
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(staging, definition))
            # Empty unquoted fields are NULL, "" is an empty string: DuckDB writes exactly that.
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(staging, names)) as copy:
                with open(csv_path, "rb") as fh:
                    while chunk := fh.read(CHUNK_BYTES):
                        copy.write(chunk)
            loaded = cur.rowcount
            if loaded != expected:
                raise RuntimeError(f"{table}: loaded {loaded} rows, expected {expected}")
            cur.execute(sql.SQL("ANALYZE {}").format(staging))  # plans for the flows' queries
    finally:
        csv_path.unlink(missing_ok=True)
    return int(loaded)


def _swap_into_place(pg: psycopg.Connection) -> None:
    """Replace every table at once: readers see the old dataset or the new one."""
    from psycopg import sql

    with pg.transaction():
        for table in TABLES:
            target = sql.Identifier(check_table(table))
            pg.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            pg.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(table + STAGING_SUFFIX), target))


def load_into_postgres(duckdb_path: Path, url: str) -> dict[str, int]:
    """Load every catalog table of a built demo database into PostgreSQL; rows per table."""
    with (
        duckdb.connect(str(duckdb_path), read_only=True) as duck,
        pg_connection(url) as pg,
        tempfile.TemporaryDirectory(prefix="seed-csv-") as scratch,
    ):
        _drop_staging(pg)  # leftovers of an interrupted load
        try:
            rows = {table: _load_table(duck, pg, table, Path(scratch)) for table in TABLES}
            _swap_into_place(pg)
        except BaseException:
            with suppress(Exception):
                _drop_staging(pg)
            raise
    return rows


def seeded_tables(url: str) -> list[str]:
    """Catalog tables that already exist in the target database."""
    with pg_connection(url) as pg:
        found = pg.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
            [list(TABLES)],
        ).fetchall()
    return sorted(name for (name,) in found)


def seed_postgres(url: str, scale: int = 1) -> LoadResult:
    """Build the demo dataset with DuckDB in a temporary folder and load it into ``url``."""
    psycopg_url(url)  # refuse a wrong URL before building anything
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seed-") as tmp:
        built = seed_demo_database(Path(tmp) / "shop.duckdb", scale)
        rows = load_into_postgres(built.path, url)
    return LoadResult(
        target=redacted_url(url),
        scale=scale,
        seconds=time.perf_counter() - started,
        build_seconds=built.seconds,
        rows=rows,
    )
