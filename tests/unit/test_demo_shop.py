"""The demo database: deterministic, consistent, sized by scale, replaced atomically."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from common.catalog import FACTS, TABLES
from common.settings import Settings
from demo_systems import seed_cli
from demo_systems.reference import COUNTRIES, FIRST_MONTH, MONTHS
from demo_systems.shop import build as seed
from demo_systems.shop import names
from demo_systems.shop.build import SeedResult, ensure_demo_database, seed_demo_database, steps
from support import table_checksums

# (child table, foreign key, parent table, parent key): every non-null key must resolve.
FOREIGN_KEYS = [
    ("countries", "region_id", "regions", "region_id"),
    ("countries", "currency_code", "currencies", "currency_code"),
    ("stores", "country_code", "countries", "country_code"),
    ("warehouses", "country_code", "countries", "country_code"),
    ("suppliers", "country_code", "countries", "country_code"),
    ("categories", "parent_id", "categories", "category_id"),
    ("products", "category_id", "categories", "category_id"),
    ("products", "supplier_id", "suppliers", "supplier_id"),
    ("customers", "country_code", "countries", "country_code"),
    ("orders", "customer_id", "customers", "customer_id"),
    ("orders", "store_id", "stores", "store_id"),
    ("orders", "promotion_id", "promotions", "promotion_id"),
    ("orders", "currency", "currencies", "currency_code"),
    ("order_items", "order_id", "orders", "order_id"),
    ("order_items", "product_id", "products", "product_id"),
    ("payments", "order_id", "orders", "order_id"),
    ("shipments", "order_id", "orders", "order_id"),
    ("shipments", "warehouse_id", "warehouses", "warehouse_id"),
    ("returns", "order_item_id", "order_items", "order_item_id"),
    ("returns", "order_id", "orders", "order_id"),
    ("reviews", "product_id", "products", "product_id"),
    ("reviews", "customer_id", "customers", "customer_id"),
    ("reviews", "order_id", "orders", "order_id"),
    ("inventory_movements", "product_id", "products", "product_id"),
    ("inventory_movements", "warehouse_id", "warehouses", "warehouse_id"),
    ("inventory_movements", "supplier_id", "suppliers", "supplier_id"),
    ("web_sessions", "customer_id", "customers", "customer_id"),
    ("web_sessions", "country_code", "countries", "country_code"),
    ("page_views", "session_id", "web_sessions", "session_id"),
    ("page_views", "product_id", "products", "product_id"),
    ("support_tickets", "customer_id", "customers", "customer_id"),
    ("support_tickets", "order_id", "orders", "order_id"),
]
TINY_ROWS = {name: max(rows // 250, 50) for name, rows in names.SCALED_ROWS.items()}


@pytest.fixture(scope="module")
def seeded(seeded_shop: SeedResult) -> SeedResult:
    return seeded_shop


@pytest.fixture(scope="module")
def con(seeded: SeedResult) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(seeded.path), read_only=True)
    yield connection
    connection.close()


@pytest.fixture()
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the scaled tables so tests about mechanics (not data) run in a blink."""
    monkeypatch.setattr(seed, "SCALED_ROWS", TINY_ROWS)


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchone()[0]  # type: ignore[index]


# --- content ---------------------------------------------------------------------------


def test_every_table_is_built_and_counted(seeded: SeedResult, con: duckdb.DuckDBPyConnection) -> None:
    assert list(seeded.rows) == list(TABLES)
    for table, rows in seeded.rows.items():
        assert scalar(con, f'SELECT count(*) FROM "{table}"') == rows > 0
    assert seeded.scale == 1 and seeded.seconds > 0
    assert seeded.total_rows == sum(seeded.rows.values())


def test_sizes_are_realistic(seeded: SeedResult) -> None:
    rows = seeded.rows
    assert rows["regions"] == len({c.region for c in COUNTRIES})
    assert rows["countries"] == len(COUNTRIES)
    assert rows["customers"] >= 50_000 and rows["products"] >= 20_000
    for fact in ("orders", "order_items", "inventory_movements", "web_sessions", "page_views"):
        assert rows[fact] >= 300_000, fact
    assert rows["order_items"] > rows["orders"]


