"""Measure what a Prefect server restart does to held slots, per lease storage.

For each lease storage (ours: filesystem; Prefect's default: memory) this starts a fresh
local server configured as serve-all configures it, starts a real ingest run, restarts the
server while the run holds `database` slots, waits for the run to end and for any lease to
expire (lease 60 s + repossessor), and reports the `tag:database` counter and live holders.
A counter above zero with no holder is a leaked slot.

    uv run python -m bench.restart_contrast            # about 5 minutes
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common.server import LocalPrefectServer, api_url_for

STORAGES = {
    "filesystem (serve-all)": "prefect.server.concurrency.lease_storage.filesystem",
    "memory (Prefect default)": "prefect.server.concurrency.lease_storage.memory",
}


def database(api: str) -> tuple[int, int]:
    used = {g["name"]: g["active_slots"] for g in httpx.post(f"{api}/v2/concurrency_limits/filter", json={}).json()}
    holders = httpx.get(f"{api}/concurrency_limits/tag/database").json()["active_slots"]
    return used.get("tag:database", 0), len(holders)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(storage: str, data_dir: Path) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="restart-"))
    port = free_port()
    extra = {"PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": storage}
    server = LocalPrefectServer(home=home, port=port, extra_env=extra)
    server.start()
    server.wait_healthy(120)
    env = dict(os.environ, PREFECT_API_URL=api_url_for("127.0.0.1", port), ETL_DATA_DIR=str(data_dir))
    bindir = Path(sys.executable).parent
    subprocess.run([bindir / "limits", "sync"], env=env, check=True, capture_output=True)
    ingest = subprocess.Popen([bindir / "ingest"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while database(server.api_url)[1] < 3:
            time.sleep(0.2)
        before = database(server.api_url)
        server.stop()
        server = LocalPrefectServer(home=home, port=port, extra_env=extra)
        server.start()
        server.wait_healthy(120)
        ingest.wait(timeout=600)
        time.sleep(80)  # lease TTL (60 s) + repossessor loop: anything still taken now is leaked
        after = database(server.api_url)
    finally:
        if ingest.poll() is None:
            ingest.kill()
        server.stop()
    return {"before": before, "after": after, "ingest_exit": ingest.returncode}


def main() -> None:
    from common.settings import get_settings

    data_dir = get_settings().data_dir
    print(f"{'lease storage':26} {'held before restart':>20} {'after run + 80 s':>18}  verdict")
    for label, storage in STORAGES.items():
        r = measure(storage, data_dir)  # type: ignore[arg-type]
        used, holders = r["after"]  # type: ignore[misc]
        verdict = "no leak" if used == 0 else f"{used} slot(s) leaked, {holders} holder(s)"
        print(f"{label:26} {str(r['before']):>20} {str(r['after']):>18}  {verdict}")


if __name__ == "__main__":
    main()
