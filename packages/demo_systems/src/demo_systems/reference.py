"""Reference data shared by the demo database and the demo partner API.

The demo shop sells in several currencies to customers in several countries; the partner
API is the authority on exchange rates and country facts. Both demo parts are generated
from these constants so that ingest's enrichment joins always find their match.
"""

from __future__ import annotations

from typing import NamedTuple


class Country(NamedTuple):
    code: str
    name: str
    region: str
    currency: str
    vat_rate: float


COUNTRIES: tuple[Country, ...] = (
    Country("DE", "Germany", "Europe", "EUR", 0.19),
    Country("FR", "France", "Europe", "EUR", 0.20),
    Country("NL", "Netherlands", "Europe", "EUR", 0.21),
    Country("ES", "Spain", "Europe", "EUR", 0.21),
    Country("IT", "Italy", "Europe", "EUR", 0.22),
    Country("SE", "Sweden", "Nordics", "SEK", 0.25),
    Country("NO", "Norway", "Nordics", "NOK", 0.25),
    Country("DK", "Denmark", "Nordics", "DKK", 0.25),
    Country("PL", "Poland", "Central Europe", "PLN", 0.23),
    Country("CZ", "Czechia", "Central Europe", "CZK", 0.21),
    Country("CH", "Switzerland", "Central Europe", "CHF", 0.081),
    Country("GB", "United Kingdom", "British Isles", "GBP", 0.20),
    Country("IE", "Ireland", "British Isles", "EUR", 0.23),
    Country("US", "United States", "Americas", "USD", 0.0),
    Country("CA", "Canada", "Americas", "CAD", 0.05),
    Country("JP", "Japan", "Asia Pacific", "JPY", 0.10),
)

CURRENCIES: tuple[str, ...] = tuple(sorted({c.currency for c in COUNTRIES}))

# Orders in the demo database fall in these months; the API has a rate for each
# (currency, month) pair in this range.
FIRST_MONTH = "2024-01"
MONTHS = 24
