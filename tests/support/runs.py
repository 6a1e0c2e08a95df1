"""Flow runs on the session server: trigger a served deployment, wait for final states, read
back what the server keeps about a run."""

from __future__ import annotations

import os
import re
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from common.prefect_rest import FINAL_STATES
from support.processes import engine_pid_for


def trigger(client: Any, name: str, **parameters: Any) -> UUID:
    """A run of the served deployment ``name`` (``flow/deployment``), with these parameters."""
    deployment = client.read_deployment_by_name(name)
    return client.create_flow_run_from_deployment(deployment.id, parameters=parameters or None).id


def trigger_at(api_url: str, name: str, **parameters: Any) -> UUID:
    """A run of the deployment ``name`` created through the REST API of the server at
    ``api_url`` (not the session's: a server of the test's own, or one replica of several)."""
    import httpx

    deployment = httpx.get(f"{api_url}/deployments/name/{name}", timeout=10)
    deployment.raise_for_status()
    created = httpx.post(
        f"{api_url}/deployments/{deployment.json()['id']}/create_flow_run", json={"parameters": parameters}, timeout=10
    )
    created.raise_for_status()
    return UUID(created.json()["id"])


def wait_final(client: Any, ids: list[UUID], timeout: float = 240) -> dict[UUID, Any]:
    """The flow runs, once every one is in a final state; fails naming the states after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        runs = {i: client.read_flow_run(i) for i in ids}
        if all(r.state_type.value in FINAL_STATES for r in runs.values()):
            return runs
        assert time.monotonic() < deadline, {r.name: r.state_type.value for r in runs.values()}
        time.sleep(0.5)


def wait_final_at(api_url: str, ids: list[UUID], timeout: float = 240) -> dict[UUID, Any]:
    """:func:`wait_final` through the REST API of the server at ``api_url`` (not the session's):
    the runs' records, once every one is in a final state; fails naming the states after ``timeout``."""
    from common.prefect_rest import PrefectRest

    deadline = time.monotonic() + timeout
    with PrefectRest(api_url) as rest:
        while True:
            runs = rest.flow_runs_by_id(ids)
            if len(runs) == len(ids) and all(r.state_type in FINAL_STATES for r in runs.values()):
                return runs
            assert time.monotonic() < deadline, f"runs not over after {timeout:.0f} s: " + str(
                {r.name: r.state_type for r in runs.values()}
            )
            time.sleep(1)


def kill_while_holding(
    client: Any, rest: Any, serve_pid: int, kill: tuple[str, ...], also: tuple[str, ...] = ()
) -> tuple[dict[str, UUID], datetime]:
    """Trigger the served deployments ``kill`` and ``also``; SIGKILL the runs of ``kill`` (their
    flow-run processes, children of ``serve_pid``) once each run of both holds a database slot
    (so a run of ``also`` keeps a lane: it never waits out the killed slots' leases). Returns
    the runs by deployment, and the earliest moment a killed holder could have taken its slot."""
    runs = {name: trigger(client, name) for name in (*kill, *also)}
    targets = {runs[name] for name in kill}
    awaited = set(runs.values())
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the runs never all held a database slot"
        held = rest.task_runs_by_id(rest.tag_holders("database"))
        holding = {t.flow_run_id for t in held.values()} & awaited
        if holding == awaited:
            pids = [engine_pid_for(serve_pid, run) for run in targets]
            if None not in pids:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
                # A slot is taken after its task run went Pending: its lease cannot expire
                # before that moment plus the lease (renewals only push expiry later).
                pending = [t.expected_start_time or t.created for t in held.values() if t.flow_run_id in targets]
                return runs, min(p for p in pending if p is not None)
        time.sleep(0.2)


def flow_run_id(stderr: str) -> str:
    """The flow run a CLI run created, from the link Prefect logs."""
    match = re.search(r"/runs/flow-run/([0-9a-f-]{36})", stderr)
    assert match, "no flow run link in the output"
    return match.group(1)


def server_text(client: Any, run: str) -> str:
    """Everything the server keeps about a flow run that a user can read: its logs, its
    state and parameters, and its task runs' states."""
    from uuid import UUID

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    run_id = UUID(run)
    texts = [client.read_flow_run(run_id).model_dump_json()]
    texts += [
        t.model_dump_json()
        for t in client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200)
    ]
    offset = 0
    while True:
        page = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])), limit=200, offset=offset
        )
        texts += [entry.message for entry in page]
        if len(page) < 200:
            return "\n".join(texts)
        offset += 200


