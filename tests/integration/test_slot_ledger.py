"""The slot ledger on the session's real server: ``slots history`` over a stretch of time reads
from the server only the holds it has not kept yet, gives exactly what a whole read gives,
and reads whole again when the server no longer matches what it kept.

Task runs with a tag of the test's own are written through Prefect's REST API (Running, then
Completed: the server sets their start and end times); the ledger settles holds at once here
(``settling=0``) instead of after serve-all's five minutes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from support import Stack, TaggedTaskRuns, force_state, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def runs(stack: Stack) -> Iterator[TaggedTaskRuns]:
    with TaggedTaskRuns(stack.api_url, "ledger") as made:
        yield made


@pytest.fixture
def counted_rest(stack: Stack):
    """The project's REST reader, counting the task-run records the server sends it."""
    from common.prefect_rest import PrefectRest

    with PrefectRest(stack.api_url) as rest:
        rest.records_read = [0]  # type: ignore[attr-defined]

        def count(response: httpx.Response) -> None:
            if response.request.url.path.endswith("/task_runs/filter"):
                response.read()
                rest.records_read[0] += len(response.json())  # type: ignore[attr-defined]

        rest.http.event_hooks["response"].append(count)
        yield rest


@pytest.fixture
def ledger(counted_rest, tmp_path: Path):
    """A ledger of its own that settles holds at once."""
    from slot_tools.ledger import Ledger

    return Ledger(tmp_path / "ledger.sqlite", counted_rest.api_url, settling=timedelta(0))


def _read(ledger, rest, tag: str, since: datetime) -> tuple[set[tuple[object, ...]], int]:
    """What the ledger gives (as comparable rows) and how many records it read to give it."""
    before = rest.records_read[0]
    holds = ledger.read(rest, tag, since, datetime.now(UTC))
    return {(h.task_run_id, h.start, h.end, h.state) for h in holds}, rest.records_read[0] - before


def _whole(rest, tag: str, since: datetime) -> set[tuple[object, ...]]:
    from slot_tools.history import read_intervals

    return {(h.task_run_id, h.start, h.end, h.state) for h in read_intervals(rest, [tag], since=since)}


def test_a_second_history_reads_only_the_new_holds_and_matches_a_whole_read(
    runs: TaggedTaskRuns,
    counted_rest,
    ledger,
) -> None:
    since = runs.since
    runs.completed(3)
    first, read = _read(ledger, counted_rest, runs.tag, since)
    assert len(first) == 3 and read == 3
    runs.completed(2)
    second, read = _read(ledger, counted_rest, runs.tag, since)
    assert second == _whole(counted_rest, runs.tag, since)
    assert len(second) == 5
    assert read == 2, f"read {read} task-run records from the server for 2 new holds"


def test_a_ledger_the_server_no_longer_matches_is_read_whole_again(
    runs: TaggedTaskRuns,
    counted_rest,
    ledger,
) -> None:
    """A deleted run (as a wiped or replaced server, or a record that arrived late, would)
    changes the server's count: the ledger's copy is not used."""
    since = runs.since
    ids = runs.completed(4)
    _read(ledger, counted_rest, runs.tag, since)
    runs.delete(ids[1])
    after, read = _read(ledger, counted_rest, runs.tag, since)
    assert str(ids[1]) not in {row[0] for row in after}, "a hold the server no longer has came from the ledger"
    assert after == _whole(counted_rest, runs.tag, since) and len(after) == 3
    assert read == 3, "the ledger did not read the tag whole again"


def test_a_hold_still_running_when_read_is_read_again_until_it_is_over(
    runs: TaggedTaskRuns,
    counted_rest,
    ledger,
) -> None:
    since = runs.since
    runs.completed(2)
    held = runs.running()
    runs.completed(1)
    during, _ = _read(ledger, counted_rest, runs.tag, since)
    assert [row[2] for row in during if row[0] == str(held)] == [None], "the running hold was not read as running"
    force_state(runs.http, held, "COMPLETED")
    after, read = _read(ledger, counted_rest, runs.tag, since)
    assert after == _whole(counted_rest, runs.tag, since)
    assert [row[3] for row in after if row[0] == str(held)] == ["COMPLETED"], after
    assert read == 2, f"read {read} records: the hold still running and the one after it, not more"


def test_an_unusable_ledger_file_is_named_and_the_history_still_answers(stack: Stack, tmp_path: Path) -> None:
    """The ledger is a cache: a damaged file costs a whole read and one line saying so."""
    from slot_tools.ledger import LEDGER_FILE

    ledger = tmp_path / "data" / LEDGER_FILE
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"not a database\n" * 100)
    result = run_cli("slots", "history", "--since", "10m", "--json", env=stack.env(ETL_DATA_DIR=str(ledger.parent)))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"slot ledger {ledger} unusable" in lines[0], result.stderr
    report = json.loads(result.stdout)  # the session's last ten minutes, whatever earlier tests ran
    assert {row["tag"] for row in report["limits"]} == {"database", "api"}
    assert result.returncode == (1 if report["exceeded"] else 0), result.stdout[-2000:]


def test_serve_alls_keeper_leaves_a_history_only_the_last_moments_to_read(
    runs: TaggedTaskRuns,
    counted_rest,
    ledger,
) -> None:
    """serve-all reads new holds into the ledger in the background, so a history asked for
    later (the first of the day included) reads nothing the keeper already read."""
    from slot_tools.ledger import keeping

    since = runs.since
    runs.completed(3)
    with keeping(ledger, [runs.tag], every=0.2) as keeper:
        _wait_for_pass(keeper, after=0)
        kept, read = _read(ledger, counted_rest, runs.tag, since)
        assert len(kept) == 3 and read == 0, f"read {read} records the keeper had read"
        runs.completed(2)
        _wait_for_pass(keeper, after=keeper.passes + 1)  # one that began after the two were made
        kept, read = _read(ledger, counted_rest, runs.tag, since)
    assert kept == _whole(counted_rest, runs.tag, since) and len(kept) == 5
    assert read == 0, f"read {read} records the keeper had read"


def _wait_for_pass(keeper, after: int) -> None:
    deadline = time.monotonic() + 30
    while keeper.passes <= after:
        assert time.monotonic() < deadline, f"the keeper made {keeper.passes} passes in 30 s"
        time.sleep(0.05)
