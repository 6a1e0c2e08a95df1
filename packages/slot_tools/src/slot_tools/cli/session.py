"""What every slot-tool command does first: logging, a valid limits file (before anything
touches the server), a reachable server; errors a user can fix become one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from common.errors import user_errors
from common.logs import configure_logging
from common.prefect_api import connect
from common.resources import Registry, get_registry


@contextmanager
def session() -> Iterator[tuple[Registry, str]]:
    configure_logging()
    with user_errors():
        registry = get_registry()
        yield registry, connect()
