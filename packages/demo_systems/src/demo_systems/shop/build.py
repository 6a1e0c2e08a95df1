"""The deterministic demo shop database (DuckDB) that both flows query.

Every value is derived from ``hash()`` of row numbers and a salt, so two seedings with
the same DuckDB version give identical content whatever the thread count. The file is
built beside the target and renamed into place: flow runs that hold the old file open
read-only keep reading it, and nobody ever sees a half-written database.

Sizes are tuned so that, on one thread, every extract and report takes a noticeable
fraction of a second at scale 1: contention for the ``database`` limit is then visible.

``seed-demo --url postgresql+psycopg://...`` loads the same dataset into PostgreSQL instead
(built here in a temporary file, then copied: ``demo_systems.postgres_loader``).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from common.catalog import TABLES
from demo_systems.reference import COUNTRIES, CURRENCIES, FIRST_MONTH, MONTHS
from demo_systems.shop.names import (
    BRANDS,
    CARRIERS,
    CATEGORY_NAMES,
    CITIES,
    COUNTRY_WEIGHTS,
    CURRENCY_INFO,
    DEFAULT_WEIGHT,
    FIRST_NAMES,
    FIXED_ROWS,
    LAST_NAMES,
    NOUNS,
    REVIEW_TITLES,
    SCALED_ROWS,
    SUBCATEGORY_WORDS,
    TICKET_SUBJECTS,
    TOP_CATEGORIES,
    WORDS,
)

if TYPE_CHECKING:
    from common.settings import Settings

_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class SeedResult:
    """What one seeding produced, for the one-line summary and for tests."""

    path: Path
    scale: int
    seconds: float
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def _month_start(month: str, add: int = 0) -> date:
    """First day of ``month`` ("YYYY-MM") plus ``add`` months."""
    year, mon = (int(part) for part in month.split("-"))
    index = year * 12 + (mon - 1) + add
    return date(index // 12, index % 12 + 1, 1)


def _weighted_countries() -> list[str]:
    """Country codes repeated by weight: picking uniformly from it gives a skewed market."""
    return [c.code for c in COUNTRIES for _ in range(COUNTRY_WEIGHTS.get(c.code, DEFAULT_WEIGHT))]


def _region_ids() -> dict[str, int]:
    return {name: i for i, name in enumerate(sorted({c.region for c in COUNTRIES}), start=1)}


def _params(scale: int) -> dict[str, Any]:
    """Every value the generation SQL binds (never interpolated)."""
    start = _month_start(FIRST_MONTH)
    end = _month_start(FIRST_MONTH, MONTHS)
    n = {name: rows * scale for name, rows in SCALED_ROWS.items()} | FIXED_ROWS
    return {
        "start_ts": start.isoformat(),
        "end_ts": end.isoformat(),
        "span_s": int((end - start).total_seconds()),
        "n_stores": n["stores"],
        "n_warehouses": n["warehouses"],
        "n_suppliers": n["suppliers"],
        "n_categories": n["categories"],
        "n_top": TOP_CATEGORIES,
        "n_promotions": n["promotions"],
        "n_customers": n["customers"],
        "n_products": n["products"],
        "n_orders": n["orders"],
        "n_movements": n["inventory_movements"],
        "n_sessions": n["web_sessions"],
        "n_tickets": n["support_tickets"],
        "n_countries": len(COUNTRIES),
        "weighted_countries": _weighted_countries(),
        "first_names": FIRST_NAMES,
        "last_names": LAST_NAMES,
        "words": WORDS,
        "nouns": NOUNS,
        "brands": BRANDS,
        "category_names": CATEGORY_NAMES,
        "sub_words": SUBCATEGORY_WORDS,
        "carriers": CARRIERS,
        "review_titles": REVIEW_TITLES,
        "ticket_subjects": TICKET_SUBJECTS,
    }


# Helpers: u(k, salt) is a uniform double in [0, 1) (53 hash bits, so never 1.0);
# pick(list, k, salt) one element of a list; ri(k, salt, lo, hi) an integer in [lo, hi];
# secs(n) an interval of floor(n) seconds (floor: a timestamp never rounds up to the end);
# cap(s) s with a capital first letter; money(x, minor) x rounded to a currency's minor units
# (JPY has none).
_MACROS = (
    "CREATE TEMP MACRO u(k, s) AS (hash(k, s) >> 11) / 9007199254740992.0",
    "CREATE TEMP MACRO pick(l, k, s) AS l[1 + CAST(floor(u(k, s) * len(l)) AS BIGINT)]",
    "CREATE TEMP MACRO ri(k, s, lo, hi) AS lo + CAST(floor(u(k, s) * (hi - lo + 1)) AS BIGINT)",
    "CREATE TEMP MACRO secs(n) AS to_seconds(CAST(floor(n) AS BIGINT))",
    "CREATE TEMP MACRO cap(s) AS upper(s[1]) || s[2:]",
    "CREATE TEMP MACRO money(x, minor) AS CASE WHEN minor = 0 THEN round(x, 0) ELSE round(x, 2) END",
)

# One statement per step, in dependency order: the files of sql/ in name order (01_, 02_...).
# Reference tables (regions, countries, currencies) are inserted from
# demo_systems.reference before these run.


def steps() -> list[tuple[str, str]]:
    """(step name, SQL) of every generation step, in order."""
    folder = files("demo_systems.shop") / "sql"
    return [
        (p.name.removesuffix(".sql").split("_", 1)[1], p.read_text(encoding="utf-8"))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".sql")
    ]


def _bound(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The named parameters one statement uses (DuckDB rejects unused ones)."""
    return {name: params[name] for name in set(_PARAM.findall(sql))}


