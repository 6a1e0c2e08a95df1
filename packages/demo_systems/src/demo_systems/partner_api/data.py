"""The partner's reference data: daily exchange-rate fixings and country facts.

Loaded into an in-memory DuckDB once; every page request is a real query (the fixings are
computed from tick data per request: about half a second of CPU on one core), no sleeps.
"""

from __future__ import annotations

import calendar
import hashlib
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import duckdb

from demo_systems.reference import COUNTRIES, CURRENCIES, FIRST_MONTH, MONTHS

COUNTRIES_PAGE_SIZE = 10

# Plausible EUR value of one unit of each currency; unknown currencies get a hashed base.
_BASE_RATE_TO_EUR: dict[str, float] = {
    "EUR": 1.0,
    "USD": 0.92,
    "GBP": 1.17,
    "CHF": 1.04,
    "SEK": 0.088,
    "NOK": 0.086,
    "DKK": 0.134,
    "PLN": 0.23,
    "CZK": 0.040,
    "CAD": 0.68,
    "JPY": 0.0062,
}


def _months() -> list[tuple[int, int]]:
    year, month = (int(part) for part in FIRST_MONTH.split("-"))
    return [(year + (month - 1 + i) // 12, (month - 1 + i) % 12 + 1) for i in range(MONTHS)]


def _base_rate(currency: str) -> float:
    if currency in _BASE_RATE_TO_EUR:
        return _BASE_RATE_TO_EUR[currency]
    digest = hashlib.sha256(currency.encode()).digest()
    return 0.01 + int.from_bytes(digest[:4], "big") / 2**32  # deterministic, in (0.01, 1.01)


def _fx_columns() -> dict[str, list[Any]]:
    """Daily rates: a seeded, mean-reverting random walk per currency (same on every run)."""
    days: list[tuple[int, date]] = []  # (page, day): one page per month
    for page, (year, month) in enumerate(_months(), start=1):
        first = date(year, month, 1)
        days.extend((page, first + timedelta(d)) for d in range(calendar.monthrange(year, month)[1]))
    cols: dict[str, list[Any]] = {"page": [], "currency": [], "month": [], "day": [], "rate": []}
    for currency in CURRENCIES:
        rng = random.Random(f"fx:{currency}")  # str seeds hash with sha512: stable across runs
        base = _base_rate(currency)
        drift = 0.0
        for page, day in days:
            if currency == "EUR":
                rate = 1.0
            else:
                drift = 0.98 * drift + rng.gauss(0.0, 0.004)
                rate = float(f"{base * (1.0 + drift):.6g}")
            cols["page"].append(page)
            cols["currency"].append(currency)
            cols["month"].append(day.strftime("%Y-%m"))
            cols["day"].append(day)
            cols["rate"].append(rate)
    return cols


@dataclass(frozen=True)
class _Dataset:
    table: str
    select: str
    order_by: str
    pages: int


def build_reference_db() -> tuple[duckdb.DuckDBPyConnection, dict[str, _Dataset]]:
    """Load the reference data into an in-memory DuckDB once, so every page request is a
    real query (DuckDB releases the GIL while it runs)."""
    con = duckdb.connect(":memory:")
    fx = _fx_columns()
    con.execute(
        "CREATE TABLE fx_rates AS SELECT unnest($page) AS page, unnest($currency) AS currency,"
        " unnest($month) AS month, unnest($day)::DATE AS day, unnest($rate)::DOUBLE AS rate_to_eur",
        fx,
    )
    countries = list(COUNTRIES)
    con.execute(
        "CREATE TABLE countries AS SELECT unnest($page) AS page, unnest($code) AS code,"
        " unnest($name) AS name, unnest($region) AS region, unnest($currency) AS currency,"
        " unnest($vat)::DOUBLE AS vat_rate",
        {
            "page": [i // COUNTRIES_PAGE_SIZE + 1 for i in range(len(countries))],
            "code": [c.code for c in countries],
            "name": [c.name for c in countries],
            "region": [c.region for c in countries],
            "currency": [c.currency for c in countries],
            "vat": [c.vat_rate for c in countries],
        },
    )
    datasets = {
        "fx_rates": _Dataset(
            "fx_rates",
            "currency, month, strftime(day, '%Y-%m-%d') AS day, rate_to_eur",
            "currency, day",
            MONTHS,
        ),
        "countries": _Dataset(
            "countries",
            "code, name, region, currency, vat_rate",
            "code",
            max(1, -(-len(countries) // COUNTRIES_PAGE_SIZE)),
        ),
    }
    return con, datasets


# The partner publishes each day's rate as a fixing: the volume-weighted mean of that day's
# intraday quotes, computed from its tick data when asked (like a real rates service, a page
# of fixings costs it real work: about half a second on one core here).
TICKS_PER_DAY = 40_000

_FIXINGS_SQL = """
    WITH ticks AS (
        SELECT d.currency, d.month, d.day, d.rate_to_eur AS anchor,
               CASE WHEN d.currency = 'EUR' THEN 0.0
                    ELSE (CAST(hash(d.currency, d.day, t.i) % 20001 AS BIGINT) - 10000) / 2e6 END AS deviation,
               1 + hash(d.day, t.i, d.currency) % 100 AS volume
        FROM fx_rates d, range(?) t(i)
        WHERE d.page = ?
    )
    SELECT currency, month, strftime(day, '%Y-%m-%d') AS day,
           round(sum(anchor * (1 + deviation) * volume) / sum(volume), 6) AS rate_to_eur
    FROM ticks
    GROUP BY currency, month, day
    ORDER BY currency, day
"""
