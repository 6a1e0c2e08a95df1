"""Ingest's SQL: one extract per allowlisted table (``sql/extract/<table>.sql``) and the
enrichments of the lake datasets that join the partner's reference data (``sql/enrich/``).

Dimension extracts ship the conformed attributes plus activity roll-ups from the facts (a
"customer 360" style snapshot); fact extracts denormalise the dimensions analysts always
join and add derived columns. Each ends with ORDER BY its key, so a lake file written from it
is byte-for-byte reproducible. Their medians come from the middle rows of a sort, not from
``percentile_cont`` (why: ``flow_reports.catalog``). Table names reach a file path only after
:func:`common.check_table` found them in the allowlist; values are never interpolated.
"""

from __future__ import annotations

from importlib.resources import files

from common import check_table

# Lake datasets that ingest enriches with the partner API's reference data (rates per
# currency and month, country facts). Ingest relies on these extract columns:
#   orders:   order_id, customer_id, country_code, currency, order_ts, total_amount
#             (+ status, channel) -> adds total_amount_eur, region, vat_rate
#   payments: payment_id, order_id, currency, paid_ts, amount (+ method, status)
#             -> adds amount_eur
# The lake reports of flow_reports read exactly those columns and the ones ingest adds.
ENRICHED_TABLES: dict[str, str] = {
    "orders": "orders in local currency; ingest adds total_amount_eur (rate of the order "
    "month), region and vat_rate (country facts)",
    "payments": "payments in local currency; ingest adds amount_eur (rate of the payment month)",
}


def _sql(*parts: str) -> str:
    return files("flow_ingest").joinpath("sql", *parts).read_text(encoding="utf-8").strip()


def extract_query(table: str) -> str:
    """The SELECT ingest runs against the shared database to extract ``table``."""
    return _sql("extract", f"{check_table(table)}.sql")


def enrich_query(dataset: str) -> str:
    """The DuckDB query that joins a staged dataset with the staged reference data
    (``$staged``, ``$fx``, ``$countries`` are bound parameters)."""
    if dataset not in ENRICHED_TABLES:
        raise ValueError(f"{dataset!r} is not enriched; enriched datasets: {', '.join(ENRICHED_TABLES)}")
    return _sql("enrich", f"{dataset}.sql")
