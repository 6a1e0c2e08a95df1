"""The demo shop database: a deterministic 20-table retail dataset in DuckDB (SQL in sql/)."""

from demo_systems.shop.build import SeedResult, ensure_demo_database, seed_demo_database

__all__ = ["SeedResult", "ensure_demo_database", "seed_demo_database"]
