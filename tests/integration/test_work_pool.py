"""The production path once, end to end: every declared flow deployed to a process work pool
on the session server (``deploy-flows``, from the flows' own declarations), and a worker that
picks the runs up and completes them."""

from __future__ import annotations

import subprocess
import time

import pytest

from support import ROOT, Stack, run_cli, script

pytestmark = pytest.mark.integration


def prefect(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script("prefect"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def test_every_declared_flow_deploys_to_a_process_pool_and_a_worker_runs_it(stack: Stack, prefect_client) -> None:
    from common.flow_packages import declared_flows

    pool = "etl-process"
    env = stack.env()
    created = prefect("work-pool", "create", pool, "--type", "process", env=env)
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = run_cli("deploy-flows", "--pool", pool, env=env)
    assert deployed.returncode == 0, deployed.stdout[-3000:] + deployed.stderr[-3000:]

    for name, entry in declared_flows().items():
        deployment = prefect_client.read_deployment_by_name(f"{name}/pool")
        # a module-path entrypoint: the declared "module:function" as Prefect stores it, dotted
        module_path = entry.value.replace(":", ".")
        assert deployment.work_pool_name == pool and deployment.entrypoint == module_path, deployment
        assert deployment.pull_steps == [], deployment.pull_steps  # the installed workspace is imported
    runs = {
        name: prefect_client.create_flow_run_from_deployment(
            prefect_client.read_deployment_by_name(name).id, parameters=parameters
        ).id
        for name, parameters in (
            ("ingest/pool", {"tables": ["regions", "currencies"]}),
            ("reports/pool", {"names": ["revenue_by_month"]}),
        )
    }
    started = time.monotonic()
    # One poll, then wait for the runs it took (--limit makes --run-once wait for them).
    worker = prefect("worker", "start", "--pool", pool, "--run-once", "--limit", str(len(runs)), env=env, timeout=300)
    states = {name: prefect_client.read_flow_run(run).state for name, run in runs.items()}
    print(f"\nworker ran the pool deployments in {time.monotonic() - started:.1f} s: {states}")
    assert worker.returncode == 0, worker.stdout[-3000:] + worker.stderr[-3000:]
    assert all(s is not None and s.type.value == "COMPLETED" for s in states.values()), (
        f"{states}\n{worker.stdout[-3000:]}{worker.stderr[-3000:]}"
    )
