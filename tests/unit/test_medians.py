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


def test_inventory_healths_median_units_per_product_is_percentile_conts(shop) -> None:
    got = _column(shop, report_query("inventory_health"), ("warehouse_id",), "median_units_per_product")
    want = _column(
        shop,
        """
        WITH positions AS (
            SELECT warehouse_id, product_id, sum(quantity) AS on_hand
            FROM inventory_movements GROUP BY 1, 2
        )
        SELECT pos.warehouse_id,
               CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(pos.on_hand AS DOUBLE)) AS DECIMAL(10, 1)) AS m
        FROM positions pos
        JOIN products p ON p.product_id = pos.product_id
        JOIN suppliers s ON s.supplier_id = p.supplier_id
        GROUP BY 1""",
        ("warehouse_id",),
        "m",
    )
    assert len(got) > 10
    assert got == want


def test_the_median_days_to_return_per_category_is_percentile_conts(shop) -> None:
    got = _column(shop, report_query("return_rate_by_category"), ("category_id",), "median_days_to_return")
    want = _column(
        shop,
        """
        SELECT coalesce(c.parent_id, c.category_id) AS category_id,
               CAST(percentile_cont(0.5) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM (r.requested_ts - o.order_ts)) / 86400) AS DECIMAL(6, 1)) AS m
        FROM returns r
        JOIN order_items i ON i.order_item_id = r.order_item_id
        JOIN orders o ON o.order_id = i.order_id
        JOIN products p ON p.product_id = i.product_id
        JOIN categories c ON c.category_id = p.category_id
        WHERE o.status = 'completed'
        GROUP BY 1""",
        ("category_id",),
        "m",
    )
    assert len(want) > 5
    assert {k: v for k, v in got.items() if v is not None} == want


def test_support_backlogs_median_and_90th_percentile_are_percentile_conts(shop) -> None:
    sql = report_query("support_backlog")
    reference = """
        SELECT priority, category,
               CAST(percentile_cont(0.5) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM (first_response_ts - opened_ts)) / 3600) AS DECIMAL(10, 2)) AS med,
               CAST(percentile_cont(0.9) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM (resolved_ts - opened_ts)) / 3600) AS DECIMAL(10, 2)) AS p90
        FROM support_tickets t JOIN customers cu ON cu.customer_id = t.customer_id
        GROUP BY 1, 2"""
    keys = ("priority", "category")
    got = _column(shop, sql, keys, "median_hours_to_first_response")
    assert len(got) > 10
    assert got == _column(shop, reference, keys, "med")
    assert _column(shop, sql, keys, "p90_hours_to_resolution") == _column(shop, reference, keys, "p90")


def test_the_regions_median_order_in_euros_is_percentile_conts(shop, tmp_path: Path) -> None:
    """A lake report: its orders come from the lake's Parquet, made here from the shop's orders."""
    lake = tmp_path / "lake"
    lake.mkdir()
    shop.execute(
        f"""
        COPY (SELECT o.order_id, o.customer_id, cu.country_code, o.order_ts, r.name AS region,
                     CAST(o.total_amount AS DECIMAL(18, 2)) AS total_amount_eur, co.vat_rate
              FROM orders o JOIN customers cu ON cu.customer_id = o.customer_id
              JOIN countries co ON co.country_code = cu.country_code
              LEFT JOIN regions r ON r.region_id = co.region_id)
        TO '{lake / "orders.parquet"}' (FORMAT parquet)"""
    )
    got = _column(shop, report_query("revenue_eur_by_region", lake), ("region", "month"), "median_order_eur")
    want = _column(
        shop,
        f"""
        SELECT coalesce(region, 'unknown') AS region, CAST(date_trunc('month', order_ts) AS DATE) AS month,
               CAST(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_amount_eur) AS DECIMAL(14, 2)) AS m
        FROM read_parquet('{lake / "orders.parquet"}') GROUP BY 1, 2""",
        ("region", "month"),
        "m",
    )
    assert len(got) > 20
    assert got == want


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
