"""The deterministic demo shop database (DuckDB) that both flows query.

Every value is derived from ``hash()`` of row numbers and a salt, so two seedings with
the same DuckDB version give identical content whatever the thread count. The file is
built beside the target and renamed into place: flow runs that hold the old file open
read-only keep reading it, and nobody ever sees a half-written database.

Sizes are tuned so that, on one thread, every extract and report takes a noticeable
fraction of a second at scale 1: contention for the ``database`` limit is then visible.

``seed-demo --url postgresql+psycopg://...`` loads the same dataset into PostgreSQL instead
(built here in a temporary file, then copied: ``common.seed_postgres``).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import duckdb
import typer

from common.catalog import TABLES
from common.reference import COUNTRIES, CURRENCIES, FIRST_MONTH, MONTHS

if TYPE_CHECKING:
    from common.settings import Settings

# Row counts at scale 1. "Large" tables (facts, customers, products) grow with scale;
# the other dimensions have a fixed, realistic size.
FIXED_ROWS: dict[str, int] = {
    "stores": 600,
    "warehouses": 48,
    "suppliers": 2_500,
    "categories": 240,  # the first TOP_CATEGORIES are top level, the rest their children
    "promotions": 800,
}
SCALED_ROWS: dict[str, int] = {
    "customers": 120_000,
    "products": 50_000,
    "orders": 500_000,  # order_items, payments, shipments, returns, reviews follow orders
    "inventory_movements": 1_200_000,
    "web_sessions": 500_000,  # page_views follow sessions
    "support_tickets": 200_000,
}
TOP_CATEGORIES = 24

# Shares of customers (and stores, warehouses, sessions) per country, in percent-ish
# weights; countries missing here get DEFAULT_WEIGHT.
COUNTRY_WEIGHTS: dict[str, int] = {"DE": 16, "GB": 12, "US": 14, "FR": 10, "NL": 6, "IT": 7, "ES": 6}
DEFAULT_WEIGHT = 3

# name, symbol, minor units, price-list factor (local list price = EUR list price x factor:
# a shop's price list, not an exchange rate; the partner API is the authority on rates).
CURRENCY_INFO: dict[str, tuple[str, str, int, float]] = {
    "EUR": ("Euro", "€", 2, 1.0),
    "SEK": ("Swedish krona", "kr", 2, 11.5),
    "NOK": ("Norwegian krone", "kr", 2, 11.7),
    "DKK": ("Danish krone", "kr.", 2, 7.45),
    "PLN": ("Polish zloty", "zł", 2, 4.3),
    "CZK": ("Czech koruna", "Kč", 2, 25.0),
    "CHF": ("Swiss franc", "CHF", 2, 0.95),
    "GBP": ("Pound sterling", "£", 2, 0.86),
    "USD": ("US dollar", "$", 2, 1.09),
    "CAD": ("Canadian dollar", "C$", 2, 1.48),
    "JPY": ("Japanese yen", "¥", 0, 160.0),
}

CITIES: dict[str, list[str]] = {
    "DE": ["Berlin", "Hamburg", "Munich", "Cologne", "Frankfurt", "Leipzig"],
    "FR": ["Paris", "Lyon", "Marseille", "Toulouse", "Lille"],
    "NL": ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven"],
    "ES": ["Madrid", "Barcelona", "Valencia", "Seville"],
    "IT": ["Milan", "Rome", "Turin", "Naples", "Bologna"],
    "SE": ["Stockholm", "Gothenburg", "Malmö"],
    "NO": ["Oslo", "Bergen", "Trondheim"],
    "DK": ["Copenhagen", "Aarhus", "Odense"],
    "PL": ["Warsaw", "Kraków", "Wrocław", "Gdańsk"],
    "CZ": ["Prague", "Brno", "Ostrava"],
    "CH": ["Zurich", "Geneva", "Basel", "Bern"],
    "GB": ["London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol"],
    "IE": ["Dublin", "Cork", "Galway"],
    "US": ["New York", "Chicago", "Austin", "Seattle", "Boston", "Denver", "Atlanta"],
    "CA": ["Toronto", "Montreal", "Vancouver", "Calgary"],
    "JP": ["Tokyo", "Osaka", "Nagoya", "Fukuoka"],
}

FIRST_NAMES = [
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Grace", "Hugo", "Ines", "Jonas",
    "Katja", "Liam", "Mia", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sven", "Tara",
    "Umar", "Vera", "William", "Xenia", "Yusuf", "Zoe", "Aiko", "Lars", "Marta", "Pierre",
]
LAST_NAMES = [
    "Müller", "Smith", "Dubois", "Rossi", "García", "Jansen", "Nowak", "Svensson", "Hansen",
    "Novák", "Murphy", "Johnson", "Tremblay", "Sato", "Schmidt", "Martin", "Bianchi",
    "López", "de Vries", "Kowalski", "Lindqvist", "Berg", "Jensen", "Dvořák", "Walsh",
    "Brown", "Roy", "Suzuki", "Weber", "Moreau",
]
WORDS = [
    "organic", "cotton", "classic", "slim", "premium", "recycled", "lightweight", "durable",
    "waterproof", "vintage", "modern", "compact", "wireless", "ceramic", "wooden", "linen",
    "merino", "stainless", "handmade", "everyday", "travel", "outdoor", "kitchen", "studio",
]
NOUNS = [
    "jacket", "mug", "backpack", "lamp", "sneaker", "blanket", "speaker", "bottle", "scarf",
    "kettle", "notebook", "chair", "headphones", "vase", "towel", "watch", "shirt", "pan",
]
BRANDS = ["Nordlys", "Atelier 9", "Kumo", "Brightwater", "Fjell", "Casa Verde", "Ironleaf",
          "Polaris", "Mareva", "Urbano", "Tidewell", "Hanami"]
CATEGORY_NAMES = [
    "Clothing", "Shoes", "Home", "Kitchen", "Electronics", "Outdoor", "Beauty", "Toys",
    "Sports", "Garden", "Office", "Books", "Bags", "Jewellery", "Pets", "Baby",
]
SUBCATEGORY_WORDS = ["Essentials", "Accessories", "Basics", "Premium", "Kids", "Pro",
                     "Travel", "Eco", "Seasonal", "Classics"]
CARRIERS = ["DHL", "UPS", "FedEx", "DPD", "GLS", "PostNord", "Royal Mail", "Yamato", "Canada Post"]
REVIEW_TITLES = ["Love it", "Great value", "Not as described", "Does the job", "Fast delivery",
                 "Disappointed", "Exactly what I needed", "Good quality", "Runs small",
                 "Would buy again"]
TICKET_SUBJECTS = ["Where is my order?", "Refund not received", "Wrong size delivered",
                   "Cannot log in", "Payment declined", "Item arrived damaged",
                   "Change delivery address", "Question about warranty", "Missing item",
                   "Cancel my order"]

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
# secs(n) an interval of floor(n) seconds (floor: a timestamp never rounds up to the end); cap(s) s with a capital first letter; money(x, minor)
# x rounded to a currency's minor units (JPY has none).
_MACROS = (
    "CREATE TEMP MACRO u(k, s) AS (hash(k, s) >> 11) / 9007199254740992.0",
    "CREATE TEMP MACRO pick(l, k, s) AS l[1 + CAST(floor(u(k, s) * len(l)) AS BIGINT)]",
    "CREATE TEMP MACRO ri(k, s, lo, hi) AS lo + CAST(floor(u(k, s) * (hi - lo + 1)) AS BIGINT)",
    "CREATE TEMP MACRO secs(n) AS to_seconds(CAST(floor(n) AS BIGINT))",
    "CREATE TEMP MACRO cap(s) AS upper(s[1]) || s[2:]",
    "CREATE TEMP MACRO money(x, minor) AS CASE WHEN minor = 0 THEN round(x, 0) ELSE round(x, 2) END",
)

# One statement per step, in dependency order. Reference tables (regions, countries,
# currencies) are inserted from common.reference before these run.
_STEPS: tuple[tuple[str, str], ...] = (
    ("_geo", """
        CREATE TEMP TABLE _geo AS
        SELECT c.country_code, c.currency_code, cu.minor_units, cu.price_list_factor,
               row_number() OVER (ORDER BY c.country_code) AS country_no
        FROM countries c JOIN currencies cu ON cu.currency_code = c.currency_code
    """),
    ("stores", """
        CREATE TABLE stores AS
        WITH s AS (
            SELECT range + 1 AS store_id,
                   -- the first stores cover every country once, the rest follow the market
                   CASE WHEN range < $n_countries
                        THEN (SELECT country_code FROM _geo WHERE country_no = range + 1)
                        ELSE pick($weighted_countries, range, 'store-country') END AS country_code
            FROM range($n_stores)
        )
        SELECT s.store_id,
               'ST-' || lpad(CAST(s.store_id AS VARCHAR), 5, '0') AS store_code,
               pick(c.cities, s.store_id, 'store-city') || ' '
                   || pick(['Centre', 'Mall', 'Station', 'Outlet', 'Harbour', 'Old Town'],
                           s.store_id, 'store-name') AS name,
               s.country_code,
               pick(c.cities, s.store_id, 'store-city') AS city,
               ri(s.store_id, 'street-no', 1, 240) || ' '
                   || pick($last_names, s.store_id, 'street') || ' Street' AS street_address,
               lpad(CAST(ri(s.store_id, 'zip', 1000, 99999) AS VARCHAR), 5, '0') AS postal_code,
               pick(['flagship', 'mall', 'high street', 'outlet', 'pop-up'], s.store_id, 'type')
                   AS store_type,
               ri(s.store_id, 'area', 120, 4200) AS floor_area_m2,
               CAST($start_ts AS DATE) - CAST(ri(s.store_id, 'opened', 30, 5000) AS INTEGER)
                   AS opened_on,
               pick($first_names, s.store_id, 'mgr-f') || ' '
                   || pick($last_names, s.store_id, 'mgr-l') AS manager_name,
               '+' || ri(s.store_id, 'phone', 10000000000, 99999999999) AS phone
        FROM s JOIN _cities c USING (country_code)
        ORDER BY s.store_id
    """),
    ("warehouses", """
        CREATE TABLE warehouses AS
        WITH w AS (
            SELECT range + 1 AS warehouse_id,
                   CASE WHEN range < $n_countries
                        THEN (SELECT country_code FROM _geo WHERE country_no = range + 1)
                        ELSE pick($weighted_countries, range, 'wh-country') END AS country_code
            FROM range($n_warehouses)
        )
        SELECT w.warehouse_id,
               'WH-' || w.country_code || '-' || lpad(CAST(w.warehouse_id AS VARCHAR), 3, '0')
                   AS code,
               pick(c.cities, w.warehouse_id, 'wh-city') || ' Distribution Centre ' || w.warehouse_id
                   AS name,
               w.country_code,
               pick(c.cities, w.warehouse_id, 'wh-city') AS city,
               ri(w.warehouse_id, 'capacity', 5000, 250000) AS capacity_m3,
               u(w.warehouse_id, 'automated') < 0.4 AS is_automated,
               CAST($start_ts AS DATE) - CAST(ri(w.warehouse_id, 'opened', 60, 6000) AS INTEGER)
                   AS opened_on
        FROM w JOIN _cities c USING (country_code)
        ORDER BY w.warehouse_id
    """),
    ("_country_sites", """
        CREATE TEMP TABLE _country_sites AS
        SELECT g.country_code,
               (SELECT list(store_id ORDER BY store_id) FROM stores s
                WHERE s.country_code = g.country_code) AS store_ids,
               (SELECT list(warehouse_id ORDER BY warehouse_id) FROM warehouses w
                WHERE w.country_code = g.country_code) AS warehouse_ids
        FROM _geo g
    """),
    ("suppliers", """
        CREATE TABLE suppliers AS
        SELECT range + 1 AS supplier_id,
               pick($brands, range, 'sup-brand') || ' ' || pick($nouns, range, 'sup-noun')
                   || ' ' || pick(['GmbH', 'Ltd', 'AB', 'S.A.', 'Inc.', 'B.V.', 'K.K.'], range, 'sup-form')
                   || ' #' || (range + 1) AS name,
               pick($weighted_countries, range, 'sup-country') AS country_code,
               pick($first_names, range, 'sup-f') || ' ' || pick($last_names, range, 'sup-l')
                   AS contact_name,
               'orders+' || (range + 1) || '@supplier' || (range % 97) || '.example.com'
                   AS contact_email,
               ri(range, 'lead', 2, 45) AS lead_time_days,
               pick([14, 30, 45, 60], range, 'terms') AS payment_terms_days,
               CAST(1 + 4 * u(range, 'sup-rating') AS DECIMAL(3, 2)) AS rating,
               CAST($start_ts AS DATE) - CAST(ri(range, 'since', 30, 4000) AS INTEGER)
                   AS active_since
        FROM range($n_suppliers)
    """),
    ("categories", """
        CREATE TABLE categories AS
        WITH c AS (
            SELECT range + 1 AS category_id,
                   CASE WHEN range < $n_top THEN NULL
                        ELSE ri(range, 'parent', 1, $n_top) END AS parent_id
            FROM range($n_categories)
        ), named AS (
            SELECT c.*,
                   CASE WHEN parent_id IS NULL
                        THEN $category_names[1 + (category_id - 1) % len($category_names)]
                             || CASE WHEN category_id > len($category_names)
                                     THEN ' ' || category_id ELSE '' END
                        ELSE pick($sub_words, category_id, 'cat-sub') || ' '
                             || pick($nouns, category_id, 'cat-noun') || 's ' || category_id
                   END AS name
            FROM c
        )
        SELECT category_id, parent_id, name,
               lower(replace(name, ' ', '-')) AS slug,
               CASE WHEN parent_id IS NULL THEN 1 ELSE 2 END AS depth,
               CAST(15 + 40 * u(category_id, 'margin') AS DECIMAL(5, 2)) AS target_margin_pct
        FROM named
        ORDER BY category_id
    """),
    ("promotions", """
        CREATE TABLE promotions AS
        WITH p AS (
            SELECT range + 1 AS promotion_id,
                   CAST($start_ts AS DATE)
                       + CAST(floor(u(range, 'promo-start') * ($span_s / 86400 - 14)) AS INTEGER)
                       AS starts_on
            FROM range($n_promotions)
        )
        SELECT promotion_id,
               upper(pick($words, promotion_id, 'promo-code')) || ri(promotion_id, 'pct', 5, 40)
                   || '-' || promotion_id AS code,
               cap(pick($words, promotion_id, 'promo-w')) || ' '
                   || pick($nouns, promotion_id, 'promo-n') || ' days' AS name,
               CAST(ri(promotion_id, 'pct', 5, 40) AS DECIMAL(5, 2)) AS discount_pct,
               pick(['all', 'web', 'store', 'app'], promotion_id, 'promo-channel') AS channel,
               starts_on,
               starts_on + CAST(ri(promotion_id, 'promo-len', 3, 30) AS INTEGER) AS ends_on,
               CAST(ri(promotion_id, 'budget', 10, 500) * 1000 AS DECIMAL(12, 2)) AS budget_eur
        FROM p
    """),
    ("products", """
        CREATE TABLE products AS
        SELECT range + 1 AS product_id,
               'SKU-' || lpad(CAST(range + 1 AS VARCHAR), 8, '0') AS sku,
               cap(pick($words, range, 'p-w1')) || ' ' || pick($words, range, 'p-w2') || ' '
                   || pick($nouns, range, 'p-noun') AS name,
               ri(range, 'p-cat', $n_top + 1, $n_categories) AS category_id,
               ri(range, 'p-sup', 1, $n_suppliers) AS supplier_id,
               pick($brands, range, 'p-brand') AS brand,
               pick(['black', 'white', 'navy', 'sand', 'olive', 'red', 'grey', 'teal'], range, 'p-color')
                   AS color,
               pick(['XS', 'S', 'M', 'L', 'XL', 'one size'], range, 'p-size') AS size,
               ri(range, 'p-weight', 40, 12000) AS weight_g,
               CAST(round(4.99 + 295 * pow(u(range, 'p-price'), 2), 2) AS DECIMAL(10, 2))
                   AS list_price_eur,
               CAST(round((4.99 + 295 * pow(u(range, 'p-price'), 2))
                          * (0.35 + 0.3 * u(range, 'p-cost')), 2) AS DECIMAL(10, 2))
                   AS unit_cost_eur,
               'Our ' || pick($words, range, 'd1') || ', ' || pick($words, range, 'd2') || ' '
                   || pick($nouns, range, 'p-noun') || ' by ' || pick($brands, range, 'p-brand')
                   || '. Made to last with ' || pick($words, range, 'd3') || ' materials; ships in '
                   || ri(range, 'd-days', 2, 5) || ' days. Care: '
                   || pick(['machine wash 30°C', 'wipe clean', 'hand wash only', 'do not tumble dry'],
                           range, 'd-care') || '.' AS description,
               CAST($start_ts AS DATE) - CAST(ri(range, 'p-launch', -600, 1500) AS INTEGER)
                   AS launched_on,
               u(range, 'p-disc') < 0.07 AS is_discontinued
        FROM range($n_products)
    """),
    ("customers", """
        CREATE TABLE customers AS
        WITH c AS (
            SELECT range + 1 AS customer_id,
                   pick($weighted_countries, range, 'cust-country') AS country_code,
                   pick($first_names, range, 'cust-f') AS first_name,
                   pick($last_names, range, 'cust-l') AS last_name
            FROM range($n_customers)
        )
        SELECT c.customer_id,
               lower(replace(c.first_name, ' ', '')) || '.' || lower(replace(c.last_name, ' ', ''))
                   || '.' || c.customer_id || '@mail.example.com' AS email,
               c.first_name, c.last_name, c.country_code,
               pick(ci.cities, c.customer_id, 'cust-city') AS city,
               lpad(CAST(ri(c.customer_id, 'cust-zip', 1000, 99999) AS VARCHAR), 5, '0') AS postal_code,
               ri(c.customer_id, 'birth', 1945, 2006) AS birth_year,
               pick(['bronze', 'bronze', 'bronze', 'silver', 'silver', 'gold', 'platinum'],
                    c.customer_id, 'tier') AS loyalty_tier,
               u(c.customer_id, 'optin') < 0.55 AS marketing_opt_in,
               -- signed up from a year before the order range until a month before its end
               CAST($start_ts AS TIMESTAMP) - INTERVAL 365 DAY
                   + secs(u(c.customer_id, 'signup') * ($span_s + (365 - 30) * 86400)) AS signup_ts
        FROM c JOIN _cities ci USING (country_code)
    """),
    ("_order_headers", """
        CREATE TEMP TABLE _order_headers AS
        WITH o AS (
            SELECT range + 1 AS order_id,
                   -- frequent buyers: low customer ids order more often
                   1 + CAST(floor($n_customers * pow(u(range, 'o-cust'), 1.7)) AS BIGINT)
                       AS customer_id,
                   pick(['web', 'web', 'web', 'app', 'app', 'store', 'store'], range, 'o-channel')
                       AS channel
            FROM range($n_orders)
        ), t AS (
            SELECT o.*, c.country_code, c.signup_ts,
                   greatest(c.signup_ts, CAST($start_ts AS TIMESTAMP)) AS lo
            FROM o JOIN customers c USING (customer_id)
        )
        SELECT t.order_id, t.customer_id, t.country_code, t.channel,
               CASE WHEN t.channel = 'store'
                    THEN pick(s.store_ids, t.order_id, 'o-store') END AS store_id,
               t.lo + secs(u(t.order_id, 'o-ts')
                           * (epoch(CAST($end_ts AS TIMESTAMP)) - epoch(t.lo))) AS order_ts,
               g.currency_code AS currency, g.minor_units, g.price_list_factor,
               CASE WHEN u(t.order_id, 'o-promo') < 0.12
                    THEN ri(t.order_id, 'o-promo-id', 1, $n_promotions) END AS promotion_id,
               CASE WHEN u(t.order_id, 'o-promo') < 0.12
                    THEN CAST(ri(t.order_id, 'o-promo-pct', 5, 30) AS DECIMAL(5, 2))
                    ELSE CAST(0 AS DECIMAL(5, 2)) END AS discount_pct,
               1 + CAST(floor(5 * pow(u(t.order_id, 'o-items'), 1.8)) AS INTEGER) AS item_count,
               u(t.order_id, 'o-status') AS status_u
        FROM t JOIN _geo g USING (country_code)
               JOIN _country_sites s USING (country_code)
    """),
    ("order_items", """
        CREATE TABLE order_items AS
        WITH offsets AS (
            SELECT order_id, minor_units, price_list_factor, discount_pct, item_count,
                   CAST(sum(item_count) OVER (ORDER BY order_id) - item_count AS BIGINT) AS first_id
            FROM _order_headers
        ), lines AS (
            SELECT order_id, minor_units, price_list_factor, discount_pct, first_id,
                   unnest(range(item_count)) + 1 AS line_no
            FROM offsets
        ), priced AS (
            SELECT l.order_id, l.line_no, l.first_id + l.line_no AS order_item_id,
                   1 + CAST(floor($n_products * pow(u(l.order_id * 8 + l.line_no, 'i-prod'), 2.2))
                            AS BIGINT) AS product_id,
                   1 + CAST(floor(4 * pow(u(l.order_id * 8 + l.line_no, 'i-qty'), 3)) AS INTEGER)
                       AS quantity,
                   l.minor_units, l.price_list_factor, l.discount_pct
            FROM lines l
        ), p AS (
            SELECT priced.*,
                   CAST(money(pr.list_price_eur * priced.price_list_factor, priced.minor_units)
                        AS DECIMAL(14, 2)) AS unit_price
            FROM priced JOIN products pr USING (product_id)
        )
        SELECT order_item_id, order_id, line_no, product_id, quantity, unit_price,
               CAST(money(quantity * unit_price * discount_pct / 100, minor_units)
                    AS DECIMAL(14, 2)) AS discount_amount,
               CAST(quantity * unit_price
                    - money(quantity * unit_price * discount_pct / 100, minor_units)
                    AS DECIMAL(14, 2)) AS line_total
        FROM p
    """),
    ("orders", """
        CREATE TABLE orders AS
        WITH totals AS (
            SELECT order_id, sum(quantity * unit_price) AS subtotal,
                   sum(discount_amount) AS discount_amount, sum(line_total) AS net
            FROM order_items GROUP BY order_id
        ), o AS (
            SELECT h.*, t.subtotal, t.discount_amount, t.net,
                   CASE WHEN h.channel = 'store' OR t.net >= 60 * h.price_list_factor
                        THEN CAST(0 AS DECIMAL(14, 2))
                        ELSE CAST(money(4.95 * h.price_list_factor, h.minor_units) AS DECIMAL(14, 2))
                   END AS shipping_fee
            FROM _order_headers h JOIN totals t USING (order_id)
        )
        SELECT order_id, customer_id, store_id, channel, order_ts,
               CASE WHEN status_u < 0.03 THEN 'cancelled'
                    WHEN order_ts >= CAST($end_ts AS TIMESTAMP) - INTERVAL 2 DAY THEN 'processing'
                    WHEN channel <> 'store'
                         AND order_ts >= CAST($end_ts AS TIMESTAMP) - INTERVAL 6 DAY THEN 'shipped'
                    ELSE 'completed' END AS status,
               currency, promotion_id, item_count,
               CAST(subtotal AS DECIMAL(14, 2)) AS subtotal,
               CAST(discount_amount AS DECIMAL(14, 2)) AS discount_amount,
               shipping_fee,
               CAST(net + shipping_fee AS DECIMAL(14, 2)) AS total_amount
        FROM o
    """),
    ("payments", """
        CREATE TABLE payments AS
        WITH parts AS (
            -- 8 % of non-store orders are split: part of it on a gift card
            SELECT o.order_id, o.channel, o.status, o.currency, o.order_ts, o.total_amount,
                   cu.minor_units,
                   unnest(CASE WHEN o.channel <> 'store' AND u(o.order_id, 'pay-split') < 0.08
                               THEN [1, 2] ELSE [0] END) AS part
            FROM orders o JOIN currencies cu ON cu.currency_code = o.currency
        )
        SELECT row_number() OVER (ORDER BY order_id, part) AS payment_id,
               order_id,
               CASE WHEN part = 1 THEN 'gift_card'
                    WHEN channel = 'store'
                         THEN pick(['card', 'card', 'card', 'cash', 'apple_pay'], order_id, 'pay-m')
                    ELSE pick(['card', 'card', 'card', 'card', 'paypal', 'paypal', 'klarna',
                               'apple_pay', 'bank_transfer'], order_id, 'pay-m') END AS method,
               CASE WHEN status = 'cancelled' THEN 'refunded'
                    WHEN status = 'processing' THEN 'authorized'
                    ELSE 'captured' END AS status,
               currency,
               CAST(CASE part WHEN 0 THEN total_amount
                              WHEN 1 THEN money(total_amount * 0.3, minor_units)
                              ELSE total_amount - money(total_amount * 0.3, minor_units) END
                    AS DECIMAL(14, 2)) AS amount,
               -- paid in the order's minutes, never after the range: the partner API has
               -- exchange rates for the reference months only
               least(order_ts + secs(ri(order_id * 3 + part, 'pay-delay', 5, 1800)),
                     CAST($end_ts AS TIMESTAMP) - INTERVAL 1 SECOND) AS paid_ts,
               'psp_' || lower(hex(hash(order_id, part, 'psp'))) AS provider_ref
        FROM parts
    """),
    ("shipments", """
        CREATE TABLE shipments AS
        WITH o AS (
            SELECT o.order_id, o.order_ts, o.status, o.item_count, c.country_code
            FROM orders o JOIN customers c USING (customer_id)
            WHERE o.channel <> 'store' AND o.status IN ('completed', 'shipped')
        ), s AS (
            SELECT o.*, pick(cs.warehouse_ids, o.order_id, 'sh-wh') AS warehouse_id,
                   o.order_ts + secs(ri(o.order_id, 'sh-ship', 3600, 3 * 86400)) AS shipped_ts
            FROM o JOIN _country_sites cs USING (country_code)
        )
        SELECT row_number() OVER (ORDER BY order_id) AS shipment_id,
               order_id, warehouse_id,
               pick($carriers, order_id, 'sh-carrier') AS carrier,
               upper(hex(hash(order_id, 'tracking'))) AS tracking_number,
               shipped_ts,
               CAST(order_ts AS DATE) + CAST(ri(order_id, 'sh-promise', 3, 6) AS INTEGER)
                   AS promised_date,
               CASE WHEN status = 'completed'
                    THEN shipped_ts + secs(3600 * (12 + 120 * pow(u(order_id, 'sh-transit'), 2)))
               END AS delivered_ts,
               CAST(3.5 + 0.8 * item_count + 6 * u(order_id, 'sh-cost') AS DECIMAL(10, 2))
                   AS shipping_cost_eur,
               ri(order_id, 'sh-weight', 200, 4000) * item_count AS parcel_weight_g
        FROM s
    """),
    ("returns", """
        CREATE TABLE returns AS
        WITH r AS (
            SELECT i.order_item_id, i.order_id, i.quantity, i.unit_price, o.currency, o.order_ts
            FROM order_items i JOIN orders o USING (order_id)
            WHERE o.status = 'completed'
              AND u(i.order_item_id, 'ret') < 0.06 + 0.12 * u(i.product_id, 'ret-prone')
        )
        SELECT row_number() OVER (ORDER BY order_item_id) AS return_id,
               order_item_id, order_id,
               1 + CAST(floor(u(order_item_id, 'ret-qty') * quantity) AS INTEGER) AS quantity,
               pick(['too small', 'too large', 'damaged', 'not as described', 'changed mind',
                     'late delivery', 'wrong item'], order_item_id, 'ret-reason') AS reason,
               CAST((1 + floor(u(order_item_id, 'ret-qty') * quantity)) * unit_price
                    AS DECIMAL(14, 2)) AS refund_amount,
               currency,
               order_ts + secs(86400 * ri(order_item_id, 'ret-req', 3, 28)) AS requested_ts,
               CASE WHEN u(order_item_id, 'ret-recv') < 0.9
                    THEN order_ts + secs(86400 * ri(order_item_id, 'ret-req', 3, 28)
                                         + 86400 * ri(order_item_id, 'ret-transit', 2, 10))
               END AS received_ts,
               pick(['resellable', 'resellable', 'resellable', 'damaged', 'opened'],
                    order_item_id, 'ret-cond') AS condition
        FROM r
    """),
    ("reviews", """
        CREATE TABLE reviews AS
        WITH r AS (
            SELECT i.order_item_id, i.product_id, o.customer_id, o.order_id, o.order_ts,
                   u(i.order_item_id, 'rev-rating') AS ru
            FROM order_items i JOIN orders o USING (order_id)
            WHERE o.status = 'completed' AND u(i.order_item_id, 'rev') < 0.3
        )
        SELECT row_number() OVER (ORDER BY order_item_id) AS review_id,
               product_id, customer_id, order_id,
               CASE WHEN ru < 0.05 THEN 1 WHEN ru < 0.12 THEN 2 WHEN ru < 0.25 THEN 3
                    WHEN ru < 0.55 THEN 4 ELSE 5 END AS rating,
               pick($review_titles, order_item_id, 'rev-title') AS title,
               'I bought this ' || pick($words, order_item_id, 'rev-w1') || ' '
                   || pick($nouns, order_item_id, 'rev-n') || ' for my '
                   || pick(['partner', 'kids', 'office', 'trip', 'home', 'friend'], order_item_id, 'rev-for')
                   || '. ' || pick(['Quality is great', 'Colour is a bit off', 'Fits as expected',
                                    'Packaging was poor', 'Arrived quickly', 'Sturdier than it looks'],
                                   order_item_id, 'rev-s1')
                   || ' and ' || pick(['I would recommend it.', 'the price is fair.',
                                       'support was helpful.', 'I expected more.'],
                                      order_item_id, 'rev-s2') AS body,
               order_ts + secs(86400 * ri(order_item_id, 'rev-days', 5, 60)) AS created_ts,
               CAST(floor(40 * pow(u(order_item_id, 'rev-votes'), 4)) AS INTEGER) AS helpful_votes,
               u(order_item_id, 'rev-verified') < 0.93 AS verified_purchase
        FROM r
    """),
    ("inventory_movements", """
        CREATE TABLE inventory_movements AS
        WITH m AS (
            SELECT range + 1 AS movement_id,
                   1 + CAST(floor($n_products * pow(u(range, 'mv-prod'), 1.6)) AS BIGINT)
                       AS product_id,
                   ri(range, 'mv-wh', 1, $n_warehouses) AS warehouse_id,
                   u(range, 'mv-type') AS tu
            FROM range($n_movements)
        ), t AS (
            SELECT m.*,
                   CASE WHEN tu < 0.22 THEN 'receipt' WHEN tu < 0.82 THEN 'pick'
                        WHEN tu < 0.88 THEN 'return_restock' WHEN tu < 0.95 THEN 'adjustment'
                        ELSE 'transfer_out' END AS movement_type
            FROM m
        )
        SELECT t.movement_id, t.product_id, t.warehouse_id, t.movement_type,
               CASE t.movement_type
                    WHEN 'receipt' THEN ri(t.movement_id, 'mv-qty', 20, 400)
                    WHEN 'pick' THEN -ri(t.movement_id, 'mv-qty', 1, 6)
                    WHEN 'return_restock' THEN ri(t.movement_id, 'mv-qty', 1, 3)
                    WHEN 'adjustment' THEN ri(t.movement_id, 'mv-qty', -12, 8)
                    ELSE -ri(t.movement_id, 'mv-qty', 10, 80) END AS quantity,
               CASE WHEN t.movement_type = 'receipt' THEN p.supplier_id END AS supplier_id,
               p.unit_cost_eur,
               CAST($start_ts AS TIMESTAMP) + secs(u(t.movement_id, 'mv-ts') * $span_s) AS moved_ts,
               CASE t.movement_type
                    WHEN 'receipt' THEN 'PO-' || (100000 + t.movement_id % 90000)
                    WHEN 'pick' THEN 'PICK-' || lpad(CAST(t.movement_id AS VARCHAR), 9, '0')
                    WHEN 'return_restock' THEN 'RMA-' || (t.movement_id % 500000)
                    WHEN 'adjustment' THEN 'CYCLE-COUNT-' || (t.movement_id % 997)
                    ELSE 'TO-' || (t.movement_id % 70000) END AS reference
        FROM t JOIN products p USING (product_id)
    """),
    ("web_sessions", """
        CREATE TABLE web_sessions AS
        WITH s AS (
            SELECT range + 1 AS session_id,
                   CASE WHEN u(range, 'ws-logged') < 0.45
                        THEN 1 + CAST(floor($n_customers * pow(u(range, 'ws-cust'), 1.5)) AS BIGINT)
                   END AS customer_id,
                   CAST($start_ts AS TIMESTAMP) + secs(u(range, 'ws-ts') * $span_s) AS started_ts,
                   1 + CAST(floor(9 * pow(u(range, 'ws-views'), 2)) AS INTEGER) AS page_view_count
            FROM range($n_sessions)
        )
        SELECT s.session_id, s.customer_id,
               coalesce(c.country_code, pick($weighted_countries, s.session_id, 'ws-country'))
                   AS country_code,
               s.started_ts,
               s.started_ts + secs(s.page_view_count * ri(s.session_id, 'ws-dur', 8, 160))
                   AS ended_ts,
               pick(['mobile', 'mobile', 'mobile', 'desktop', 'desktop', 'tablet'],
                    s.session_id, 'ws-device') AS device,
               pick(['Chrome', 'Safari', 'Firefox', 'Edge', 'Samsung Internet'],
                    s.session_id, 'ws-browser') AS browser,
               pick(['/', '/sale', '/new-in', '/search', '/c/clothing', '/c/home', '/p/bestsellers'],
                    s.session_id, 'ws-landing') AS landing_page,
               pick(['google', 'google', 'direct', 'direct', 'newsletter', 'instagram', 'tiktok',
                     'affiliate', 'bing'], s.session_id, 'ws-utm') AS utm_source,
               s.page_view_count,
               s.page_view_count >= 3
                   AND u(s.session_id, 'ws-conv') < 0.02 + 0.012 * s.page_view_count AS converted
        FROM s LEFT JOIN customers c USING (customer_id)
    """),
    ("page_views", """
        CREATE TABLE page_views AS
        WITH offsets AS (
            -- ids follow (session_id, seq): a window over sessions, not over every view
            SELECT session_id, started_ts, ended_ts, page_view_count,
                   CAST(sum(page_view_count) OVER (ORDER BY session_id) - page_view_count AS BIGINT)
                       AS first_id
            FROM web_sessions
        ), v AS (
            SELECT session_id, started_ts, ended_ts, page_view_count, first_id,
                   unnest(range(page_view_count)) + 1 AS seq
            FROM offsets
        ), t AS (
            SELECT v.*, v.session_id * 16 + v.seq AS k, u(v.session_id * 16 + v.seq, 'pv-type') AS tu
            FROM v
        )
        SELECT first_id + seq AS view_id,
               session_id, seq,
               started_ts + secs(epoch(ended_ts - started_ts) * (seq - 1) / page_view_count)
                   AS viewed_ts,
               CASE WHEN tu < 0.5 THEN 'product' WHEN tu < 0.75 THEN 'category'
                    WHEN tu < 0.87 THEN 'search' WHEN tu < 0.95 THEN 'cart' ELSE 'checkout' END
                   AS page_type,
               CASE WHEN tu < 0.5
                    THEN '/p/' || (1 + CAST(floor($n_products * pow(u(k, 'pv-prod'), 2)) AS BIGINT))
                    WHEN tu < 0.75 THEN '/c/' || ri(k, 'pv-cat', $n_top + 1, $n_categories)
                    WHEN tu < 0.87 THEN '/search?q=' || pick($nouns, k, 'pv-q')
                    WHEN tu < 0.95 THEN '/cart' ELSE '/checkout' END AS url,
               CASE WHEN tu < 0.5
                    THEN 1 + CAST(floor($n_products * pow(u(k, 'pv-prod'), 2)) AS BIGINT) END
                   AS product_id,
               ri(k, 'pv-time', 800, 180000) AS time_on_page_ms
        FROM t
    """),
    ("support_tickets", """
        CREATE TABLE support_tickets AS
        WITH t AS (
            SELECT range + 1 AS ticket_id,
                   CASE WHEN u(range, 'tk-has-order') < 0.75
                        THEN ri(range, 'tk-order', 1, $n_orders) END AS order_id,
                   ri(range, 'tk-cust', 1, $n_customers) AS any_customer_id,
                   u(range, 'tk-status') AS su
            FROM range($n_tickets)
        ), j AS (
            SELECT t.*, coalesce(o.customer_id, t.any_customer_id) AS customer_id,
                   coalesce(o.order_ts + secs(86400 * u(t.ticket_id, 'tk-open') * 20),
                            CAST($start_ts AS TIMESTAMP)
                                + secs(u(t.ticket_id, 'tk-open') * $span_s)) AS opened_ts
            FROM t LEFT JOIN orders o USING (order_id)
        )
        SELECT ticket_id, customer_id, order_id,
               pick(['email', 'email', 'chat', 'chat', 'phone', 'social'], ticket_id, 'tk-ch')
                   AS channel,
               CASE WHEN order_id IS NULL
                    THEN pick(['account', 'product question', 'other'], ticket_id, 'tk-cat')
                    ELSE pick(['delivery', 'delivery', 'refund', 'payment', 'damaged item',
                               'product question'], ticket_id, 'tk-cat') END AS category,
               pick(['low', 'normal', 'normal', 'normal', 'high', 'urgent'], ticket_id, 'tk-prio')
                   AS priority,
               CASE WHEN su < 0.08 THEN 'open' WHEN su < 0.15 THEN 'pending'
                    WHEN su < 0.6 THEN 'solved' ELSE 'closed' END AS status,
               pick($ticket_subjects, ticket_id, 'tk-subj') AS subject,
               opened_ts,
               CASE WHEN su >= 0.03
                    THEN opened_ts + secs(60 * (5 + 2880 * pow(u(ticket_id, 'tk-resp'), 3))) END
                   AS first_response_ts,
               CASE WHEN su >= 0.15
                    THEN opened_ts + secs(3600 * (1 + 240 * pow(u(ticket_id, 'tk-res'), 2))) END
                   AS resolved_ts,
               pick($first_names, ticket_id, 'tk-agent') || ' (agent '
                   || ri(ticket_id, 'tk-agent-no', 1, 60) || ')' AS agent_name,
               CASE WHEN su >= 0.15 AND u(ticket_id, 'tk-csat') < 0.4
                    THEN ri(ticket_id, 'tk-score', 1, 5) END AS satisfaction_score
        FROM j
    """),
)


def _bound(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The named parameters one statement uses (DuckDB rejects unused ones)."""
    return {name: params[name] for name in set(_PARAM.findall(sql))}


