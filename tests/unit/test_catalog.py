"""The table allowlist holds, and every extract (flow_ingest/sql) and report (flow_reports/sql)
runs on real data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from common.catalog import DIMENSIONS, FACTS, TABLES, UnknownTableError, check_table
from flow_ingest.catalog import ENRICHED_TABLES, extract_query
from flow_reports.catalog import REPORTS, report_query

# The primary key of each table: extracts must keep exactly one row per key.
KEYS = {
    "regions": "region_id",
    "countries": "country_code",
    "currencies": "currency_code",
    "stores": "store_id",
    "warehouses": "warehouse_id",
    "suppliers": "supplier_id",
    "categories": "category_id",
    "products": "product_id",
    "customers": "customer_id",
    "promotions": "promotion_id",
    "orders": "order_id",
    "order_items": "order_item_id",
    "payments": "payment_id",
    "shipments": "shipment_id",
    "returns": "return_id",
    "reviews": "review_id",
    "inventory_movements": "movement_id",
    "web_sessions": "session_id",
    "page_views": "view_id",
    "support_tickets": "ticket_id",
}
INGEST_COLUMNS = {
    "orders": {"order_id", "customer_id", "country_code", "currency", "order_ts", "total_amount"},
    "payments": {"payment_id", "order_id", "currency", "paid_ts", "amount", "method"},
}
LAKE_REPORTS = [name for name, spec in REPORTS.items() if spec.lake_tables]
DB_REPORTS = [name for name, spec in REPORTS.items() if not spec.lake_tables]


# --- allowlist ----------------------------------------------------------------------


def test_tables_are_the_twenty_of_the_shop() -> None:
    assert len(TABLES) == 20 == len(set(TABLES))
    assert set(TABLES) == set(KEYS)
    assert set(DIMENSIONS) | set(FACTS) == set(TABLES)
    assert TABLES[:3] == ("regions", "countries", "currencies")


@pytest.mark.parametrize("name", TABLES)
def test_check_table_accepts_every_allowlisted_name(name: str) -> None:
    assert check_table(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "users",
        "ORDERS",
        " orders",
        "orders ",
        '"orders"',
        "orders; DROP TABLE orders",
        "orders--",
        "orders\nUNION SELECT 1",
        "main.orders",
        "",
    ],
)
def test_check_table_rejects_unknown_and_injection_looking_names(name: str) -> None:
    with pytest.raises(UnknownTableError) as caught:
        check_table(name)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"unknown table {name!r}: choose one of regions, countries, ")
    assert message.endswith("support_tickets")
    with pytest.raises(ValueError):
        extract_query(name)


def test_check_table_rejects_non_strings() -> None:
    with pytest.raises(UnknownTableError):
        check_table(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("table", TABLES)
def test_extract_is_one_ordered_select(table: str) -> None:
    sql = extract_query(table)
    assert sql.upper().startswith(("SELECT", "WITH"))
    assert ";" not in sql
    assert "ORDER BY" in sql.upper().rsplit(")", 1)[-1]


def test_enriched_tables_are_orders_and_payments() -> None:
    assert set(ENRICHED_TABLES) == {"orders", "payments"}
    assert set(ENRICHED_TABLES) <= set(TABLES)


# --- reports: names, placeholders ----------------------------------------------------


def test_reports_are_eight_database_and_two_lake_reports() -> None:
    assert len(DB_REPORTS) == 8
    assert sorted(LAKE_REPORTS) == ["payments_eur_by_method", "revenue_eur_by_region"]
    for name, spec in REPORTS.items():
        assert spec.name == name and spec.title and spec.description
        assert "ORDER BY" in spec.sql.upper()
        assert ("{lake}" in spec.sql) == bool(spec.lake_tables)
        assert set(spec.lake_tables) <= set(ENRICHED_TABLES)


@pytest.mark.parametrize("name", ["nope", "revenue_by_month; DROP TABLE orders", ""])
def test_report_query_rejects_unknown_names_in_one_line(name: str) -> None:
    with pytest.raises(ValueError) as caught:
        report_query(name)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"unknown report {name!r}: choose one of revenue_by_month, ")


def test_lake_report_needs_a_lake_folder() -> None:
    with pytest.raises(ValueError, match="reads the lake"):
        report_query("revenue_eur_by_region")


def test_lake_folder_is_substituted_with_quotes_escaped() -> None:
    sql = report_query("payments_eur_by_method", Path("/data/it's lake"))
    assert "{lake}" not in sql
    assert "read_parquet('/data/it''s lake/payments.parquet')" in sql
    assert "read_parquet('/data/it''s lake/orders.parquet')" in sql
    # database reports ignore the lake folder
    assert report_query("top_products", Path("/x")) == report_query("top_products")


# --- against a freshly seeded database -----------------------------------------------


@pytest.fixture(scope="module")
def seeded(seeded_shop) -> Path:
    return seeded_shop.path


@pytest.fixture(scope="module")
def con(seeded: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read-only, as the flows open it."""
    connection = duckdb.connect(str(seeded), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def extracted(con: duckdb.DuckDBPyConnection, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every extract written to Parquet, the way ingest writes the lake."""
    folder = tmp_path_factory.mktemp("extracts")
    for table in TABLES:
        target = (folder / f"{table}.parquet").as_posix().replace("'", "''")
        con.execute(f"COPY ({extract_query(table)}) TO '{target}' (FORMAT parquet)")
    return folder


@pytest.mark.parametrize("table", TABLES)
def test_extract_keeps_one_row_per_source_row(table: str, con: duckdb.DuckDBPyConnection, extracted: Path) -> None:
    key = KEYS[table]
    source_rows = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]  # type: ignore[index]
    rows, keys = con.execute(
        f"SELECT count(*), count(DISTINCT {key}) FROM read_parquet(?)",
        [str(extracted / f"{table}.parquet")],
    ).fetchone()  # type: ignore[misc]
    assert rows == source_rows > 0, "denormalising joins must neither drop nor duplicate rows"
    assert keys == rows


@pytest.mark.parametrize("table", sorted(INGEST_COLUMNS))
def test_enriched_extracts_have_the_columns_ingest_relies_on(
    table: str, con: duckdb.DuckDBPyConnection, extracted: Path
) -> None:
    columns = {
        row[0]
        for row in con.execute(
            "DESCRIBE SELECT * FROM read_parquet(?)", [str(extracted / f"{table}.parquet")]
        ).fetchall()
    }
    assert INGEST_COLUMNS[table] <= columns
    # ingest adds these; the extract must not already carry them
    assert not columns & {"total_amount_eur", "region", "vat_rate", "amount_eur"}


def test_orders_extract_derives_country_and_dates(con: duckdb.DuckDBPyConnection) -> None:
    wrong = con.execute(
        f"""
        SELECT count(*) FROM ({extract_query("orders")}) e
        JOIN customers c ON c.customer_id = e.customer_id
        WHERE e.country_code <> c.country_code
           OR e.order_date <> CAST(e.order_ts AS DATE)
           OR e.order_month <> CAST(date_trunc('month', e.order_ts) AS DATE)
        """
    ).fetchone()[0]  # type: ignore[index]
    assert wrong == 0


@pytest.mark.parametrize("name", DB_REPORTS)
def test_database_report_is_bounded_and_deterministic(name: str, con: duckdb.DuckDBPyConnection) -> None:
    first = con.execute(report_query(name)).fetchall()
    assert 0 < len(first) <= 1000
    assert con.execute(report_query(name)).fetchall() == first


def test_top_products_is_limited_to_one_hundred(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(report_query("top_products")).fetchall()
    assert len(rows) == 100
    units = [row[5] for row in rows]
    assert units == sorted(units, reverse=True)


def _write_minimal_lake(folder: Path) -> None:
    """Two regions, three orders, four payments (one order paid in two parts)."""
    folder.mkdir(parents=True, exist_ok=True)
    lake = folder.as_posix().replace("'", "''")
    with duckdb.connect() as db:
        db.execute(
            f"""
            COPY (
                SELECT * FROM (VALUES
                    (1, 10, 'DE', 'EUR', TIMESTAMP '2024-01-05 10:00', 100.00, 100.00, 'Europe', 0.19),
                    (2, 11, 'SE', 'SEK', TIMESTAMP '2024-01-20 12:00', 1150.00, 100.00, 'Nordics', 0.25),
                    (3, 10, 'DE', 'EUR', TIMESTAMP '2024-02-02 09:30', 50.00, 50.00, 'Europe', 0.19)
                ) AS t(order_id, customer_id, country_code, currency, order_ts, total_amount,
                       total_amount_eur, region, vat_rate)
            ) TO '{lake}/orders.parquet' (FORMAT parquet)
            """
        )
        db.execute(
            f"""
            COPY (
                SELECT * FROM (VALUES
                    (1, 1, 'EUR', TIMESTAMP '2024-01-05 10:01', 100.00, 100.00, 'card'),
                    (2, 2, 'SEK', TIMESTAMP '2024-01-20 12:03', 345.00, 30.00, 'gift_card'),
                    (3, 2, 'SEK', TIMESTAMP '2024-01-20 12:03', 805.00, 70.00, 'card'),
                    (4, 3, 'EUR', TIMESTAMP '2024-02-02 09:31', 50.00, 50.00, 'paypal')
                ) AS t(payment_id, order_id, currency, paid_ts, amount, amount_eur, method)
            ) TO '{lake}/payments.parquet' (FORMAT parquet)
            """
        )


def test_revenue_eur_by_region_on_a_minimal_lake(tmp_path: Path) -> None:
    lake = tmp_path / "it's a lake"
    _write_minimal_lake(lake)
    with duckdb.connect() as db:
        result = db.execute(report_query("revenue_eur_by_region", lake))
        columns = [d[0] for d in result.description]
        rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    assert [(r["region"], str(r["month"])) for r in rows] == [
        ("Europe", "2024-01-01"),
        ("Europe", "2024-02-01"),
        ("Nordics", "2024-01-01"),
    ]
    assert [float(r["revenue_eur"]) for r in rows] == [100.0, 50.0, 100.0]
    assert [r["first_orders"] for r in rows] == [1, 0, 1]
    assert float(rows[2]["vat_eur"]) == pytest.approx(20.0)


def test_payments_eur_by_method_on_a_minimal_lake(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    _write_minimal_lake(lake)
    with duckdb.connect() as db:
        result = db.execute(report_query("payments_eur_by_method", lake))
        columns = [d[0] for d in result.description]
        rows = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    by_key = {(r["method"], r["region"]): r for r in rows}
    assert sorted(by_key) == [
        ("card", "Europe"),
        ("card", "Nordics"),
        ("gift_card", "Nordics"),
        ("paypal", "Europe"),
    ]
    assert float(by_key[("card", "Nordics")]["amount_eur"]) == 70.0
    assert by_key[("gift_card", "Nordics")]["split_payments"] == 1
    assert by_key[("card", "Europe")]["split_payments"] == 0


@pytest.mark.parametrize("name", LAKE_REPORTS)
def test_lake_reports_run_on_enriched_real_extracts(name: str, extracted: Path, tmp_path: Path) -> None:
    """The extract columns plus what ingest adds are enough for the lake reports."""
    lake = tmp_path / "lake"
    lake.mkdir()
    with duckdb.connect() as db:
        db.execute(
            "COPY (SELECT *, total_amount AS total_amount_eur, 'Europe' AS region, "
            "0.2 AS vat_rate FROM read_parquet(?)) TO '" + (lake / "orders.parquet").as_posix() + "' (FORMAT parquet)",
            [str(extracted / "orders.parquet")],
        )
        db.execute(
            "COPY (SELECT *, amount AS amount_eur FROM read_parquet(?)) TO '"
            + (lake / "payments.parquet").as_posix()
            + "' (FORMAT parquet)",
            [str(extracted / "payments.parquet")],
        )
        first = db.execute(report_query(name, lake)).fetchall()
        assert 0 < len(first) <= 1000
        assert db.execute(report_query(name, lake)).fetchall() == first