@pytest.mark.parametrize(("child", "fk", "parent", "pk"), FOREIGN_KEYS)
def test_foreign_keys_resolve(con: duckdb.DuckDBPyConnection, child: str, fk: str, parent: str, pk: str) -> None:
    orphans = scalar(
        con,
        f'SELECT count(*) FROM "{child}" c WHERE c.{fk} IS NOT NULL '
        f'AND NOT EXISTS (SELECT 1 FROM "{parent}" p WHERE p.{pk} = c.{fk})',
    )
    assert orphans == 0


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("orders", "order_id"),
        ("order_items", "order_item_id"),
        ("payments", "payment_id"),
        ("page_views", "view_id"),
        ("customers", "customer_id"),
        ("products", "product_id"),
    ],
)
def test_keys_are_unique_and_dense(con: duckdb.DuckDBPyConnection, table: str, key: str) -> None:
    rows, distinct, low, high = con.execute(
        f'SELECT count(*), count(DISTINCT {key}), min({key}), max({key}) FROM "{table}"'
    ).fetchone()  # type: ignore[misc]
    assert rows == distinct and low == 1 and high == rows


def test_order_currency_is_the_currency_of_the_customers_country(
    con: duckdb.DuckDBPyConnection,
) -> None:
    mismatches = scalar(
        con,
        """SELECT count(*) FROM orders o JOIN customers c USING (customer_id)
           JOIN countries k ON k.country_code = c.country_code
           WHERE o.currency <> k.currency_code""",
    )
    assert mismatches == 0
    expected = {c.code: c.currency for c in COUNTRIES}
    assert dict(con.execute("SELECT country_code, currency_code FROM countries").fetchall()) == expected


@pytest.mark.parametrize(("table", "column"), [("orders", "order_ts"), ("payments", "paid_ts")])
def test_enriched_timestamps_fall_in_the_reference_months(
    con: duckdb.DuckDBPyConnection, table: str, column: str
) -> None:
    """The partner API has a rate per (currency, month) for these months only."""
    first, last, months = con.execute(
        f"SELECT min({column}), max({column}), count(DISTINCT date_trunc('month', {column})) FROM \"{table}\""
    ).fetchone()  # type: ignore[misc]
    year, month = (int(x) for x in FIRST_MONTH.split("-"))
    end_index = year * 12 + month - 1 + MONTHS
    assert (first.year, first.month) == (year, month)
    assert (last.year * 12 + last.month - 1) < end_index
    assert months == MONTHS


def test_order_totals_match_their_lines_and_payments(con: duckdb.DuckDBPyConnection) -> None:
    bad_lines = scalar(
        con,
        """SELECT count(*) FROM orders o JOIN (
               SELECT order_id, count(*) AS n, sum(line_total) AS net FROM order_items GROUP BY 1
           ) i USING (order_id)
           WHERE o.total_amount <> i.net + o.shipping_fee OR o.item_count <> i.n""",
    )
    bad_payments = scalar(
        con,
        """SELECT count(*) FROM orders o JOIN (
               SELECT order_id, sum(amount) AS paid FROM payments GROUP BY 1
           ) p USING (order_id) WHERE o.total_amount <> p.paid""",
    )
    unpaid = scalar(con, "SELECT count(*) FROM orders WHERE order_id NOT IN (SELECT order_id FROM payments)")
    assert (bad_lines, bad_payments, unpaid) == (0, 0, 0)


def test_facts_are_consistent_with_each_other(con: duckdb.DuckDBPyConnection) -> None:
    checks = {
        "store orders shipped": """SELECT count(*) FROM shipments s JOIN orders o USING (order_id)
                                   WHERE o.channel = 'store' OR o.status = 'cancelled'""",
        "returned more than ordered": """SELECT count(*) FROM returns r
                                         JOIN order_items i USING (order_item_id)
                                         WHERE r.quantity > i.quantity OR r.order_id <> i.order_id""",
        "views not matching sessions": """SELECT count(*) FROM web_sessions s LEFT JOIN (
                                              SELECT session_id, count(*) AS n FROM page_views GROUP BY 1
                                          ) v USING (session_id) WHERE coalesce(v.n, 0) <> s.page_view_count""",
        "store in another country": """SELECT count(*) FROM orders o JOIN customers c USING (customer_id)
                                       JOIN stores s ON s.store_id = o.store_id
                                       WHERE s.country_code <> c.country_code""",
        "ordered before signup": """SELECT count(*) FROM orders o JOIN customers c USING (customer_id)
                                    WHERE o.order_ts < c.signup_ts""",
        "delivered before shipped": "SELECT count(*) FROM shipments WHERE delivered_ts < shipped_ts",
        "review by someone else": """SELECT count(*) FROM reviews r JOIN orders o USING (order_id)
                                     WHERE o.customer_id <> r.customer_id""",
    }
    assert {name: scalar(con, sql) for name, sql in checks.items()} == dict.fromkeys(checks, 0)


