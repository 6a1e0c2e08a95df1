"""Exact medians and distinct counts within a DuckDB memory budget: which SQL shape spills.

The roll-ups and reports computed exact medians with ``percentile_cont(0.5) WITHIN GROUP``
and distinct counts with ``count(DISTINCT ...)``; the first is a holistic aggregate, whose
values DuckDB keeps whole per group, so a budget below them fails with ``Out of Memory
Error`` (bench/RESULTS.md, "The data path at scale"). The same figures from a sort per group
and a DISTINCT are operators DuckDB spills to disk, in SQL that PostgreSQL runs too; this
measurement is why the flows' SQL now takes its medians that way. This runs both shapes of
one roll-up (order lines by currency: distinct products sold, median unit price) on a seeded
shop under each budget, each run in a process of its own (one thread, a spill folder):
time, peak RSS, and whether the answers equal the aggregate's.

    uv run seed-demo --scale 10 --path data/shop10.duckdb
    uv run python -m bench.holistic_memory data/shop10.duckdb
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

SHAPES = ("aggregate", "sorted")
BUDGETS = ("1GB", "256MB", "128MB")


def run_one(shape: str, budget: str, database: Path) -> dict[str, object]:
    """One shape under one budget, in this process: what ``main`` runs in a child."""
    import duckdb

    sql = files("bench").joinpath("sql", f"lines_by_currency_{shape}.sql").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="spill-") as spill:
        con = duckdb.connect()
        con.execute("SET memory_limit = ?", [budget])
        con.execute("SET threads = 1")
        con.execute("SET temp_directory = ?", [spill])
        con.execute("ATTACH ? AS shop (READ_ONLY)", [str(database)])
        con.execute("USE shop")
        started = time.monotonic()
        try:
            rows: list[list[str]] | None = [[str(v) for v in row] for row in con.execute(sql).fetchall()]
            error = ""
        except duckdb.OutOfMemoryException as exc:
            rows, error = None, str(exc).splitlines()[0]
        seconds = time.monotonic() - started
    return {
        "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
        "error": error,
    }


def check_shop(database: Path) -> None:
    """Exit with the command that seeds ``database`` when it is not a file (this bench's and
    bench.query_budgets' argument)."""
    if not database.is_file():
        raise SystemExit(
            f"error: {database} is not a DuckDB file: seed one with `uv run seed-demo --scale 10 --path {database}`"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("database", type=Path, help="a seeded demo shop (DuckDB file)")
    parser.add_argument("--one", nargs=2, metavar=("SHAPE", "BUDGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    check_shop(args.database)
    if args.one:
        shape, budget = args.one
        print(json.dumps(run_one(shape, budget, args.database)))
        return
    reference = None
    print(f"{'shape':<10} {'budget':>7} {'time':>7} {'peak RSS':>9}  answer")
    for budget in BUDGETS:
        for shape in SHAPES:
            done = subprocess.run(
                [sys.executable, "-m", "bench.holistic_memory", str(args.database), "--one", shape, budget],
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
            result = json.loads(done.stdout)
            if result["rows"] is not None and reference is None:
                reference = result["rows"]
            answer = (
                result["error"]
                if result["rows"] is None
                else "same as the aggregate's"
                if result["rows"] == reference
                else "DIFFERS from the aggregate's"
            )
            print(f"{shape:<10} {budget:>7} {result['seconds']:6.1f}s {result['peak_rss_mib']:7.0f} MiB  {answer}")


if __name__ == "__main__":
    main()
