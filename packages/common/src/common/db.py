"""The shared database: one SQLAlchemy URL, reached through prefect-sqlalchemy.

Every database task opens exactly one connection through a ``SqlAlchemyConnector`` and
closes it when the task ends, so the ``database`` slots are exactly the connections the
database sees. The embedded demo database is a DuckDB file opened read-only: served flow
runs are separate processes and DuckDB allows only one writer per file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from common.settings import Settings


class DatabaseUnavailableError(RuntimeError):
    """The shared database cannot be reached; the message is one line that says what to fix."""


def redacted_url(url: str) -> str:
    """The URL with any password masked, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def is_duckdb(url: str) -> bool:
    try:
        return make_url(url).get_backend_name() == "duckdb"
    except ArgumentError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _statement_guard(connection: Connection, url: str, timeout_seconds: float | None) -> threading.Timer | None:
    """Bound how long the database works for one task (Prefect cannot interrupt a blocking
    call in a worker thread, so the bound lives in the database session itself)."""
    if not timeout_seconds:
        return None
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        connection.exec_driver_sql(f"SET statement_timeout = {int(timeout_seconds * 1000)}")
        return None
    if backend == "duckdb":
        raw = connection.connection.dbapi_connection
        timer = threading.Timer(timeout_seconds, getattr(raw, "interrupt", lambda: None))
        timer.daemon = True
        timer.start()
        return timer
    return None


@contextmanager
def connect(settings: Settings, timeout_seconds: float | None = None) -> Iterator[Connection]:
    """One connection to the shared database, closed on exit; its work is interrupted after
    ``timeout_seconds`` (the resource's timeout from the limits file)."""
    from prefect_sqlalchemy import SqlAlchemyConnector

    url = settings.sqlalchemy_url
    hint = (
        "run `uv run seed-demo` (or `uv run serve-all`) to create the demo database"
        if settings.uses_demo_database
        else "check ETL_DATABASE_URL"
    )
    try:
        connector = SqlAlchemyConnector(connection_info=url)
    except (ValueError, ArgumentError) as exc:
        raise DatabaseUnavailableError(
            f"invalid database URL {redacted_url(url)!r} ({_first_line(exc)}): {hint}"
        ) from None
    with connector:
        try:
            connection = connector.get_connection(begin=False)
            if is_duckdb(url):
                # One slot = one connection = one worker thread, like a real database session.
                connection.exec_driver_sql("SET threads = 1")
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to the shared database {redacted_url(url)!r} ({_first_line(exc)}): {hint}"
            ) from None
        guard = _statement_guard(connection, url, timeout_seconds)
        try:
            yield connection
        finally:
            if guard is not None:
                guard.cancel()
            connection.close()
