"""The shared database: one SQLAlchemy URL, reached through prefect-sqlalchemy.

Every database task opens exactly one connection through a ``SqlAlchemyConnector`` and
closes it when the task ends, so the ``database`` slots are exactly the connections the
database sees: the connector's engine has no pool (``NullPool``), so closing the connection
ends the database session at once instead of parking it in a pool until the engine is
disposed. With a PostgreSQL role capped at ``CONNECTION LIMIT`` = the ``database`` slots,
the Prefect limit is then what keeps every flow, process and machine under that cap.

A DuckDB shared database (the embedded demo's file) is attached read-only by an in-memory
DuckDB instance of each connection's own: served flow runs are separate processes and DuckDB
allows only one writer per file, and one instance per connection gives each slot its own
memory budget and worker thread, as a database session has (:mod:`common.duckdb_memory`).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from common.duckdb_memory import duckdb_config, spill_folder
from common.errors import UserError
from common.logs import get_logger
from common.settings import Settings, backend_name

DEFAULT_CONNECT_PATIENCE_SECONDS = 300.0


class DatabaseUnavailableError(UserError, RuntimeError):
    """The shared database cannot be reached; the message is one line that says what to fix."""


def redacted_url(url: str) -> str:
    """The URL with any password masked, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def is_duckdb(url: str) -> bool:
    return backend_name(url) == "duckdb"


def sql_literal(text: str) -> str:
    """A SQL string literal for a path we control (COPY targets and ATTACH take no bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


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


SESSION_END_WAIT_SECONDS = 2.0
TOO_MANY_CONNECTIONS = "53300"  # PostgreSQL's SQLSTATE for a role (or server) at its connection cap
CONNECT_RETRY_SECONDS = (0.2, 2.0)  # first and longest pause between connection attempts


def interrupter(connection: Connection, url: str) -> Callable[[], None]:
    """A function that stops the connection's work from another thread: DuckDB's ``interrupt()``;
    for PostgreSQL over psycopg a cancel request, then the session's socket shut down, so the
    server ends the session whatever the client was doing. A no-op for other databases."""
    raw = connection.connection.dbapi_connection
    backend = backend_name(url)
    if backend == "duckdb":
        return getattr(raw, "interrupt", lambda: None)
    driver = connection.connection.driver_connection
    if backend != "postgresql" or not hasattr(driver, "pgconn"):
        return lambda: None

    def stop() -> None:
        try:
            driver.cancel()  # type: ignore[union-attr]
        finally:
            with socket.socket(fileno=os.dup(driver.pgconn.socket)) as sock:  # type: ignore[union-attr]
                sock.shutdown(socket.SHUT_RDWR)

    return stop


def _role_at_its_cap(exc: BaseException) -> bool:
    """PostgreSQL refused the connection for its cap (a failed connection carries no SQLSTATE in
    libpq, only the server's message)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) == TOO_MANY_CONNECTIONS or "too many connections" in str(orig or exc)


def _connection(connector: object, patience: float, check: Callable[[], None]) -> Connection:
    """A connection from the connector; while the database refuses one because the role is at
    its cap, ask again (bounded by ``patience``): a task run holding a ``database`` slot only
    meets that when a session outside the limit holds a connection, such as one of a holder
    that lost its slot and has not closed its session yet. ``check`` runs before each attempt
    (it raises when the asking task's own slot may be gone)."""
    deadline = time.monotonic() + patience
    pause, longest = CONNECT_RETRY_SECONDS
    while True:
        check()
        try:
            return connector.get_connection(begin=False)  # type: ignore[attr-defined, no-any-return]
        except SQLAlchemyError as exc:
            if not _role_at_its_cap(exc) or time.monotonic() + pause > deadline:
                raise
            get_logger("db").info(
                f"the database refused a connection ({_first_line(exc)}); asking again in {pause:.1f} s",
                sqlstate=TOO_MANY_CONNECTIONS,
            )
            time.sleep(pause)
            pause = min(longest, pause * 2)


def _session_end_waiter(connection: Connection) -> Callable[[], None] | None:
    """For PostgreSQL over psycopg: a function that blocks, after the connection is closed,
    until the server has ended the session (bounded by ``SESSION_END_WAIT_SECONDS``).

    Why: a PostgreSQL backend leaves the role's connection count a moment after the client
    closes, so a slot handed over at once can meet "too many connections for role" even
    though only ``CONNECTION LIMIT`` tasks ever held a connection (figures in
    bench/RESULTS.md). The backend closes its end of the socket only as it exits, so reading
    a duplicate of the socket until EOF waits exactly that long (about a millisecond), and the
    slot is released after the session is gone.
    """
    try:
        raw = connection.connection.driver_connection
        fd = os.dup(raw.pgconn.socket)  # type: ignore[union-attr]
    except Exception:
        return None

    def wait() -> None:
        deadline = time.monotonic() + SESSION_END_WAIT_SECONDS
        try:
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([fd], [], [], left)
                if not readable or not os.read(fd, 4096):
                    return
        except OSError:
            return  # reset by the server: the session is over
        finally:
            os.close(fd)

    return wait


@contextmanager
def connect(
    settings: Settings, timeout_seconds: float | None = None, check: Callable[[], None] = lambda: None
) -> Iterator[Connection]:
    """One connection to the shared database, closed on exit; its work is interrupted after
    ``timeout_seconds`` (the resource's timeout from the limits file). ``check`` runs before
    each connection attempt."""
    from prefect_sqlalchemy import SqlAlchemyConnector

    url = settings.sqlalchemy_url
    hint = (
        "run `uv run seed-demo` (or `uv run serve-all`) to create the demo database"
        if settings.uses_demo_database
        else "check ETL_DATABASE_URL"
    )
    with ExitStack() as stack:
        try:
            if is_duckdb(url):
                # One slot = one connection = one instance with one worker thread and its own
                # memory budget, like a real database session; the file is attached read-only.
                spill = stack.enter_context(spill_folder(settings))
                connector = SqlAlchemyConnector(
                    connection_info="duckdb:///:memory:",
                    connect_args={"config": duckdb_config(settings, spill, threads=1)},
                )
            else:
                connector = SqlAlchemyConnector(connection_info=url)
        except (ValueError, ArgumentError) as exc:
            raise DatabaseUnavailableError(
                f"invalid database URL {redacted_url(url)!r} ({_first_line(exc)}): {hint}"
            ) from None
        stack.enter_context(connector)
        try:
            connector.get_engine(poolclass=NullPool)  # the connector keeps and reuses this engine
            connection = _connection(connector, timeout_seconds or DEFAULT_CONNECT_PATIENCE_SECONDS, check)
            if is_duckdb(url):
                connection.exec_driver_sql(f"ATTACH {sql_literal(make_url(url).database or '')} AS shared (READ_ONLY)")
                connection.exec_driver_sql("USE shared")
        except (SQLAlchemyError, OSError, ImportError) as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to the shared database {redacted_url(url)!r} ({_first_line(exc)}): {hint}"
            ) from None
        guard = _statement_guard(connection, url, timeout_seconds)
        session_ended = _session_end_waiter(connection) if backend_name(url) == "postgresql" else None
        try:
            yield connection
        finally:
            if guard is not None:
                guard.cancel()
            try:
                connection.close()  # no pool: this closes the database session
            except SQLAlchemyError:
                connection.invalidate()  # interrupted: the server already ended the session
            if session_ended is not None:
                session_ended()
