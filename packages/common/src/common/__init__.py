"""``common``: the runtime library every flow imports (and a flow worker installs).

What a flow author uses, and nothing else, is importable from here::

    from common import Connection, flow_tasks, run_scope

* :func:`flow_tasks` binds a flow package's name once; its ``database``, ``api`` and ``local``
  decorators make the tasks (a resource task gets its tag, retries and handle from here).
* :func:`run_scope` is the scope of one flow run: the fail-closed limits check, the staging
  folder and its cleanup, and the outcome collector (submit, wait for all, one failure line).
* :data:`lake` holds the lake's helpers (atomic publish, Parquet, the local DuckDB);
  ``Connection`` and :class:`PartnerApi` are the handles resource tasks receive.

Everything else in the package (the REST reader, the limits check, the lease guard...) serves
the other members. The names load on first use, so a quick command that needs one small module
does not pay for importing Prefect; type checkers and editors read the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from common import lake
    from common.api_client import PartnerApi
    from common.catalog import TABLES, Table, check_table
    from common.errors import UserError
    from common.factories import FlowTasks, flow_tasks
    from common.logs import get_logger
    from common.run import Call, RunFailed, RunScope, run_scope
    from common.settings import Settings, get_settings

__all__ = [
    "TABLES",
    "Call",
    "Connection",
    "FlowTasks",
    "PartnerApi",
    "RunFailed",
    "RunScope",
    "Settings",
    "Table",
    "UserError",
    "check_table",
    "flow_tasks",
    "get_logger",
    "get_settings",
    "lake",
    "run_scope",
]

_WHERE: dict[str, str] = {
    "TABLES": "common.catalog",
    "Call": "common.run",
    "Connection": "sqlalchemy.engine",
    "FlowTasks": "common.factories",
    "PartnerApi": "common.api_client",
    "RunFailed": "common.run",
    "RunScope": "common.run",
    "Settings": "common.settings",
    "Table": "common.catalog",
    "UserError": "common.errors",
    "check_table": "common.catalog",
    "flow_tasks": "common.factories",
    "get_logger": "common.logs",
    "get_settings": "common.settings",
    "run_scope": "common.run",
}


def __getattr__(name: str) -> Any:
    if name == "lake":
        value: Any = importlib.import_module("common.lake")
    elif name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    else:
        raise AttributeError(f"module 'common' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
