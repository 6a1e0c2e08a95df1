"""``slots history`` on the session's real server, after a real reports run."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from support import Stack, TaggedTaskRuns, run_cli, running_task_run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def reports_run(stack: Stack, prefect_client, rest) -> UUID:
    """One direct reports run (it holds database and api slots), fully recorded on the server."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterStartTime
    from prefect.client.schemas.sorting import FlowRunSort

    from slot_tools.history import wait_until_recorded

    began = datetime.now(UTC)
    result = run_cli("reports", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = prefect_client.read_flow_runs(
        flow_filter=FlowFilter(name=FlowFilterName(any_=["reports"])),
        flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime.model_validate({"after_": began})),
        sort=FlowRunSort.START_TIME_DESC,
        limit=1,
    )
    assert runs, "the reports run is not on the server"
    assert wait_until_recorded(rest, [runs[0].id]), "task-run states never reached the server"
    _BEGAN.append(began)
    return runs[0].id


_BEGAN: list[datetime] = []


def since_this_module() -> str:
    """A --since window that starts just before this module's run: earlier tests in the session
    ran flows under other limits files (e.g. database = 8 on purpose), which must not count."""
    return f"{int((datetime.now(UTC) - _BEGAN[0]).total_seconds()) + 2}s"


def limits_file() -> dict[str, int]:
    from common.resources import get_registry

    return get_registry().tag_limits()


def test_history_json_proves_every_limit_held(reports_run: UUID) -> None:
    result = run_cli("slots", "history", "--since", since_this_module(), "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["exceeded"] is False
    by_tag = {row["tag"]: row for row in report["limits"]}
    assert set(by_tag) == set(limits_file())
    for tag, slots in limits_file().items():
        row = by_tag[tag]
        assert row["limit"] == slots
        assert 1 <= row["peak"] <= slots, row
        assert row["exceeded"] is False
        assert 0 < row["utilization"] <= 1
        assert "reports" in {f["flow"] for f in row["flows"]}


def test_history_restricted_to_one_flow_run(reports_run: UUID) -> None:
    result = run_cli("slots", "history", "--flow-run", str(reports_run), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    for row in json.loads(result.stdout)["limits"]:
        assert [f["flow"] for f in row["flows"]] == ["reports"], row
        assert row["task_runs"] >= 1


def test_history_table_names_each_limit_and_the_verdict(reports_run: UUID) -> None:
    result = run_cli("slots", "history", "--since", since_this_module())
    assert result.returncode == 0, result.stderr[-2000:]
    for tag, slots in limits_file().items():
        assert re.search(rf"tag:{tag}\s.*\b\d+/{slots}\b", result.stdout), result.stdout
    assert "every limit held" in result.stdout


def test_history_html_has_the_flow_and_one_lane_per_slot(reports_run: UUID, tmp_path: Path) -> None:
    page_path = tmp_path / "history.html"
    result = run_cli("slots", "history", "--since", since_this_module(), "--html", str(page_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(page_path.resolve())
    page = page_path.read_text(encoding="utf-8")
    assert "reports" in page
    assert "http://" not in page and "https://" not in page
    sections = page.split("<section>")[1:]
    assert len(sections) == len(limits_file())
    for section, (tag, slots) in zip(sections, limits_file().items(), strict=True):
        assert f"tag:{tag}" in section
        assert section.count("<svg") == 1
        assert len(re.findall(r'<rect class="lane[ "]', section)) == slots
        assert 'class="lane overflow"' not in section


@pytest.mark.parametrize("since", ["2x", "0m", "h"])
def test_a_bad_since_is_one_line_and_exit_2(since: str) -> None:
    result = run_cli("slots", "history", "--since", since)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("error: --since"), result.stderr


def test_a_task_run_created_between_two_pages_is_not_read_twice(stack: Stack) -> None:
    """Reads by offset (every task run of a flow run) go a page at a time, newest id first. A
    task run created between two pages with the highest id (ids grow with time) pushes every
    other one back a place, so the second page starts with the last of the first; each must
    count once (a slot counted twice could report a limit exceeded that held)."""
    import httpx

    from common.prefect_api import auth_headers
    from common.prefect_rest import PAGE, PrefectRest

    with httpx.Client(base_url=stack.api_url + "/", headers=auth_headers(), timeout=10) as http:
        flow = http.post("flows/", json={"name": "paging"}).json()["id"]
        flow_run = http.post("flow_runs/", json={"flow_id": flow, "name": f"paging-{uuid4().hex[:8]}"}).json()["id"]
        created = [running_task_run(http, "paging", flow_run=flow_run) for _ in range(PAGE + 1)]
        newest = UUID(int=(0xFFFFFFFF << 96) | uuid4().int >> 32)
        inserted: list[UUID] = []

        def between_pages(response: httpx.Response) -> None:
            if response.request.url.path.endswith("/task_runs/filter") and not inserted:
                inserted.append(running_task_run(http, "paging", flow_run=flow_run, run_id=newest))

        try:
            with PrefectRest(stack.api_url) as rest:
                rest.http.event_hooks["response"].append(between_pages)
                ids = [run.id for run in rest.task_runs_of([UUID(flow_run)])]
            assert inserted == [newest], "no task run was created between the pages"
            assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} task run(s) read twice"
            assert set(created) <= set(ids), "a task run was missed"
        finally:
            http.delete(f"flow_runs/{flow_run}")


def _paged_read(
    stack: Stack, count: int, expected_start: datetime | None = None
) -> tuple[list[UUID], list[UUID], list[dict]]:
    """``count`` Running task runs of a tag of their own (all expected at ``expected_start`` if
    given), read back as the history reads a tag: (made, read, the bodies of the page requests).
    The runs are deleted again."""
    from common.prefect_rest import PrefectRest

    bodies: list[dict] = []
    with TaggedTaskRuns(stack.api_url, "paging") as runs:
        created = [runs.running(expected_start) for _ in range(count)]
        with PrefectRest(stack.api_url) as rest:
            rest.http.event_hooks["request"] = [
                lambda request: (
                    bodies.append(json.loads(request.content))
                    if request.url.path.endswith("/task_runs/filter")
                    else None
                )
            ]
            read = [run.id for run in rest.started_with_tag(runs.tag)]
    return created, read, bodies


def test_a_tags_task_runs_are_paged_by_expected_start_not_by_offset(stack: Stack) -> None:
    """The history's read of a tag (one page of 200 after another) goes on from the last
    expected start it read, so the server's cost of a page does not grow with the offset;
    every task run is read once."""
    from common.prefect_rest import PAGE

    created, read, bodies = _paged_read(stack, 2 * PAGE + 1)
    assert sorted(read) == sorted(created), "not every task run read exactly once"
    assert len(bodies) == 3 and not any(body.get("offset") for body in bodies), bodies
    assert [("expected_start_time" in body["task_runs"]) for body in bodies] == [False, True, True]


def test_a_page_of_runs_sharing_one_expected_start_is_read_on_by_offset(stack: Stack) -> None:
    """More than a page of task runs expected at one same moment: a cursor on the expected
    start cannot get past them, so the read goes on by offset, and reads each run once."""
    from common.prefect_rest import PAGE

    created, read, bodies = _paged_read(stack, PAGE + 1, expected_start=datetime.now(UTC))
    assert sorted(read) == sorted(created), "not every task run read exactly once"
    assert [body.get("offset") for body in bodies] == [None, 0, PAGE], bodies