# --- determinism and scale ---------------------------------------------------------------


def test_seeding_twice_gives_identical_content(seeded: SeedResult, tmp_path: Path) -> None:
    again = seed_demo_database(tmp_path / "again.duckdb", 1)
    assert again.rows == seeded.rows
    assert table_checksums(again.path) == table_checksums(seeded.path)


def test_scale_two_has_more_facts_via_the_cli(tiny: None, tmp_path: Path) -> None:
    runner = CliRunner()
    one, two = tmp_path / "one.duckdb", tmp_path / "two.duckdb"
    for path, scale in ((one, "1"), (two, "2")):
        result = runner.invoke(seed_cli.app, ["--scale", scale, "--path", str(path)])
        assert result.exit_code == 0, result.output
        line = result.output.strip()
        assert "\n" not in line
        assert re.fullmatch(
            rf"seeded {re.escape(str(path))} \(scale {scale}\) in [0-9.]+ s: [0-9,]+ rows in 20 tables",
            line,
        )
    small, large = table_checksums(one), table_checksums(two)
    for table in (*FACTS, "customers", "products"):
        assert large[table][0] > small[table][0], table
    for table in ("regions", "countries", "currencies", "stores", "warehouses", "categories"):
        assert large[table] == small[table], table


# --- atomic replace, failures, CLI ----------------------------------------------------------


def test_replace_is_atomic_for_a_reader_holding_the_old_file(tiny: None, tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    seed_demo_database(path, 1)
    reader = duckdb.connect(str(path), read_only=True)
    try:
        before = scalar(reader, "SELECT count(*) FROM orders")
        seed_demo_database(path, 3)  # not blocked by the open reader
        assert scalar(reader, "SELECT count(*) FROM orders") == before
        assert scalar(reader, "SELECT sum(total_amount) > 0 FROM orders") is True
    finally:
        reader.close()
    with duckdb.connect(str(path), read_only=True) as fresh:
        assert scalar(fresh, "SELECT count(*) FROM orders") == 3 * before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.duckdb"]


def test_failed_seed_keeps_the_old_file_and_leaves_no_temp(
    tiny: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "shop.duckdb"
    seed_demo_database(path, 1)
    good = table_checksums(path)
    monkeypatch.setattr(seed, "steps", lambda: [*steps(), ("boom", "SELECT * FROM no_such_table")])
    with pytest.raises(duckdb.CatalogException):
        seed_demo_database(path, 2)
    assert table_checksums(path) == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.duckdb"]


def test_cli_keeps_an_existing_file_without_force(tiny: None, tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    path.write_bytes(b"not a database")
    result = CliRunner().invoke(seed_cli.app, ["--path", str(path)])
    assert result.exit_code == 0
    assert "already" in result.output and str(path) in result.output
    assert path.read_bytes() == b"not a database"
    forced = CliRunner().invoke(seed_cli.app, ["--path", str(path), "--force", "--scale", "1"])
    assert forced.exit_code == 0, forced.output
    assert table_checksums(path)["orders"][0] == TINY_ROWS["orders"]


@pytest.mark.parametrize("scale", ["0", "-3"])
def test_cli_rejects_a_scale_below_one_in_one_line(scale: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(seed_cli.app, ["--scale", scale, "--path", str(tmp_path / "x.duckdb")])
    assert result.exit_code != 0
    assert result.output.strip() == f"error: --scale must be at least 1, got {scale}"
    assert not list(tmp_path.iterdir())


def test_seed_function_rejects_a_scale_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        seed_demo_database(tmp_path / "x.duckdb", 0)


def test_ensure_demo_database_seeds_only_when_missing(tiny: None, tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path, data_dir=tmp_path / "data", database_url=None)
    path = ensure_demo_database(settings)
    assert path == settings.demo_db_path and path.is_file()
    stamp = path.stat().st_mtime_ns
    assert ensure_demo_database(settings) == path
    assert path.stat().st_mtime_ns == stamp
    real = Settings(project_dir=tmp_path, database_url=SecretStr("postgresql://db.example/shop"))
    assert ensure_demo_database(real) is None
