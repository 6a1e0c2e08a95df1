"""The production path once, end to end: the repository's ``prefect.yaml`` deployed to a
process work pool on the session server, and a worker that picks the run up and completes it."""

from __future__ import annotations

import subprocess
import time

import pytest
import yaml

from support import ROOT, Stack, script

pytestmark = pytest.mark.integration


def prefect(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("prefect"), *args], capture_output=True, text=True, timeout=timeout, env=env,
        cwd=ROOT, stdin=subprocess.DEVNULL,
    )


def test_prefect_yaml_deploys_to_a_process_pool_and_a_worker_runs_it(stack: Stack, prefect_client) -> None:  # type: ignore[no-untyped-def]
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    pools = {d["work_pool"]["name"] for d in config["deployments"]}
    assert len(pools) == 1
    pool = pools.pop()
    env = stack.env()

    created = prefect("work-pool", "create", pool, "--type", "process", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = prefect("--no-prompt", "deploy", "--all", env=env)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    for name in ("ingest/pool", "reports/pool"):
        assert prefect_client.read_deployment_by_name(name).work_pool_name == pool
    deployment = prefect_client.read_deployment_by_name("ingest/pool")
    run = prefect_client.create_flow_run_from_deployment(
        deployment.id, parameters={"tables": ["regions", "currencies"]}
    )
    started = time.monotonic()
    # One poll, then wait for the run it took (--limit 1 makes --run-once wait for it).
    worker = prefect("worker", "start", "--pool", pool, "--run-once", "--limit", "1", env=env, timeout=300)
    state = prefect_client.read_flow_run(run.id).state
    print(f"\nworker ran the pool deployment in {time.monotonic() - started:.1f} s: {state}")
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    assert state is not None and state.type.value == "COMPLETED", (
        f"{state}\n{worker.stdout[-3000:]}{worker.stderr[-3000:]}"
    )
