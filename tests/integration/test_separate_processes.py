"""Each flow served by its own process (as on separate machines), both on the one server.

``serve-ingest`` and ``serve-reports`` run side by side, each serving one deployment; a run
triggered on each executes in that process's own subprocess, and the server's records show
that the limits held across the two processes and that both held ``database`` slots at the
same time. Without a reachable shared server they refuse in one line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO

import pytest

from common.prefect_rest import FINAL_STATES
from support import ROOT, SERVING, Stack, free_port, run_cli, script

RUN_TIMEOUT = 420.0


def _env_without_server() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}


@pytest.mark.parametrize("command", ["serve-ingest", "serve-reports"])
def test_refuses_without_a_shared_server_in_one_line(command: str) -> None:
    unset = run_cli(command, env=_env_without_server(), timeout=60)
    assert unset.returncode == 2
    assert unset.stderr.strip().count("\n") == 0
    assert unset.stderr.startswith("error: PREFECT_API_URL is not set")

    nobody = f"http://127.0.0.1:{free_port()}/api"
    unreachable = run_cli(command, env=dict(_env_without_server(), PREFECT_API_URL=nobody), timeout=60)
    assert unreachable.returncode == 2
    assert unreachable.stderr.strip() == (
        f"error: no Prefect server at {nobody}: start one with `uv run serve-all`, "
        "or set PREFECT_API_URL to a running server"
    )


def _wait_serving(procs: dict[str, tuple[subprocess.Popen[bytes], IO[str]]], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    waiting = set(procs)
    while waiting and time.monotonic() < deadline:
        for name in list(waiting):
            proc, log = procs[name]
            log.seek(0)
            text = log.read()
            assert proc.poll() is None, f"{name} exited early:\n{text[-3000:]}"
            if SERVING in text:
                waiting.discard(name)
        time.sleep(0.5)
    assert not waiting, f"never served: {waiting}"


@pytest.mark.integration
def test_each_flow_in_its_own_process_shares_the_limits(stack: Stack, prefect_client, rest, tmp_path: Path) -> None:
    from common.resources import get_registry
    from slot_tools.history import peak_concurrency, read_intervals, shared_moments, wait_until_recorded

    procs: dict[str, tuple[subprocess.Popen[bytes], IO[str]]] = {}
    for command in ("serve-ingest", "serve-reports"):
        log: IO[str] = open(tmp_path / f"{command}.log", "w+", encoding="utf-8")
        proc = subprocess.Popen(
            [script(command)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=stack.env(),
            stdin=subprocess.DEVNULL,
        )
        procs[command] = (proc, log)
    try:
        _wait_serving(procs)
        runs = {}
        for flow in ("ingest", "reports"):
            deployment = prefect_client.read_deployment_by_name(f"{flow}/local")
            runs[flow] = prefect_client.create_flow_run_from_deployment(deployment.id).id
        started = time.monotonic()
        deadline = started + RUN_TIMEOUT
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {f: prefect_client.read_flow_run(i).state_type.value for f, i in runs.items()}
            if all(s in FINAL_STATES for s in states.values()):
                break
            time.sleep(1.0)
        print(f"\nboth runs final after {time.monotonic() - started:.1f} s: {states}")
        assert states == {"ingest": "COMPLETED", "reports": "COMPLETED"}

        # Each run executed under the process serving its deployment, not the other one.
        logs: dict[str, str] = {}
        for command, (_, log) in procs.items():
            log.seek(0)
            logs[command] = log.read()
        assert str(runs["ingest"]) in logs["serve-ingest"] and str(runs["ingest"]) not in logs["serve-reports"]
        assert str(runs["reports"]) in logs["serve-reports"] and str(runs["reports"]) not in logs["serve-ingest"]

        ids = list(runs.values())
        assert wait_until_recorded(rest, ids)
        for tag, limit in get_registry().tag_limits().items():
            intervals = read_intervals(rest, [tag], flow_run_ids=ids)
            peak, at = peak_concurrency(intervals)
            both = shared_moments(intervals)
            print(
                f"tag:{tag}: {len(intervals)} task runs, peak {peak}/{limit}, both processes held slots "
                f"for {both:.1f} s"
            )
            assert peak <= limit, f"{tag}: {peak} held at once at {at}, limit {limit}"
            if tag == "database":
                assert {iv.flow for iv in intervals} == {"ingest", "reports"}
                assert both > 0, "the two processes' runs never held database slots at the same time"
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        exits: dict[str, int | None] = {}
        for command, (proc, log) in procs.items():
            try:
                exits[command] = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                exits[command] = None
            log.close()
    assert None not in exits.values(), f"a serve process ignored SIGINT: {exits}"
