"""``serve-all --demo``: trigger one run of each deployment and show the shared slots live.

Runs in a thread beside the Prefect runner: it waits for the deployments to be registered,
creates one flow run of each at once, prints the slot table every few seconds while they
run, and ends with the proof from the server's records: peak concurrency per limit, and how
long more than one flow held slots of the same limit at the same time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console

from common.logs import get_logger
from common.prefect_rest import FINAL_STATES, PrefectRest
from common.resources import Registry
from slot_tools.history import peak_concurrency, read_intervals, shared_moments, wait_until_recorded

log = get_logger("demo")


def flow_run_processes() -> list[int]:
    """PIDs of this process's children that execute a flow run (``python -m prefect.engine``).

    The runner marks a run Cancelled if it is stopped while the run's process still exits,
    even after the run Completed, so ``--once`` waits for these to end first (Linux /proc).
    """
    me = str(os.getpid())
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] != me:
                continue
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if b"prefect.engine" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def wait_for_flow_run_processes(timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while flow_run_processes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def run_demo(names: list[str], registry: Registry, api_url: str, timeout: float = 600.0) -> bool:
    """Trigger, watch, prove; True when every run completed and no limit was exceeded."""
    from prefect.client.orchestration import get_client

    from slot_tools.render import render
    from slot_tools.snapshot import take_snapshot

    console = Console()
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client, PrefectRest(api_url) as rest:
        deployments: dict[str, Any] = {}
        while len(deployments) < len(names):
            for name in names:
                try:
                    deployments[name] = client.read_deployment_by_name(name)
                except Exception:
                    pass
            if time.monotonic() > deadline:
                console.print("[red]demo: deployments never appeared on the server[/red]")
                return False
            time.sleep(0.5)
        runs: dict[str, UUID] = {}
        for name, dep in deployments.items():
            runs[name] = client.create_flow_run_from_deployment(dep.id).id
        console.print(f"[bold]demo:[/bold] triggered {', '.join(runs)}; slot usage follows")
        states: dict[str, str] = {}
        last_print = 0.0
        while time.monotonic() < deadline:
            states = {n: (client.read_flow_run(i).state_type.value) for n, i in runs.items()}  # type: ignore[union-attr]
            if all(s in FINAL_STATES for s in states.values()):
                break
            if time.monotonic() - last_print >= 3.0:
                console.print(render(take_snapshot(registry, api_url)))
                last_print = time.monotonic()
            time.sleep(0.5)
        ok = all(s == "COMPLETED" for s in states.values())
        finished = []
        for name, run_id in runs.items():
            run = client.read_flow_run(run_id)
            took = (
                f" in {(run.end_time - run.start_time).total_seconds():.1f} s"
                if run.start_time and run.end_time
                else ""
            )
            finished.append(f"{name} {states[name]}{took}")
        console.print(f"[bold]demo:[/bold] runs finished: {', '.join(finished)}")
        wait_until_recorded(rest, list(runs.values()))
        for tag, slots in registry.tag_limits().items():
            intervals = read_intervals(rest, [tag], flow_run_ids=list(runs.values()))
            peak, at = peak_concurrency(intervals)
            shared = shared_moments(intervals)
            verdict = "held" if peak <= slots else "EXCEEDED"
            console.print(
                f"  tag:{tag}: {len(intervals)} task runs, peak {peak}/{slots} "
                f"({verdict}) at {at.isoformat() if at else '-'}; flows held slots at once for {shared:.1f} s"
            )
            ok = ok and peak <= slots
    return ok
