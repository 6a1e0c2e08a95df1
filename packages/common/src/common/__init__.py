"""``common``: the runtime library every flow imports (and a flow worker installs).

Where things are: the limits registry (``limits.toml`` -> resources -> tags) in
:mod:`common.resources`; the tagged task factories, where a task gets its tag, in
:mod:`common.factories`; the fail-closed limits check in :mod:`common.limits_check`; the
database and partner-API handles in :mod:`common.db` and :mod:`common.api_client`; the lake
in :mod:`common.lake`; run outcomes (settle futures, one failure line) in :mod:`common.outcomes`.

The names below are the public surface the flow packages import (``from common import
database_task``). They are loaded on first use, so a quick command that needs one small
module (``slots`` answers in about a second) does not pay for importing Prefect.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC: dict[str, str] = {
    # settings and logging
    "Settings": "common.settings",
    "get_settings": "common.settings",
    "configure_logging": "common.logs",
    "get_logger": "common.logs",
    # errors a user can fix
    "UserError": "common.errors",
    # the limits registry and the fail-closed check
    "Registry": "common.resources",
    "Resource": "common.resources",
    "get_registry": "common.resources",
    "require_limits": "common.limits_check",
    # tagged task factories
    "database_task": "common.factories",
    "api_task": "common.factories",
    "local_task": "common.factories",
    "resource_task": "common.factories",
    # the shared systems and the lake
    "TABLES": "common.catalog",
    "check_table": "common.catalog",
    "backend_name": "common.db",
    "is_duckdb": "common.db",
    "local_duckdb": "common.duckdb_memory",
    "copy_query_to_parquet": "common.lake",
    "dataset_path": "common.lake",
    "parquet_rows": "common.lake",
    "publish": "common.lake",
    "remove_staging": "common.lake",
    "staging_dir": "common.lake",
    "sweep_abandoned_staging": "common.lake",
    # run outcomes
    "settle": "common.outcomes",
    "failed_calls": "common.outcomes",
    "failure_reason": "common.outcomes",
    "name_failures": "common.outcomes",
    # deployments
    "served_deployment": "common.deploy",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'common' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
