"""A run that fails halfway never leaves half-written data, and never replaces good data.

Ingest: the partner changes its format (fx rates arrive without ``rate_to_eur``), so the
orders extract succeeds, the reference pages are fetched and staged, and the orders LOAD
fails for real when it enriches. Every lake dataset must then be the old one or a whole new
one (row count and content hash of each Parquet file, read in full). Reports: a run whose
publishing fails (the partner API is down) must leave the report files of the last good run
byte for byte.
"""

from __future__ import annotations

import socket
from pathlib import Path

import duckdb
import pytest

from support import (
    CliRun,
    Fault,
    FaultyPartnerApi,
    Stack,
    edited_limits,
    file_bytes,
    free_port,
    lake_checksums,
    linked_data_dir,
)

pytestmark = pytest.mark.integration

INGEST_TABLES = ("orders", "regions")
REPORT_NAMES = ("revenue_by_month", "support_backlog")  # reports that need no lake


def _old_lake(stack: Stack, lake: Path) -> None:
    """Last good datasets that a new run would not reproduce (fewer rows than the database)."""
    lake.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(stack.data_dir / "demo" / "shop.duckdb"), read_only=True) as con:
        for table, rows in (("orders", 100), ("regions", 2)):
            con.execute(
                f"COPY (SELECT * FROM {table} ORDER BY 1 LIMIT {rows}) TO '{lake / table}.parquet' (FORMAT parquet)"
            )
    duckdb.execute(
        f"COPY (SELECT 'EUR' AS currency, DATE '2020-01-01' AS day, 1.0 AS rate_to_eur) "
        f"TO '{lake / 'ref_fx_rates.parquet'}' (FORMAT parquet)"
    )


def _closed_url() -> str:
    port = free_port()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def halfway(stack: Stack, tmp_path_factory: pytest.TempPathFactory):
    """The ingest with a changed partner format and the reports pair (good run, then a run
    with the partner down), overlapping so the module costs about one run's retries."""
    ingest_root = tmp_path_factory.mktemp("halfway-ingest")
    ingest_data = linked_data_dir(stack, ingest_root)
    _old_lake(stack, ingest_data / "lake")
    before = lake_checksums(ingest_data / "lake")
    api = FaultyPartnerApi([Fault(r"^GET /v1/reference/fx_rates", "drop-column", "rate_to_eur")])
    reports_root = tmp_path_factory.mktemp("halfway-reports")
    reports_data = linked_data_dir(stack, reports_root)
    only = [arg for name in REPORT_NAMES for arg in ("--report", name)]
    with api.serving(ingest_root / "partner"):
        ingest = CliRun.start(
            ingest_root / "out",
            "ingest",
            *[a for t in INGEST_TABLES for a in ("--table", t)],
            env=stack.env(ETL_DATA_DIR=str(ingest_data), ETL_API_URL=api.url),
        )
        good = CliRun.start(reports_root / "good", "reports", *only, env=stack.env(ETL_DATA_DIR=str(reports_data)))
        good.finish(300)
        assert good.code == 0, good.describe()
        last_good = file_bytes(reports_data / "reports")
        # No task retries for this run: how retries are bounded is test_faults_partner_api's
        # business; here only the outcome of a failed publish matters.
        failing = CliRun.start(
            reports_root / "failing",
            "reports",
            *only,
            env=stack.env(
                ETL_DATA_DIR=str(reports_data),
                ETL_API_URL=_closed_url(),
                ETL_LIMITS_FILE=str(edited_limits(reports_root / "limits.toml", "api", retries=0)),
            ),
        )
        ingest.finish(300)
        failing.finish(300)
    return {
        "ingest": (ingest, ingest_data, before, api),
        "reports": (failing, reports_data, last_good),
    }


def test_ingest_failing_in_a_load_leaves_each_dataset_old_or_new(halfway, stack: Stack) -> None:
    run, data, before, api = halfway["ingest"]
    print(f"\ningest with a changed partner format: exit {run.code} after {run.seconds:.1f} s: {run.error_lines}")
    assert run.code == 1, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    assert "failed calls: load-dataset orders: " in line and "rate_to_eur" in line, line
    assert "extract-table" not in line and "fetch-reference" not in line, "extract and fetch succeeded"
    assert api.matching(r"^GET /v1/reference/fx_rates"), "the partner was never asked"

    after = lake_checksums(data / "lake")  # reads every dataset whole: a torn file would raise here
    with duckdb.connect(str(stack.data_dir / "demo" / "shop.duckdb"), read_only=True) as con:
        new_rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in INGEST_TABLES}  # type: ignore[index]
    print("before:", before, "\nafter: ", after)
    assert after["orders"] == before["orders"], "the failed load replaced orders"
    assert after["regions"] != before["regions"] and after["regions"][0] == new_rows["regions"], (
        "regions not published whole"
    )
    # The reference datasets are published whole (the changed format only broke the join that
    # needs the dropped column): every row the partner has, and not the old file's.
    from demo_systems.partner_api.data import build_reference_db

    partner, _ = build_reference_db()
    partner_rows = {
        f"ref_{name}": partner.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
        for name in ("fx_rates", "countries")
    }
    assert set(after) == {"orders", "regions", *partner_rows}, sorted(after)
    for dataset, rows in partner_rows.items():
        assert after[dataset][0] == rows and after[dataset] != before.get(dataset), f"{dataset} not published whole"
    assert sorted(p.name for p in (data / "lake").iterdir()) == sorted(
        [".staging", *(f"{d}.parquet" for d in after)]
    ), "stray files in the lake"
    assert not any((data / "lake" / ".staging").iterdir()), "staging left behind"


def test_failed_reports_run_keeps_the_last_good_reports(halfway) -> None:
    run, data, last_good = halfway["reports"]
    print(f"\nreports with the partner down: exit {run.code} after {run.seconds:.1f} s: {run.error_lines}")
    assert {f"{n}.csv" for n in REPORT_NAMES} | {"SUMMARY.md"} <= set(last_good)
    assert run.code == 1, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    assert "last good reports kept" in line and "publish-report: PartnerApiError: " in line, line
    assert "connection refused" in line, line
    assert file_bytes(data / "reports") == last_good, "a failed run changed the last good reports"
    assert not any((data / "reports" / ".staging").iterdir()), "report staging left behind"
