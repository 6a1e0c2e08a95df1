"""Measure what a Prefect server restart does to held slots, per lease storage.

For each lease storage (ours: filesystem; Prefect's default: memory) this starts a fresh
local server configured as serve-all configures it, starts a real ingest run, restarts the
server while the run holds `database` slots, waits for the run to end and for any lease to
expire (lease 60 s + repossessor), and reports the `tag:database` counter and live holders.
A counter above zero with no holder is a leaked slot.

    uv run python -m bench.restart_contrast            # 5-10 minutes
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common.prefect_api import api_url_for
from common.prefect_rest import PrefectRest
from local_server.prefect_server import LocalPrefectServer
from local_server.processes import free_port

STORAGES = {
    "filesystem (serve-all)": "prefect.server.concurrency.lease_storage.filesystem",
    "memory (Prefect default)": "prefect.server.concurrency.lease_storage.memory",
}


RUN_BOUND_S = 240  # a normal ingest run takes 20-40 s here, restart included


def database(api: str) -> tuple[int, int]:
    with PrefectRest(api) as rest:
        return rest.tag_usage("database")


@dataclass(frozen=True)
class Measured:
    before: tuple[int, int]  # (counter, live holders) while ingest held slots, before the restart
    after: tuple[int, int]  # the same, once the run was over and a lease's time more
    run: str  # how ingest ended


def measure(storage: str, data_dir: Path) -> Measured:
    home = Path(tempfile.mkdtemp(prefix="restart-"))
    port = free_port()
    extra = {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": storage}
    server = LocalPrefectServer(home=home, port=port, extra_env=extra)
    server.start()
    server.wait_healthy(120)
    env = dict(os.environ, PREFECT_API_URL=api_url_for("127.0.0.1", port), ETL_DATA_DIR=str(data_dir))
    bindir = Path(sys.executable).parent
    subprocess.run([bindir / "limits", "sync"], env=env, check=True, capture_output=True)
    output = home / "ingest.log"
    with open(output, "wb") as log:
        ingest = subprocess.Popen([bindir / "ingest"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        while database(server.api_url)[1] < 3:
            time.sleep(0.2)
        before = database(server.api_url)
        server.stop()
        server = LocalPrefectServer(home=home, port=port, extra_env=extra)
        server.start()
        server.wait_healthy(120)
        try:
            ingest.wait(timeout=RUN_BOUND_S)
            run = f"exited {ingest.returncode}"
            if ingest.returncode:
                errors = [ln for ln in output.read_text(errors="replace").splitlines() if ln.startswith("error:")]
                run += f" ({errors[-1] if errors else 'see ' + str(output)})"
        except subprocess.TimeoutExpired:  # waiting for slots nobody holds any more
            run = f"stuck after {RUN_BOUND_S} s, killed"
            ingest.kill()
            ingest.wait(timeout=30)
        time.sleep(80)  # lease TTL (60 s) + repossessor loop: anything still taken now is leaked
        after = database(server.api_url)
    finally:
        if ingest.poll() is None:
            ingest.kill()
        server.stop()
    return Measured(before, after, run)


def main() -> None:
    from common.settings import get_settings

    data_dir = get_settings().data_dir
    print("(counter, live holders) of tag:database")
    print(f"{'lease storage':26} {'held before restart':>20} {'ingest run':>26} {'after run + 80 s':>18}  verdict")
    only = sys.argv[1:]  # e.g. "filesystem" to run that storage only
    for label, storage in STORAGES.items():
        if only and not any(label.startswith(o) for o in only):
            continue
        r = measure(storage, data_dir)
        used, holders = r.after
        verdict = "no leak" if used == 0 else f"{used} slot(s) leaked, {holders} holder(s)"
        print(f"{label:26} {str(r.before):>20} {r.run:>26} {str(r.after):>18}  {verdict}", flush=True)


if __name__ == "__main__":
    main()
