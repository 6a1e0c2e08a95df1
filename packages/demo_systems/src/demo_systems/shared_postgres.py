"""``uv run python -m demo_systems.shared_postgres``: a local PostgreSQL shared database to
try the production path on (``ETL_DATABASE_URL``), seeded with the demo shop.

Starts PostgreSQL (the embedded one of :mod:`local_server.postgres`) under
``<data dir>/shared-pg``, creates the role ``etl`` with ``CONNECTION LIMIT`` = the
``database`` slots and the database ``shop``, seeds it, and writes the role's URL to
``<data dir>/shared-pg/etl.url`` (mode 0600: the URL holds the password, so it is never
printed). Runs until Ctrl-C, then stops PostgreSQL.
"""

from __future__ import annotations

import argparse
import secrets
import signal
from pathlib import Path

from local_server.postgres import EmbeddedPostgres, create_role_and_database

SHARED_ROLE = "etl"
SHARED_DATABASE = "shop"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created 0600, never wider)."""
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    argparse.ArgumentParser(
        prog="python -m demo_systems.shared_postgres",
        description="A local PostgreSQL shared database seeded with the demo shop, its role's URL written to "
        "<data dir>/shared-pg/etl.url (0600); runs until Ctrl-C.",
    ).parse_args()  # no options: --help says what it does, before anything starts
    from common.db import redacted_url
    from common.resources import DATABASE, get_registry
    from common.settings import get_settings
    from demo_systems.postgres_loader import seed_postgres

    folder = get_settings().data_dir / "shared-pg"
    slots = get_registry()[DATABASE].slots
    server = EmbeddedPostgres(folder / "pgdata")
    server.start_server()
    try:
        url = create_role_and_database(
            server,
            role=SHARED_ROLE,
            password=secrets.token_urlsafe(18),
            database=SHARED_DATABASE,
            connection_limit=slots,
        )
        url_file = folder / "etl.url"
        write_secret(url_file, url + "\n")
        print(
            f"PostgreSQL on {server.socket_dir()}: role {SHARED_ROLE} (CONNECTION LIMIT {slots}), "
            f"database {SHARED_DATABASE}; seeding it ...",
            flush=True,
        )
        result = seed_postgres(url)
        print(f"seeded {redacted_url(url)} in {result.seconds:.1f} s: {result.total_rows:,} rows")
        print(f'\n    export ETL_DATABASE_URL="$(cat {url_file})"\n\nCtrl-C stops PostgreSQL.', flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
