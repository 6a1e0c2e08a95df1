"""Prefect's replicated server tier (``local_server.replicas``): two API replicas
(``prefect server start --no-services``) and one ``prefect server services start`` on one
PostgreSQL, with events, Docket and slot leases in a real Redis (``prefect-redis``).

ingest is served against replica 0; reports against replica 1, through a load balancer
(``local_server.balancer``) that falls back to replica 0 while replica 1 is away, as a
production balancer does. Each flow's tasks ask a different API process for the same
``database`` slots. While both hold slots, replica 1 is stopped and started again (a rolling
restart). Each flow is capped at 2 of the 3 ``database`` slots, and ingest extracts every
table, so both runs hold slots at once for many seconds, whichever process polls first.
Asserted from the server's task-run records, both replicas' views, the balancer's
counts and Redis itself: the limit held across replicas, both replicas saw the same holders,
the leases reports took through replica 1 outlived it, both runs completed, nothing is left
taken or leased.
(Without the balancer, a run whose only replica vanishes fails the call it was making:
Prefect's client does not retry a refused connection on a fresh client.)
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from common.prefect_rest import PrefectRest
from local_server.balancer import Balancer, balancing
from local_server.replicas import PrefectReplicas
from support import (
    ROOT,
    SERVING,
    Stack,
    assert_every_limit_held,
    capped_limits,
    free_port,
    linked_data_dir,
    script,
    stop_with_ctrl_c,
    trigger_at,
    wait_final_at,
    wait_for_text,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectReplicas]:
    replicas = PrefectReplicas(
        home=tmp_path_factory.mktemp("replicas"), ports=(free_port(), free_port()), redis_port=free_port()
    )
    replicas.start()
    try:
        yield replicas
    finally:
        replicas.stop()


def _holders(api: str) -> dict[UUID, UUID]:
    """The task runs holding ``database`` leases, as ``api`` reports them: task run -> flow run."""
    with PrefectRest(api) as rest:
        held = rest.task_runs_by_id(rest.tag_holders("database"))
    return {task: UUID(str(rec.flow_run_id)) for task, rec in held.items()}


def _leases_in_redis(tier: PrefectReplicas) -> int:
    import redis

    assert tier.redis is not None
    with redis.Redis(host=tier.host, port=tier.redis.port) as client:
        return sum(1 for _ in client.scan_iter("prefect:concurrency:lease:*"))


def test_the_limit_holds_across_replicas_and_a_replica_restart_leaks_nothing(
    stack: Stack, tier: PrefectReplicas, tmp_path: Path
) -> None:
    first, second = tier.api_urls
    data = linked_data_dir(stack, tmp_path)
    limits = capped_limits(tmp_path / "limits.toml")  # both runs hold database slots at once, by construction
    if (stack.data_dir / "lake").exists():  # reports read lake files while ingest replaces them
        shutil.copytree(stack.data_dir / "lake", data / "lake", ignore=shutil.ignore_patterns(".staging"))
    servers: list[subprocess.Popen[bytes]] = []
    with balancing((tier.ports[1], tier.ports[0])) as balancer:
        try:
            for command, api in (("serve-ingest", first), ("serve-reports", balancer.api_url)):
                log = tmp_path / f"{command}.log"
                servers.append(
                    subprocess.Popen(
                        [script(command)],
                        stdout=open(log, "wb"),
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                        stdin=subprocess.DEVNULL,
                        env=stack.env(PREFECT_API_URL=api, ETL_DATA_DIR=str(data), ETL_LIMITS_FILE=str(limits)),
                    )
                )
            for command, proc in zip(("serve-ingest", "serve-reports"), servers, strict=True):
                wait_for_text(tmp_path / f"{command}.log", SERVING, proc, timeout=120)
            _run_and_restart(tier, balancer, tmp_path)
        finally:
            for proc in servers:
                stop_with_ctrl_c(proc)


def _run_and_restart(tier: PrefectReplicas, balancer: Balancer, tmp_path: Path) -> None:
    first, second = tier.api_urls
    ingest = trigger_at(first, "ingest/local")
    reports = trigger_at(balancer.api_url, "reports/local")
    runs = sorted({ingest, reports})
    deadline = time.monotonic() + 120
    while set(_holders(first).values()) != set(runs):
        assert time.monotonic() < deadline, "the two runs never held database slots at the same time"
        time.sleep(0.2)
    assert balancer.served[tier.ports[1]] > 0 and balancer.served[tier.ports[0]] == 0, balancer.served

    # One lease store: every holder replica 1 names, replica 0 names too (read just before and
    # just after, so a hand-off in between cannot count as a difference), reading after reading.
    compared = 0
    for _ in range(50):
        before, through_second, after = _holders(first), _holders(second), _holders(first)
        if not through_second:
            continue
        assert set(through_second) <= set(before) | set(after), (
            f"replica 1 named holders replica 0 did not: {through_second} against {before} / {after}"
        )
        compared += 1
        if compared == 10:
            break
    assert compared == 10, f"only {compared} readings of replica 1 named any holder"

    # Stop replica 1 at a moment when the reports run holds database slots, taken through it.
    deadline = time.monotonic() + 120
    while not (taken := {task for task, run in _holders(first).items() if run == reports}):
        assert time.monotonic() < deadline, "the reports run never held a database slot again"
        time.sleep(0.05)
    assert balancer.served[tier.ports[0]] == 0, "reports talked to replica 0 before replica 1 stopped"
    tier.stop_replica(1)
    stopped = time.monotonic()
    held_while_down = _holders(first)
    read_at = datetime.now(UTC)
    back = tier.start_replica(1)
    print(
        f"\nreplica 1 stopped while reports held {len(taken)} database slot(s); with it down, replica 0 "
        f"saw {len(held_while_down)} holders; ready again {time.monotonic() - stopped:.1f} s later "
        f"({back:.1f} s to start)"
    )

    states = {i: r.state_type for i, r in wait_final_at(first, runs, timeout=300).items()}
    # A lease missing from that reading was lost unless its task run had ended by then (a task
    # releases its slot after it ends). Its end comes from the run's own records, read once
    # the runs are over: the server records task-run states from events, a moment later.
    with PrefectRest(first) as rest:
        missing = rest.task_runs_by_id(sorted(taken - set(held_while_down)))
        lost = {t: rec.end_time for t, rec in missing.items() if rec.end_time is None or rec.end_time > read_at}
        assert not lost, (
            f"leases lost with replica 1: task runs that ran on after {read_at} without their lease: {lost}"
        )
        messages = {r: httpx.get(f"{first}/flow_runs/{r}", timeout=10).json()["state"]["message"] for r in runs}
        print(
            f"ingest {states[ingest]}, reports {states[reports]}; connections by replica port: {dict(balancer.served)}"
        )
        assert states[ingest] == "COMPLETED", messages[ingest]
        assert states[reports] == "COMPLETED", (messages[reports], (tmp_path / "serve-reports.log").read_text()[-3000:])
        assert balancer.served[tier.ports[0]] > 0, "reports never fell back to replica 0 while replica 1 was away"

        assert_every_limit_held(rest, runs, where=" across both replicas")

    for api in (first, second):
        with PrefectRest(api) as rest:
            assert rest.tag_usage("database") == (0, 0), f"{api}: database slots still taken"
            assert rest.tag_usage("api") == (0, 0), f"{api}: api slots still taken"
    assert _leases_in_redis(tier) == 0, "leases left in Redis after both runs ended"
