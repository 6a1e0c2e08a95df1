"""The data path at scale: seed the demo shop at each scale, then one direct ``ingest`` and one
``reports``, each as its own process (as a served flow run is): wall time and peak RSS.

This is the real ETL, not a scheduling benchmark: DuckDB reads the shop, the partner API
computes its pages, Parquet files are written and the reports query them. Peak RSS is the
kernel's high-water mark of the largest process of the run (``wait4``'s ``ru_maxrss``: the
flow-run process, or the demo API it started, whichever grew most). Each scale gets its own
data folder and demo API; one Prefect server, started as serve-all starts it, serves all.

    uv run python -m bench.data_path                 # scales 1 and 10, ~5 minutes on 2 cores
    uv run python -m bench.data_path --scales 1,2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common.prefect_api import api_url_for
from local_server.prefect_server import LocalPrefectServer
from local_server.processes import free_port

BOUND_S = 1800  # one command at scale 10 takes minutes; a hung one must still end the bench


@dataclass(frozen=True)
class Step:
    seconds: float
    peak_rss_mib: float
    output: str


def timed(command: list[str], env: dict[str, str], log: Path) -> Step:
    """Run ``command`` to its end; its wall time, the peak RSS of its largest process and its
    standard output (its logs go to ``log``)."""
    started = time.monotonic()
    with open(log, "wb") as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        deadline = started + BOUND_S
        while (done := os.wait4(proc.pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                proc.kill()
            time.sleep(0.2)
        proc.returncode = os.waitstatus_to_exitcode(done[1])
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(Path(c).name for c in command)} exited {proc.returncode}; see {log}")
    return Step(time.monotonic() - started, done[2].ru_maxrss / 1024, text)


def rows_of(output: str) -> int:
    """Total rows a run printed in its JSON summary."""
    return sum(json.loads(output[output.index("{") : output.rindex("}") + 1])["rows"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="1,10", help="comma-separated demo scales (default 1,10)")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    bin_dir = Path(sys.executable).parent
    home = Path(tempfile.mkdtemp(prefix="data-path-"))
    server = LocalPrefectServer(home=home / "prefect", port=free_port())
    server.start()
    try:
        server.wait_healthy(120)
        base = dict(os.environ, PREFECT_API_URL=api_url_for("127.0.0.1", server.port))
        subprocess.run([bin_dir / "limits", "sync"], env=base, check=True, capture_output=True)
        print(
            f"{'scale':>5}  {'seed':>7}  {'ingest':>8}  {'ingest RSS':>10}  {'rows':>10}  "
            f"{'reports':>8}  {'reports RSS':>11}   (logs in {home})"
        )
        first: dict[str, float] = {}
        for scale in scales:
            data = home / f"scale-{scale}"
            env = dict(base, ETL_DATA_DIR=str(data), ETL_DEMO_SCALE=str(scale), ETL_DEMO_API_PORT=str(free_port()))
            seed = timed([str(bin_dir / "seed-demo"), "--scale", str(scale)], env, home / f"seed-{scale}.log")
            ingest = timed([str(bin_dir / "ingest")], env, home / f"ingest-{scale}.log")
            reports = timed([str(bin_dir / "reports")], env, home / f"reports-{scale}.log")
            first = first or {"ingest": ingest.seconds, "reports": reports.seconds}
            print(
                f"{scale:>5}  {seed.seconds:>6.1f}s  {ingest.seconds:>7.1f}s  {ingest.peak_rss_mib:>7.0f} MiB  "
                f"{rows_of(ingest.output):>10}  {reports.seconds:>7.1f}s  {reports.peak_rss_mib:>8.0f} MiB"
                f"   x{ingest.seconds / first['ingest']:.1f} / x{reports.seconds / first['reports']:.1f} "
                f"the time of scale {scales[0]}",
                flush=True,
            )
            shutil.rmtree(data / "lake", ignore_errors=True)  # gigabytes at scale 10; the logs stay
    finally:
        server.stop()


if __name__ == "__main__":
    main()
