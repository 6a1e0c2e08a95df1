"""The session's real parts, as integration tests see them (built by ``conftest.stack``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Stack:
    """What an integration test can use: the server, the data folder, the demo API."""

    api_url: str
    server: Any  # local_server.prefect_server.LocalPrefectServer
    data_dir: Path
    demo_api_url: str

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        return env


def slot_usage(api_url: str, tag: str = "database") -> tuple[int, int]:
    """(the counter of the limit on ``tag``, its live lease holders): (0, 0) means all free."""
    from common.prefect_rest import PrefectRest

    with PrefectRest(api_url) as rest:
        return rest.tag_usage(tag)


def linked_data_dir(stack: Stack, root: Path, *, with_database: bool = True) -> Path:
    """A private data folder (its own lake and reports); the demo database hard-linked in
    (DuckDB opens it read-only), so no test pays for seeding it again."""
    data = root / "data"
    (data / "demo").mkdir(parents=True)
    if with_database:
        os.link(stack.data_dir / "demo" / "shop.duckdb", data / "demo" / "shop.duckdb")
    return data
