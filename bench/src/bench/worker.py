"""One benchmark flow process (`python -m bench.worker ...`).

SCHEDULING BENCHMARK ONLY: each task body is ``time.sleep`` on purpose, so the measured gaps
are Prefect's slot hand-off and nothing else. No ETL code in this repository sleeps.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.runtime import flow_run, task_run
from prefect.task_runners import ThreadPoolTaskRunner


@task(name="bench-hold", persist_result=False, cache_policy=NO_CACHE)
def hold(seconds: float) -> None:
    print(f"HOLD {task_run.id}", flush=True)  # the body ran: what bench.restart_leases counts
    time.sleep(seconds)  # stands in for work: this benchmark measures scheduling only


@flow(name="bench-shared", persist_result=False)
def shared(tag: str, tasks: int, seconds: float) -> str:
    """N tasks on one tag: the server's limit paces them across every benchmark process."""
    tagged = hold.with_options(tags=[tag])
    wait([tagged.submit(seconds) for _ in range(tasks)])
    return str(flow_run.id)


@flow(name="bench-local-pool", persist_result=False)
def local_pool(tasks: int, seconds: float) -> str:
    """The baseline: a thread pool of L in one flow; no server limit, nothing shared."""
    wait([hold.submit(seconds) for _ in range(tasks)])
    return str(flow_run.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["shared", "local"])
    parser.add_argument("--tag", default="bench")
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--workers", type=int, default=3, help="thread pool size (local mode)")
    args = parser.parse_args()
    if args.mode == "shared":
        run_id = shared(args.tag, args.tasks, args.seconds)
    else:
        runner: Any = ThreadPoolTaskRunner(max_workers=args.workers)  # typed for any future by Prefect
        pooled = local_pool.with_options(task_runner=runner)
        run_id = pooled(args.tasks, args.seconds)
    print(f"FLOW_RUN_ID={run_id}", flush=True)


if __name__ == "__main__":
    main()
