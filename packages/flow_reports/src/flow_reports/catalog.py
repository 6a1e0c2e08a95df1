"""The reports the reports flow runs: metadata here, each query in ``sql/<name>.sql``.

The SQL is plain (joins, CTEs, ``EXTRACT``, ``date_trunc``, ``FILTER``, window functions)
so it runs on the demo DuckDB file and on PostgreSQL alike; only the lake reports use
DuckDB's ``read_parquet`` (the lake is Parquet files read through DuckDB), with ``{lake}``
standing for the lake folder. Each query is bounded and deterministically ordered.

Medians and 90th percentiles are ``percentile_cont``'s figures taken from the middle one or
two rows of a sort per group (``row_number()``, interpolated as ``percentile_cont`` does),
not from ``percentile_cont`` itself: that aggregate holds every value of a group in memory,
a sort spills to disk, so a report answers within a small DuckDB budget at any scale, and
both engines give the same figure to the cent (tests/unit/test_medians.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

from common import UserError


@dataclass(frozen=True)
class ReportSpec:
    """One report: a bounded, deterministically ordered query and where it reads from."""

    name: str
    title: str
    description: str
    lake_tables: tuple[str, ...] = ()

    @property
    def reads_lake(self) -> bool:
        return bool(self.lake_tables)

    @property
    def sql(self) -> str:
        """The query as written in ``sql/<name>.sql`` (lake reports still hold ``{lake}``)."""
        return (files("flow_reports") / "sql" / f"{self.name}.sql").read_text(encoding="utf-8").strip()


LAKE_PLACEHOLDER = "{lake}"

_REPORTS: tuple[ReportSpec, ...] = (
    ReportSpec(
        "revenue_by_month",
        "Revenue by month and currency",
        "Orders, buyers (new and returning), units, gross and net revenue and the median basket per "
        "month in each selling currency.",
    ),
    ReportSpec(
        "top_products",
        "Top 100 products by units sold",
        "Best sellers with category, orders, product page views, view-to-order rate, return rate and rating.",
    ),
    ReportSpec(
        "customer_cohorts",
        "Customer cohorts by first order month",
        "Active customers, orders and units per cohort, by months since the first order.",
    ),
    ReportSpec(
        "inventory_health",
        "Inventory health by warehouse",
        "Stock on hand and its value, out-of-stock products, products below their reorder point (90-day "
        "pick rate x supplier lead time), days of cover and stock-out events replayed from the movement "
        "history.",
    ),
    ReportSpec(
        "return_rate_by_category",
        "Return rate by top-level category",
        "Units sold and returned, the most common reason, how fast items come back, and the rating of "
        "returned against kept items, per category.",
    ),
    ReportSpec(
        "support_backlog",
        "Support backlog by priority and category",
        "Open and pending tickets, response and resolution times, satisfaction, and how many tickets "
        "follow a late delivery or a return.",
    ),
    ReportSpec(
        "web_conversion",
        "Web conversion by month and device",
        "Sessions, bounces, product views and the share of sessions that bought.",
    ),
    ReportSpec(
        "shipping_performance",
        "Shipping performance by carrier and destination",
        "Shipments, units, time to ship, transit time percentiles, on-time rate and returns blamed on late delivery.",
    ),
    ReportSpec(
        "revenue_eur_by_region",
        "Revenue in EUR by region and month (lake)",
        "Ingest's enriched orders: EUR revenue and the VAT it contains, per API region and month.",
        ("orders",),
    ),
    ReportSpec(
        "payments_eur_by_method",
        "Payments in EUR by method and region (lake)",
        "Ingest's enriched payments joined to enriched orders: EUR volume, count and split share per "
        "payment method and region.",
        ("orders", "payments"),
    ),
)

REPORTS: dict[str, ReportSpec] = {spec.name: spec for spec in _REPORTS}


class UnknownReportError(UserError, ValueError):
    """A report name that is not in :data:`REPORTS`."""


def check_reports(names: list[str]) -> list[str]:
    """``names`` if every one is a known report; the error lists the valid names."""
    unknown = [n for n in names if not isinstance(n, str) or n not in REPORTS]
    if unknown:
        raise UnknownReportError(f"unknown report {unknown[0]!r}: choose one of {', '.join(REPORTS)}")
    return names


def check_report(name: str) -> str:
    """``name`` if it is a known report (a flow parameter's validator)."""
    return check_reports([name])[0]


ReportName = Annotated[str, AfterValidator(check_report)]


def report_query(name: str, lake_dir: Path | None = None) -> str:
    """The SQL of report ``name``; lake reports get ``lake_dir`` in place of ``{lake}``."""
    check_reports([name])
    spec = REPORTS[name]
    sql = spec.sql
    if not spec.reads_lake:
        return sql
    if lake_dir is None:
        raise ValueError(f"report {name!r} reads the lake: pass lake_dir")
    folder = Path(lake_dir).as_posix().replace("'", "''")
    return sql.replace(LAKE_PLACEHOLDER, folder)
