"""The table allowlist: the only tables of the shared database any task may name.

Table names are the only identifiers ever placed in SQL (or in a file path), and only
after :func:`check_table` found them here; values are never interpolated. Each flow keeps
its own queries in ``.sql`` files beside its code (``flow_ingest/sql``, ``flow_reports/sql``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from common.errors import UserError

DIMENSIONS: tuple[str, ...] = (
    "regions",
    "countries",
    "currencies",
    "stores",
    "warehouses",
    "suppliers",
    "categories",
    "products",
    "customers",
    "promotions",
)
FACTS: tuple[str, ...] = (
    "orders",
    "order_items",
    "payments",
    "shipments",
    "returns",
    "reviews",
    "inventory_movements",
    "web_sessions",
    "page_views",
    "support_tickets",
)
TABLES: tuple[str, ...] = DIMENSIONS + FACTS


class UnknownTableError(UserError, ValueError):
    """A table name outside the allowlist (a typo, or an attempt to inject SQL)."""


def check_table(name: str) -> str:
    """Return ``name`` if it is an allowlisted table; the only way names reach SQL."""
    if isinstance(name, str) and name in TABLES:
        return name
    raise UnknownTableError(f"unknown table {name!r}: choose one of {', '.join(TABLES)}")


Table = Annotated[str, AfterValidator(check_table)]
"""A flow parameter's type for a table name: Prefect (and a direct run, before any flow run
exists) refuses a name outside the allowlist, in :func:`check_table`'s words."""
