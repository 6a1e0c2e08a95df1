"""Lake writes: streamed to Parquet, published by atomic rename, old data kept on failure."""

from __future__ import annotations

import threading
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr

from common.db import connect
from common.duckdb_memory import local_duckdb
from common.lake import (
    copy_query_to_parquet,
    dataset_path,
    parquet_rows,
    publish,
    remove_staging,
    staging_dir,
    write_batches_to_parquet,
)
from common.settings import Settings


@pytest.fixture
def source_db(tmp_path: Path) -> Settings:
    path = tmp_path / "src.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE t AS SELECT range AS id, 'name ' || range AS name FROM range(12345)")
    return Settings(database_url=SecretStr(f"duckdb:///{path}?access_mode=read_only"), data_dir=tmp_path / "data")


def test_duckdb_extract_streams_to_parquet_through_the_connector(source_db: Settings, tmp_path: Path) -> None:
    target = tmp_path / "out" / "t.parquet"
    with connect(source_db) as connection:
        rows = copy_query_to_parquet(connection, "SELECT * FROM t WHERE id % 5 = 0", target, source_db.sqlalchemy_url)
    assert rows == 2469
    assert parquet_rows(target) == 2469
    assert duckdb.execute("SELECT max(id) FROM read_parquet(?)", [str(target)]).fetchone() == (12340,)


def test_each_duckdb_connection_is_its_own_instance_within_its_budget(source_db: Settings) -> None:
    """One slot = one DuckDB instance attaching the file read-only, with the memory budget and
    one thread; a query that needs more than the budget fails (it would have taken 80% of
    RAM), and the instance's spill folder goes away with it."""
    from sqlalchemy.exc import OperationalError

    settings = source_db.model_copy(update={"duckdb_memory_limit": "64MB"})
    with connect(settings) as first, connect(settings) as second:
        assert first.exec_driver_sql("SELECT current_setting('memory_limit'), current_setting('threads')").one() == (
            "61.0 MiB",
            1,
        )
        first.exec_driver_sql("CREATE TEMP TABLE mine AS SELECT 1")
        assert second.exec_driver_sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'mine'").scalar() == 0
        assert second.exec_driver_sql("SELECT count(*) FROM t").scalar() == 12345  # the attached file
        spills = list((settings.data_dir / "spill").iterdir())
        assert len(spills) == 2, spills
        with pytest.raises(OperationalError, match="Out of Memory"):
            first.exec_driver_sql(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), count(DISTINCT x) "
                "FROM (SELECT random() AS x FROM range(40000000))"
            ).one()
    assert list((settings.data_dir / "spill").iterdir()) == []


def test_lake_steps_of_one_process_take_turns_and_a_slots_conversion_does_not_wait(tmp_path: Path) -> None:
    """A process holds one lake-step instance at a time (each is a memory budget); the DuckDB
    an extract opens while it holds a ``database`` slot does not queue behind them."""
    settings = Settings(data_dir=tmp_path / "data")
    lock = threading.Lock()
    active: list[int] = [0]
    most: list[int] = [0]
    first_in, release, conversion_in = threading.Event(), threading.Event(), threading.Event()

    def lake_step(stays: threading.Event) -> None:
        with local_duckdb(settings) as con:
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            con.execute("SELECT sum(range) FROM range(100000)").fetchone()
            first_in.set()
            stays.wait(30)  # the first step stays until the conversion got in; the others a moment
            with lock:
                active[0] -= 1

    def conversion() -> None:
        with local_duckdb(settings, queue=False) as con:
            con.execute("SELECT 1").fetchone()
            conversion_in.set()

    moment = threading.Event()
    threads = [threading.Thread(target=lake_step, args=(release,))]
    threads[0].start()
    assert first_in.wait(30)
    threads += [threading.Thread(target=lake_step, args=(moment,)) for _ in range(2)]
    threads.append(threading.Thread(target=conversion))
    for t in threads[1:]:
        t.start()
    assert conversion_in.wait(30), "the conversion waited for the lake step"
    release.set()
    threading.Timer(0.5, moment.set).start()  # without turns, the other two steps overlap meanwhile
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert most[0] == 1