def _insert_reference(con: duckdb.DuckDBPyConnection) -> None:
    """regions, countries, currencies and a temp city list, from common.reference."""
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
            (c.code, c.name, region_ids[c.region], c.currency, c.vat_rate,
             _month_start(FIRST_MONTH, -3 * i - 6))
            for i, c in enumerate(COUNTRIES)
        ],
    )
    con.execute("CREATE TEMP TABLE _cities (country_code VARCHAR, cities VARCHAR[])")
    con.executemany(
        "INSERT INTO _cities VALUES (?, ?)", [(c.code, CITIES.get(c.code, [c.name])) for c in COUNTRIES]
    )


def _build(con: duckdb.DuckDBPyConnection, scale: int) -> None:
    params = _params(scale)
    for macro in _MACROS:
        con.execute(macro)
    _insert_reference(con)
    for _name, sql in _STEPS:
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


def _describe(result: SeedResult) -> str:
    return (
        f"seeded {result.path} (scale {result.scale}) in {result.seconds:.1f} s: "
        f"{result.total_rows:,} rows in {len(result.rows)} tables"
    )


app = typer.Typer(add_completion=False, help="Create the deterministic demo shop database.")


@app.command()
def seed_demo(
    scale: Annotated[
        int | None,
        typer.Option("--scale", help="Multiplies the rows of facts, customers and products "
                     "(default: ETL_DEMO_SCALE, else 1)."),
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option("--path", help="The DuckDB file (default: <data dir>/demo/shop.duckdb)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Load the dataset into this PostgreSQL database instead "
                     "(a SQLAlchemy URL, e.g. postgresql+psycopg://etl:***@/shop?host=/socket/dir).",
                     show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-seed even if the file (or the tables) exist.")] = False,
) -> None:
    """Create the deterministic demo shop database that the flows query (a DuckDB file, or
    with --url the same dataset in a PostgreSQL database)."""
    from common.settings import get_settings

    settings = get_settings()
    scale = settings.demo_scale if scale is None else scale
    if scale < 1:
        typer.echo(f"error: --scale must be at least 1, got {scale}", err=True)
        raise typer.Exit(2)
    if url is not None:
        if path is not None:
            typer.echo("error: give --path or --url, not both", err=True)
            raise typer.Exit(2)
        _seed_url(url, scale, force)
        return
    path = settings.demo_db_path if path is None else path
    if path.exists() and not force:
        typer.echo(f"demo database already at {path} (use --force to re-seed)")
        return
    try:
        result = seed_demo_database(path, scale)
    except (OSError, duckdb.Error) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"error: could not seed {path}: {message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(_describe(result))


def _seed_url(url: str, scale: int, force: bool) -> None:
    """``seed-demo --url``: the same dataset, loaded into PostgreSQL (see common.seed_postgres)."""
    import psycopg
    from sqlalchemy.exc import SQLAlchemyError

    from common.db import redacted_url
    from common.seed_postgres import PostgresLoadError, seed_postgres, seeded_tables

    target = redacted_url(url)
    try:
        if not force and len(seeded_tables(url)) == len(TABLES):
            typer.echo(f"demo dataset already in {target} (use --force to re-seed)")
            return
        result = seed_postgres(url, scale)
    except PostgresLoadError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, duckdb.Error, SQLAlchemyError, psycopg.Error, RuntimeError) as exc:
        original = getattr(exc, "orig", None) or exc
        message = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
        typer.echo(f"error: could not seed {target}: {message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"seeded {result.target} (scale {result.scale}) in {result.seconds:.1f} s "
        f"(built in {result.build_seconds:.1f} s, loaded with COPY in "
        f"{result.seconds - result.build_seconds:.1f} s): "
        f"{result.total_rows:,} rows in {len(result.rows)} tables"
    )


def main() -> None:
    """Console script ``seed-demo``."""
    app()


if __name__ == "__main__":
    main()
