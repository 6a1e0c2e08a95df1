"""Leases across restarts of the local Prefect server: how many are lost in N restarts.

SCHEDULING BENCHMARK ONLY: the slots are held by ``bench.worker``'s sleeping tasks, many
more than each limit has slots, so slots change hands all the time, as in a flood of ETL runs.

Each round: one worker per tag (``database`` 3 slots, ``api`` 10) fills its limit and keeps
waiters polling; once both limits are full the server is restarted as serve-all restarts it
(stopped, started again on the same home, ready on ``/api/ready``; with ``--kill``, its
process group SIGKILLed first, as a crash would leave it); the (counter, leases) of
both limits are read before and after. When the workers are over (their tasks that asked
for a slot while the server was down fail), a counter above the leases still on the server
is a lease lost for good: nothing will ever expire it. The round then frees what is left so
the next one starts at zero. The peak of each limit is read from the task-run records.

    uv run python -m bench.restart_leases                  # 20 rounds, ~10 minutes
    uv run python -m bench.restart_leases --kill              # SIGKILL instead of a stop
    uv run python -m bench.restart_leases --rounds 5 --storage memory
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.prefect_api import api_url_for
from common.prefect_rest import PrefectRest
from local_server.prefect_server import LocalPrefectServer
from local_server.processes import free_port
from slot_tools.history import peak_concurrency, read_intervals

LIMITS = {"database": 3, "api": 10}
TASKS = {"database": 24, "api": 80}  # 8 hand-offs per slot: waiters poll through the restart
TASK_SECONDS = 3.0
STORAGES = {
    "filesystem": "prefect.server.concurrency.lease_storage.filesystem",
    "memory": "prefect.server.concurrency.lease_storage.memory",
}
WORKER_BOUND_S = 180


def usage(api: str) -> dict[str, tuple[int, int]]:
    """(counter, live leases) of each limit."""
    with PrefectRest(api) as rest:
        return {tag: rest.tag_usage(tag) for tag in LIMITS}


def wait_full(api: str, workers: list[subprocess.Popen[bytes]], bound: float = 120) -> None:
    """Until each limit has been seen with all its slots leased (hand-offs make both at the
    same instant rare), while both workers still run."""
    deadline = time.monotonic() + bound
    seen: set[str] = set()
    while seen != set(LIMITS):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            raise SystemExit("error: the workers never filled both limits; see their logs")
        now = usage(api)
        seen |= {tag for tag, slots in LIMITS.items() if now[tag][1] >= slots}
        time.sleep(0.2)


def free_all(env: dict[str, str]) -> None:
    """Revoke what is left and zero the counters, so each round starts from nothing."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"]}), get_client(sync_client=True) as client:
        for tag in LIMITS:
            client.reset_concurrency_limit_by_tag(tag)
            client.update_global_concurrency_limit(f"tag:{tag}", GlobalConcurrencyLimitUpdate(active_slots=0))


def one_round(
    server: LocalPrefectServer, env: dict[str, str], logs: Path, n: int, kill: bool
) -> tuple[LocalPrefectServer, dict[str, Any]]:
    started = datetime.now(UTC)
    workers, outputs = [], []
    for tag in LIMITS:
        log = open(logs / f"round{n}-{tag}.log", "wb")
        outputs.append(log)
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.worker",
                    "shared",
                    "--tag",
                    tag,
                    "--tasks",
                    str(TASKS[tag]),
                    "--seconds",
                    str(TASK_SECONDS),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
    try:
        wait_full(server.api_url, workers)
        before = usage(server.api_url)
        t0 = time.monotonic()
        if kill:  # as a crash or the OOM killer would: then restarted as serve-all's supervisor does
            os.killpg(server.pid, signal.SIGKILL)  # type: ignore[arg-type]
            server.stop()
            server.start()
        else:  # stopped and started again as serve-all stops and starts it
            server.stop()
            server = LocalPrefectServer(home=server.home, port=server.port, extra_env=server.extra_env)
            server.start()
        server.wait_healthy(120)
        down = time.monotonic() - t0
        after = usage(server.api_url)
        for w in workers:
            w.wait(timeout=WORKER_BOUND_S)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(timeout=30)
        for log in outputs:
            log.close()
    left = usage(server.api_url)
    # The peak from the task-run records, and the same over the task runs whose body ran (the
    # workers print each one): when a flow run fails (here: its own call to the server failed
    # during the restart), its task runner cancels the tasks still waiting for a slot, and
    # those are recorded Running for a fraction of a second before Crashed.
    ran = {
        line.split()[1]
        for f in logs.glob(f"round{n}-*.log")
        for line in f.read_text(errors="replace").splitlines()
        if line.startswith("HOLD ")
    }
    peaks, bodies = {}, {}
    with PrefectRest(server.api_url) as rest:
        for tag in LIMITS:
            intervals = read_intervals(rest, [tag], since=started)
            peaks[tag] = peak_concurrency(intervals)[0]
            bodies[tag] = peak_concurrency([iv for iv in intervals if iv.task_run_id in ran])[0]
    lost = {tag: max(0, left[tag][0] - left[tag][1]) for tag in LIMITS}
    free_all(env)
    return server, {
        "before": before,
        "after": after,
        "left": left,
        "lost": lost,
        "peaks": peaks,
        "bodies": bodies,
        "down": down,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--storage", choices=sorted(STORAGES), default="filesystem")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the server instead of stopping it")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="restart-leases-"))
    port = free_port()
    server = LocalPrefectServer(
        home=home / "prefect", port=port, extra_env={"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": STORAGES[args.storage]}
    )
    server.start()
    try:
        server.wait_healthy(120)
        env = dict(os.environ, PREFECT_API_URL=api_url_for("127.0.0.1", port), ETL_DATA_DIR=str(home / "data"))
        subprocess.run([Path(sys.executable).parent / "limits", "sync"], env=env, check=True, capture_output=True)
        how = "SIGKILLed and restarted" if args.kill else "stopped and started"
        print(f"lease storage {args.storage}, server {how}; (counter, leases) per limit; logs in {home}")
        print(
            f"{'round':>5}  {'before restart':>28}  {'after restart':>28}  {'left after the runs':>28}  "
            f"{'lost':>18}  {'peak':>18}  down  peak of bodies run"
        )
        total = {tag: 0 for tag in LIMITS}
        worst = {tag: 0 for tag in LIMITS}
        worst_bodies = {tag: 0 for tag in LIMITS}
        for n in range(1, args.rounds + 1):
            server, r = one_round(server, env, home, n, args.kill)
            for tag in LIMITS:
                total[tag] += r["lost"][tag]
                worst[tag] = max(worst[tag], r["peaks"][tag])
                worst_bodies[tag] = max(worst_bodies[tag], r["bodies"][tag])
            print(
                f"{n:>5}  {str(r['before']):>28}  {str(r['after']):>28}  {str(r['left']):>28}  "
                f"{str(r['lost']):>18}  {str(r['peaks']):>18}  {r['down']:.1f} s  {r['bodies']}",
                flush=True,
            )
        print(
            f"leases lost in {args.rounds} restarts: {total}; highest peak {worst}, of task bodies run "
            f"{worst_bodies} (limits {LIMITS})"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
