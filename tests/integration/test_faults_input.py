"""Bad input and unavailable parts, injected for real: an unreachable Prefect server, a port
held by something else, a table outside the allowlist, a wrong, missing or corrupt database.

Each must end in ONE ``error:`` line that says what to fix (exit 2 for what the entry point
refuses, 1 for a run that failed with the reason), leak no password, and harm nothing else:
the last good lake data stays byte for byte, a foreign server keeps serving.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import pytest

from support import CliRun, Stack, file_bytes, flow_run_id, free_port, linked_data_dir, run_cli, server_text

pytestmark = pytest.mark.integration

UNREACHABLE = "http://127.0.0.1:9/api"
# Not a word: Prefect names flow runs from a word list ("secret-fox" is one such name), so a
# word-like password would be found in any log, leaked or not.
PASSWORD = "pw7Qz-9xK2"


@pytest.mark.parametrize("command", [("ingest",), ("reports",), ("limits", "sync"), ("serve-all",)])
def test_unreachable_server_is_one_line_within_seconds(stack: Stack, tmp_path: Path, command: tuple[str, ...]) -> None:
    """Every entry point checks the server first: no hang on retries, nothing created."""
    data = tmp_path / "data"
    started = time.monotonic()
    result = run_cli(*command, env=stack.env(PREFECT_API_URL=UNREACHABLE, ETL_DATA_DIR=str(data)), timeout=60)
    elapsed = time.monotonic() - started
    print(f"\n{' '.join(command)}: exit {result.returncode} after {elapsed:.1f} s")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: no Prefect server at {UNREACHABLE}: start one with `uv run serve-all`, "
        "or set PREFECT_API_URL to a running server"
    ]
    assert elapsed < 30
    assert not data.exists(), "a refused entry point created files"


@pytest.mark.parametrize(
    "command",
    [
        ("ingest",),
        ("reports",),
        ("serve-all",),
        ("serve-ingest",),
        ("serve-reports",),
        ("seed-demo",),
        ("limits", "sync"),
        ("slots",),
        ("slots", "board"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(stack: Stack, tmp_path: Path, command: tuple[str, ...]) -> None:
    """An ``ETL_*`` value the settings refuse stops every entry point with one line that names
    the variable and the value, before anything is created."""
    data = tmp_path / "data"
    result = run_cli(*command, env=stack.env(ETL_DUCKDB_MEMORY_LIMIT="lots", ETL_DATA_DIR=str(data)), timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ETL_DUCKDB_MEMORY_LIMIT='lots': "), result.stderr
    assert lines[0].endswith("fix or unset it"), lines
    assert not data.exists(), "a refused entry point created files"


@pytest.fixture
def foreign_http_server() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A plain `python -m http.server` on loopback: something that is not Prefect."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "http.server never answered"
            time.sleep(0.1)
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_port_taken_by_a_foreign_server(stack: Stack, tmp_path: Path, foreign_http_server) -> None:
    """serve-all names the port and stops; the foreign server is not touched."""
    proc, port = foreign_http_server
    env = stack.env(ETL_DATA_DIR=str(tmp_path / "data"))
    env.pop("PREFECT_API_URL")
    result = run_cli("serve-all", "--port", str(port), env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"port {port}" in lines[0], lines
    assert "not a Prefect server" in lines[0]
    assert proc.poll() is None, "serve-all stopped the foreign server"
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    assert not (tmp_path / "data" / "prefect").exists(), "serve-all prepared a server it never started"


def test_table_outside_the_allowlist_is_refused_before_any_run(stack: Stack, prefect_client) -> None:
    """The table list is checked by the CLI: exit 2, one line listing the valid names, no flow run."""
    from common.catalog import TABLES
    from flow_reports.catalog import REPORTS

    before = prefect_client.count_flow_runs()
    result = run_cli("ingest", "--table", "orders; DROP TABLE x", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: unknown table 'orders; DROP TABLE x': choose one of ")
    assert all(t in lines[0] for t in TABLES)

    result = run_cli("reports", "--report", "revenue; DROP", timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown report 'revenue; DROP': choose one of ")
    assert all(r in lines[0] for r in REPORTS)
    assert prefect_client.count_flow_runs() == before, "a refused run still reached the server"


# --- the shared database: wrong URL, missing file, corrupt file ----------------------------


def _old_lake(stack: Stack, data: Path) -> dict[str, bytes]:
    """A last good ``regions`` dataset with fewer rows than a new run writes (3)."""
    lake = data / "lake"
    lake.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(stack.data_dir / "demo" / "shop.duckdb"), read_only=True) as con:
        con.execute(f"COPY (SELECT * FROM regions ORDER BY 1 LIMIT 3) TO '{lake / 'regions.parquet'}' (FORMAT parquet)")
    return file_bytes(lake)


def _closed_port() -> int:
    port = free_port()
    with socket.socket() as sock:  # nothing listens there: connecting is refused at once
        assert sock.connect_ex(("127.0.0.1", port)) != 0
    return port


@pytest.fixture(scope="module")
def database_faults(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[CliRun, Path, dict[str, bytes]]]:
    """Every database fault as its own `ingest --table regions`, all at once (each waits out
    the database retries, so together they cost the time of one)."""
    cases: dict[str, dict[str, str]] = {}
    dirs: dict[str, Path] = {}
    for name in ("wrong-url", "missing-file", "corrupt-file", "demo-file-missing"):
        root = tmp_path_factory.mktemp(name)
        dirs[name] = linked_data_dir(stack, root, with_database=name not in ("corrupt-file", "demo-file-missing"))
        cases[name] = {"ETL_DATA_DIR": str(dirs[name])}
    cases["wrong-url"]["ETL_DATABASE_URL"] = f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:{_closed_port()}/x"
    missing = dirs["missing-file"] / "elsewhere" / "shop.duckdb"
    cases["missing-file"]["ETL_DATABASE_URL"] = f"duckdb:///{missing}?access_mode=read_only"
    (dirs["corrupt-file"] / "demo" / "shop.duckdb").write_bytes(b"not a database\x00" * 4096)
    olds = {name: _old_lake(stack, dirs[name]) for name in cases}
    runs = {
        name: CliRun.start(dirs[name].parent / "out", "ingest", "--table", "regions", env=stack.env(**env))
        for name, env in cases.items()
    }
    return {name: (run.finish(300), dirs[name], olds[name]) for name, run in runs.items()}


@pytest.mark.parametrize(
    "case, reason",
    [
        ("wrong-url", "cannot connect to the shared database 'postgresql+psycopg://u:***@127.0.0.1:"),
        ("missing-file", "does not exist"),
        ("corrupt-file", "not a valid DuckDB database file"),
    ],
)
def test_database_fault_fails_the_run_with_the_reason_and_keeps_the_lake(
    database_faults, prefect_client, case: str, reason: str
) -> None:
    run, data, old_lake = database_faults[case]
    print(f"\n{case}: exit {run.code} after {run.seconds:.1f} s: {run.error_lines}")
    assert run.code == 1, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    assert "extract-table regions" in line and reason in line, line
    assert PASSWORD not in run.stdout and PASSWORD not in run.stderr, "the database password leaked"
    assert PASSWORD not in server_text(prefect_client, flow_run_id(run.stderr)), "the password reached the server"
    assert file_bytes(data / "lake") == old_lake, "a failed run changed the last good lake data"
    assert not any((data / "lake" / ".staging").glob("*")), "staging left behind"
    if case == "corrupt-file":
        assert (data / "demo" / "shop.duckdb").read_bytes().startswith(b"not a database"), (
            "the corrupt file was replaced"
        )
    if case == "missing-file":
        assert not (data / "elsewhere").exists(), "a read-only run created the missing database"


def test_missing_demo_database_is_seeded_by_a_direct_run(stack: Stack, database_faults) -> None:
    """The embedded default heals itself: a direct run seeds the demo database it lacks."""
    run, data, old_lake = database_faults["demo-file-missing"]
    print(f"\ndemo-file-missing: exit {run.code} after {run.seconds:.1f} s")
    assert run.code == 0, run.describe()
    assert "demo database seeded at" in run.stdout
    assert (data / "demo" / "shop.duckdb").stat().st_size > 0
    assert file_bytes(data / "lake") != old_lake  # the new regions replaced the old one, whole
    with duckdb.connect(str(stack.data_dir / "demo" / "shop.duckdb"), read_only=True) as con:
        expected = con.execute("SELECT count(*) FROM regions").fetchone()
    assert (
        duckdb.execute("SELECT count(*) FROM read_parquet(?)", [str(data / "lake" / "regions.parquet")]).fetchone()
        == expected
    )


def test_demo_api_port_taken_by_a_foreign_server(stack: Stack, tmp_path: Path, foreign_http_server) -> None:
    """A direct run that needs the embedded demo API names the taken port and stops."""
    proc, port = foreign_http_server
    data = linked_data_dir(stack, tmp_path)
    result = run_cli(
        "ingest", "--table", "regions", env=stack.env(ETL_DATA_DIR=str(data), ETL_DEMO_API_PORT=str(port)), timeout=120
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: demo API cannot bind") and f"port {port}" in lines[0], lines
    assert proc.poll() is None and httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    assert not (data / "lake").exists(), "the run started although its partner API could not"