def test_generic_batches_keep_types_and_every_row(tmp_path: Path) -> None:
    target = tmp_path / "b.parquet"
    batches = [
        [(1, "a", Decimal("1.50"), date(2024, 1, 1), datetime(2024, 1, 1, 12), True, 0.5)],
        [(2, None, Decimal("2.25"), date(2024, 1, 2), datetime(2024, 1, 2, 12), False, None)],
    ]
    rows = write_batches_to_parquet(["id", "name", "amount", "day", "ts", "flag", "ratio"], batches, target)  # type: ignore[arg-type]  # rows of mixed values
    assert rows == 2
    types = dict(
        duckdb.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(target)]).fetchall()[i][:2] for i in range(7)
    )
    assert types["id"] == "BIGINT" and types["day"] == "DATE" and types["flag"] == "BOOLEAN"
    assert types["amount"].startswith("DECIMAL")
    assert not list(tmp_path.glob("*.scratch.duckdb*"))


def test_generic_batches_keep_null_apart_from_empty_text_and_odd_characters(tmp_path: Path) -> None:
    target = tmp_path / "odd.parquet"
    odd = 'a,"b"\nc\\N'
    batches = [[(1, "", None, Decimal("0E-10")), (2, None, odd, Decimal("1E+2"))]]
    assert write_batches_to_parquet(["id", "text", "other", "amount"], batches, target) == 2
    rows = duckdb.execute("SELECT * FROM read_parquet(?) ORDER BY id", [str(target)]).fetchall()
    assert rows == [(1, "", None, Decimal("0")), (2, None, odd, Decimal("100"))]


def test_publish_replaces_atomically_and_a_failed_write_keeps_the_old_dataset(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    target = dataset_path(lake, "orders")
    stage = staging_dir(lake, "run-1")
    first = stage / "orders.parquet"
    duckdb.sql("COPY (SELECT 1 AS v) TO '" + str(first) + "' (FORMAT parquet)")
    publish(first, target)
    assert parquet_rows(target) == 1 and not first.exists()

    # A second run fails halfway through writing its staged file (the source breaks after the
    # first batch): the lake's writer leaves neither a partial file nor its scratch CSV, and
    # the published dataset is untouched.
    stage2 = staging_dir(lake, "run-2")

    def batches():
        yield [(1,), (2,)]
        raise ConnectionError("the database went away mid-extract")

    with pytest.raises(ConnectionError):
        write_batches_to_parquet(["v"], batches(), stage2 / "orders.parquet")
    assert list(stage2.iterdir()) == [], "a failed write left files in staging"
    assert parquet_rows(target) == 1
    assert remove_staging(lake, "run-2") and not stage2.exists()


def test_dataset_and_run_names_are_checked() -> None:
    with pytest.raises(ValueError):
        dataset_path(Path("/tmp"), "../etc/passwd")
    with pytest.raises(ValueError):
        staging_dir(Path("/tmp"), "../x")


@pytest.mark.integration
def test_sweep_removes_only_staging_of_runs_that_are_over(tmp_path: Path, prefect_client) -> None:
    """Folders of runs the server reports over go; a running run's, the caller's, unknown
    ids and anything not named like a run stay."""
    from uuid import uuid4

    from prefect import flow
    from prefect.states import Cancelled, Crashed, Running

    from common.lake import sweep_abandoned_staging

    @flow(name="sweep-test")
    def placeholder() -> None:
        """Never run: only its flow runs' states matter here."""

    lake = tmp_path / "lake"

    def run_in(state) -> str:
        run_id = str(prefect_client.create_flow_run(placeholder, state=state).id)
        staging_dir(lake, run_id)
        return run_id

    running, cancelled, crashed, mine = run_in(Running()), run_in(Cancelled()), run_in(Crashed()), run_in(Cancelled())
    unknown = str(uuid4())
    staging_dir(lake, unknown)
    (lake / ".staging" / "not-a-run").mkdir()

    assert sorted(sweep_abandoned_staging(lake, keep=mine)) == sorted([cancelled, crashed])
    left = sorted(p.name for p in (lake / ".staging").iterdir())
    assert left == sorted([running, mine, unknown, "not-a-run"])