def _insert_reference(con: duckdb.DuckDBPyConnection) -> None:
    """regions, countries, currencies and a temp city list, from demo_systems.reference."""
    region_ids = _region_ids()
    con.execute(
        "CREATE TABLE regions (region_id INTEGER PRIMARY KEY, region_code VARCHAR, name VARCHAR,"
        " sales_director VARCHAR, hq_city VARCHAR, created_on DATE)"
    )
    con.executemany(
        "INSERT INTO regions VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                rid,
                name.lower().replace(" ", "-"),
                name,
                f"{FIRST_NAMES[rid * 7 % len(FIRST_NAMES)]} {LAST_NAMES[rid * 11 % len(LAST_NAMES)]}",
                next(CITIES.get(c.code, [c.name])[0] for c in COUNTRIES if c.region == name),
                _month_start(FIRST_MONTH, -12 * rid),
            )
            for name, rid in region_ids.items()
        ],
    )
    con.execute(
        "CREATE TABLE currencies (currency_code VARCHAR PRIMARY KEY, name VARCHAR, symbol VARCHAR,"
        " minor_units INTEGER, price_list_factor DECIMAL(10, 4))"
    )
    con.executemany(
        "INSERT INTO currencies VALUES (?, ?, ?, ?, ?)",
        [(code, *CURRENCY_INFO.get(code, (code, code, 2, 1.0))) for code in CURRENCIES],
    )
    con.execute(
        "CREATE TABLE countries (country_code VARCHAR PRIMARY KEY, name VARCHAR,"
        " region_id INTEGER, currency_code VARCHAR, vat_rate DECIMAL(5, 3), launched_on DATE)"
    )
    con.executemany(
        "INSERT INTO countries VALUES (?, ?, ?, ?, ?, ?)",
        [
            (c.code, c.name, region_ids[c.region], c.currency, c.vat_rate, _month_start(FIRST_MONTH, -3 * i - 6))
            for i, c in enumerate(COUNTRIES)
        ],
    )
    con.execute("CREATE TEMP TABLE _cities (country_code VARCHAR, cities VARCHAR[])")
    con.executemany("INSERT INTO _cities VALUES (?, ?)", [(c.code, CITIES.get(c.code, [c.name])) for c in COUNTRIES])


def _build(con: duckdb.DuckDBPyConnection, scale: int) -> None:
    params = _params(scale)
    for macro in _MACROS:
        con.execute(macro)
    _insert_reference(con)
    for _name, sql in steps():
        con.execute(sql, _bound(sql, params))


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per catalog table (identifiers from the allowlist only)."""
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in TABLES}  # type: ignore[index]


def seed_demo_database(path: Path, scale: int = 1) -> SeedResult:
    """Build the demo database aside, then atomically replace ``path`` with it."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    leftovers = (tmp, tmp.with_name(tmp.name + ".wal"))
    for stale in leftovers:
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        con = duckdb.connect(str(tmp))
        try:
            _build(con, scale)
            rows = table_counts(con)
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, path)
    except BaseException:
        for stale in leftovers:
            stale.unlink(missing_ok=True)
        raise
    return SeedResult(path=path, scale=scale, seconds=time.perf_counter() - started, rows=rows)


def ensure_demo_database(settings: Settings) -> Path | None:
    """Seed the demo database when it is missing (serve-all); None with a real database."""
    if not settings.uses_demo_database:
        return None
    path = settings.demo_db_path
    if not path.exists():
        seed_demo_database(path, settings.demo_scale)
    return path
