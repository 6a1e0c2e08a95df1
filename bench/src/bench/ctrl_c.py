"""Ctrl-C after a leak and its repair, many times: does serve-all ever leave something behind?

Each trial starts ``serve-all`` the way a terminal runs it (a session and process group of its
own, on a free port, a data folder of its own), triggers both deployments, SIGKILLs the
flow-run processes once they hold ``database`` slots, waits for the watchdog's repair, then
sends SIGINT to the whole process group, as a terminal's Ctrl-C does. A trial fails when
anything it started still runs 45 s later, when PostgreSQL stopped before the API, or when the
port is still taken. A fault seen once in ten stops needs a few dozen trials to show.

    uv run python -m bench.ctrl_c --trials 30
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from common.prefect_api import api_url_for
from local_server.processes import descendants, free_port, port_is_free, running

SERVING = "Your deployments are being served"
STOP_BOUND_SECONDS = 45.0


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def trial(n: int, shop: Path, root: Path) -> str | None:
    """One trial; None when everything stopped in order, else what went wrong."""
    data = root / f"trial-{n}" / "data"
    (data / "demo").mkdir(parents=True)
    os.link(shop, data / "demo" / "shop.duckdb")
    port = free_port()
    api = api_url_for("127.0.0.1", port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ETL_"))}
    env.update(ETL_DATA_DIR=str(data), ETL_DEMO_API_PORT=str(free_port()), ETL_BOARD_PORT=str(free_port()))
    log = root / f"trial-{n}" / "serve-all.log"
    serve_all = str(Path(sys.executable).parent / "serve-all")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [serve_all, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait(lambda: SERVING in log.read_text(errors="replace"), 180, "serve-all never served")
        with httpx.Client(base_url=api + "/", timeout=10) as http:
            for name in ("ingest/local", "reports/local"):
                deployment = http.get(f"deployments/name/{name}").json()["id"]
                http.post(f"deployments/{deployment}/create_flow_run", json={}).raise_for_status()
            _wait(
                lambda: len(http.get("concurrency_limits/tag/database").json()["active_slots"]) >= 2,
                120,
                "the runs never held database slots",
            )
        for pid in descendants(proc.pid):
            try:
                if b"prefect.engine" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                continue
        _wait(lambda: "auto-repair" in log.read_text(errors="replace"), 90, "the watchdog never repaired")
        started = descendants(proc.pid)
        server = int((data / "prefect" / "server.pid").read_text())
        postmaster = int((data / "prefect" / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        os.killpg(proc.pid, signal.SIGINT)
        stopped = time.monotonic()
        order: list[str] = []
        while time.monotonic() - stopped < STOP_BOUND_SECONDS:
            for name, pid in (("api", server), ("postgres", postmaster), ("serve-all", proc.pid)):
                if name not in order and not running(pid):
                    order.append(name)
            if len(order) == 3:
                break
            time.sleep(0.05)
        proc.wait(timeout=5)
        left = sorted(p for p in started if running(p))
        if left or len(order) < 3:
            return f"still running {STOP_BOUND_SECONDS:.0f} s after Ctrl-C: pids {left}, stopped so far {order}"
        if order.index("postgres") < order.index("api"):
            return f"PostgreSQL stopped before the API: {order}"
        if not port_is_free("127.0.0.1", port):
            return f"port {port} still taken"
        return None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in descendants(proc.pid):
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--shop",
        type=Path,
        default=Path("data") / "demo" / "shop.duckdb",
        help="a seeded demo shop (uv run seed-demo makes one)",
    )
    args = parser.parse_args()
    if not args.shop.is_file():
        sys.exit(f"error: no demo shop at {args.shop}: run `uv run seed-demo` first, or pass --shop")
    root = Path(tempfile.mkdtemp(prefix="ctrl-c-"))
    failures = []
    try:
        for n in range(1, args.trials + 1):
            began = time.monotonic()
            try:
                problem = trial(n, args.shop.resolve(), root)
            except TimeoutError as exc:  # the trial's own processes are stopped by then
                problem = f"did not get as far as the Ctrl-C: {exc}"
            print(
                f"trial {n}: {problem or 'everything stopped in order'} ({time.monotonic() - began:.0f} s)", flush=True
            )
            if problem:
                failures.append(n)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{args.trials - len(failures)} of {args.trials} trials left nothing behind"
        + (f"; failed: {', '.join(map(str, failures))}" if failures else "")
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
