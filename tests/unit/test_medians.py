"""The flows' medians and 90th percentiles are ``percentile_cont``'s, though no flow's SQL calls it.

``percentile_cont ... WITHIN GROUP`` keeps each group's values whole in memory, so the roll-ups
and reports take the same figure from the middle rows of a sort, which DuckDB spills to disk
(bench/RESULTS.md, "The data path at scale"). Here DuckDB's own ``percentile_cont`` is the
oracle, on the seeded demo shop: a median of decimals (cut to the cent as DuckDB cuts one), a
median and a 90th percentile of doubles (rounded by the cast), per group.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from flow_ingest.catalog import extract_query
from flow_reports.catalog import report_query

PACKAGES = Path(__file__).resolve().parents[2] / "packages"


def _column(con: duckdb.DuckDBPyConnection, sql: str, keys: tuple[str, ...], value: str) -> dict[Any, Any]:
    """``{key tuple: value}`` of one column of a query's answer."""
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return {tuple(row[names.index(k)] for k in keys): row[names.index(value)] for row in cursor.fetchall()}


@pytest.fixture(scope="module")
def shop(seeded_shop):
    con = duckdb.connect(str(seeded_shop.path), read_only=True)
    yield con
    con.close()


def test_the_monthly_median_basket_is_percentile_conts(shop) -> None:
    got = _column(shop, report_query("revenue_by_month"), ("month", "currency"), "median_order_value")
    want = _column(
        shop,
        """
        SELECT CAST(date_trunc('month', o.order_ts) AS DATE) AS month, o.currency,
               CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total_amount) AS DECIMAL(14, 2)) AS m
        FROM orders o WHERE o.status <> 'cancelled'
          AND o.order_id IN (SELECT order_id FROM order_items)
        GROUP BY 1, 2""",
        ("month", "currency"),
        "m",
    )
    assert len(got) > 100
    assert got == want


def test_shipping_medians_and_90th_percentiles_are_percentile_conts(shop) -> None:
    sql = report_query("shipping_performance")
    reference = """
        SELECT sh.carrier, cu.country_code AS destination_country,
               CAST(percentile_cont(0.5) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM (sh.shipped_ts - o.order_ts)) / 3600) AS DECIMAL(8, 1)) AS hours,
               CAST(percentile_cont(0.9) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM (sh.delivered_ts - sh.shipped_ts)) / 86400) AS DECIMAL(8, 2)) AS p90
        FROM shipments sh JOIN orders o ON o.order_id = sh.order_id
        JOIN customers cu ON cu.customer_id = o.customer_id
        WHERE sh.order_id IN (SELECT order_id FROM order_items)
        GROUP BY 1, 2"""
    keys = ("carrier", "destination_country")
    got_hours = _column(shop, sql, keys, "median_hours_to_ship")
    assert len(got_hours) > 50
    assert got_hours == _column(shop, reference, keys, "hours")
    assert _column(shop, sql, keys, "p90_transit_days") == _column(shop, reference, keys, "p90")


def test_the_currency_roll_ups_median_unit_price_is_percentile_conts(shop) -> None:
    got = _column(shop, extract_query("currencies"), ("currency_code",), "median_unit_price")
    want = _column(
        shop,
        """
        SELECT o.currency AS currency_code,
               CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY i.unit_price) AS DECIMAL(14, 2)) AS m
        FROM order_items i JOIN orders o ON o.order_id = i.order_id GROUP BY 1""",
        ("currency_code",),
        "m",
    )
    assert {k: v for k, v in got.items() if v is not None} == want
    assert len(want) > 5


def test_no_flow_query_holds_a_group_whole_for_a_percentile() -> None:
    """``percentile_cont``/``percentile_disc``/``median``/``quantile`` aggregates keep every value
    of a group in memory: a flow's SQL takes percentiles from the middle rows of a sort instead."""
    holistic = ("percentile_cont", "percentile_disc", "median(", "quantile")
    found = [
        f"{path.relative_to(PACKAGES)}: {word}"
        for path in sorted(PACKAGES.glob("flow_*/src/*/sql/**/*.sql"))
        for word in holistic
        if word in path.read_text(encoding="utf-8").lower()
    ]
    assert list(PACKAGES.glob("flow_*/src/*/sql/**/*.sql")), "no flow SQL found"
    assert found == []
