"""Which DuckDB budget every extract and report answers within, each as a ``database`` slot runs it.

Each query runs alone through the flows' own connection (:func:`common.db.connect`: an
in-memory DuckDB with the budget and one thread, the seeded shop attached read-only); an
extract is copied to Parquet as ingest copies it, a report is fetched. Prints each query's
time or its error, then the queries that failed at each budget. The budget per instance is
what bounds a flow-run process (bench/RESULTS.md, "The data path at scale").

    uv run seed-demo --scale 10 --path data/shop10.duckdb
    uv run python -m bench.query_budgets data/shop10.duckdb --budgets 128MB,160MB,192MB
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from bench.holistic_memory import check_shop
from common.catalog import TABLES
from common.db import connect
from common.lake import copy_query_to_parquet
from common.settings import Settings
from flow_ingest.catalog import extract_query
from flow_reports.catalog import REPORTS, report_query


def run_one(settings: Settings, kind: str, name: str) -> str:
    """``""`` when the query answered within the budget, else the first line of its error."""
    try:
        with connect(settings) as connection, tempfile.TemporaryDirectory(prefix="budget-") as out:
            if kind == "extract":
                copy_query_to_parquet(
                    connection, extract_query(name), Path(out) / f"{name}.parquet", settings.sqlalchemy_url
                )
            else:
                connection.exec_driver_sql(report_query(name)).fetchall()
    except Exception as exc:  # the verdict is the point: print it and go on to the next query
        return str(exc).splitlines()[0][:100]
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", type=Path, help="a seeded demo shop (DuckDB file)")
    parser.add_argument("--budgets", default="128MB,160MB,192MB", help="comma-separated DuckDB memory limits")
    args = parser.parse_args()
    check_shop(args.database)
    queries = [("extract", t) for t in TABLES] + [("report", r) for r, spec in REPORTS.items() if not spec.reads_lake]
    failed: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="budgets-") as data:
        for budget in args.budgets.split(","):
            settings = Settings(
                database_url=SecretStr(f"duckdb:///{args.database.resolve()}?access_mode=read_only"),
                data_dir=Path(data),
                duckdb_memory_limit=budget,
            )
            failed[budget] = []
            for kind, name in queries:
                started = time.monotonic()
                error = run_one(settings, kind, name)
                if error:
                    failed[budget].append(name)
                print(
                    f"{budget:>6} {kind:<7} {name:<24} {time.monotonic() - started:6.1f}s  {error or 'ok'}", flush=True
                )
    for budget, names in failed.items():
        print(f"{budget}: {', '.join(names) if names else 'every query answered'}")


if __name__ == "__main__":
    main()