def assert_every_limit_held(rest: Any, ids: list[UUID], where: str = "") -> None:
    """From the server's task-run records of the runs ``ids``: on ``database`` and ``api``,
    never more task runs at once than the limit, and every run took slots of both."""
    from common.resources import get_registry
    from slot_tools.history import peak_concurrency, read_intervals, wait_until_recorded

    assert wait_until_recorded(rest, ids)
    registry = get_registry()
    for tag in ("database", "api"):
        intervals = read_intervals(rest, [tag], flow_run_ids=ids)
        peak, when = peak_concurrency(intervals)
        print(f"{tag}: peak {peak} at {when}{where}, limit {registry[tag].slots}, {len(intervals)} task runs")
        assert peak <= registry[tag].slots, f"{tag}: {peak} task runs held slots at once{where}"
        assert {iv.flow_run_id for iv in intervals} == {str(i) for i in ids}, f"not every run used {tag}"


def running_task_run(
    http: Any, tag: str, flow_run: str | None = None, run_id: UUID | None = None, expected_start: datetime | None = None
) -> UUID:
    """A Running task run tagged ``tag``, made through the REST API with the ``httpx.Client``
    ``http`` (its base URL the server's API); the server stamps its start time. With
    ``expected_start`` it is first Scheduled for that moment, which the server keeps as its
    expected start (a run's first state sets it), then set Running."""
    state: dict[str, Any] = {"type": "RUNNING"}
    if expected_start is not None:
        state = {"type": "SCHEDULED", "state_details": {"scheduled_time": expected_start.isoformat()}}
    body: dict[str, Any] = {"name": tag, "task_key": tag, "dynamic_key": uuid4().hex, "tags": [tag], "state": state}
    if flow_run is not None:
        body["flow_run_id"] = flow_run
    if run_id is not None:
        body["id"] = str(run_id)
    made = http.post("task_runs/", json=body)
    made.raise_for_status()
    made_id = UUID(made.json()["id"])
    if expected_start is not None:
        force_state(http, made_id, "RUNNING")
    return made_id


def force_state(http: Any, run_id: UUID, state_type: str) -> None:
    """Put the task run in a state of ``state_type`` (forced: the server's rules for a task's
    own transitions are not what a test that writes runs by hand is about)."""
    http.post(f"task_runs/{run_id}/set_state", json={"state": {"type": state_type}, "force": True}).raise_for_status()


class TaggedTaskRuns:
    """Task runs of a tag of their own on the server at ``api_url``, made through its REST
    API; every one is deleted again when the ``with`` block ends."""

    def __init__(self, api_url: str, prefix: str) -> None:
        import httpx

        from common.prefect_api import auth_headers

        self.tag = f"{prefix}-{uuid4().hex[:8]}"
        self.since = datetime.now(UTC) - timedelta(seconds=1)  # before the first of them
        self.http = httpx.Client(base_url=api_url + "/", headers=auth_headers(), timeout=10)
        self.made: list[UUID] = []

    def running(self, expected_start: datetime | None = None) -> UUID:
        self.made.append(running_task_run(self.http, self.tag, expected_start=expected_start))
        return self.made[-1]

    def completed(self, count: int) -> list[UUID]:
        ids = [self.running() for _ in range(count)]
        for run_id in ids:
            force_state(self.http, run_id, "COMPLETED")
        return ids

    def delete(self, run_id: UUID) -> None:
        self.http.delete(f"task_runs/{run_id}").raise_for_status()

    def __enter__(self) -> TaggedTaskRuns:
        return self

    def __exit__(self, *exc: object) -> None:
        for run_id in self.made:
            self.http.delete(f"task_runs/{run_id}")  # one a test deleted already answers 404
        self.http.close()


def task_run_logs(api_url: str, task_runs: list[UUID]) -> list[tuple[UUID, datetime, str]]:
    """The server's log records of ``task_runs``: (task run, when logged, message). When a
    holder stopped is read here: a record's end is when its final state reached the server,
    which can be later (the event carrying it can be held up or lost with a freeze)."""
    import httpx

    response = httpx.post(
        f"{api_url}/logs/filter",
        json={"logs": {"task_run_id": {"any_": [str(t) for t in task_runs]}}, "limit": 200},
        timeout=10,
    )
    response.raise_for_status()
    return [
        (UUID(entry["task_run_id"]), datetime.fromisoformat(entry["timestamp"]), entry["message"])
        for entry in response.json()
    ]
