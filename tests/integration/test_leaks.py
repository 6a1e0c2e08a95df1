"""Leaked slots, made the honest way: served flow runs holding `database` slots are killed
(SIGKILL, like an OOM kill). With the watchdog off, the inspector flags the slots as held by a
run that is gone, the other flow still completes, and `slots repair` frees them at once; with
serve-all's watchdog on (its default), they come back with no command typed, long before
their leases could have expired, and so does a counter raised above its live leases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from support import (
    ROOT,
    SERVING,
    Stack,
    engine_pid_for,
    run_cli,
    script,
    slot_usage,
    stop_with_ctrl_c,
    trigger,
    wait_final,
    wait_for_text,
)

pytestmark = pytest.mark.integration

LEASE_SECONDS = 60  # Prefect 3.9.1's slot lease (DESIGN.md fact 4): expiry is never sooner after acquiring


def _serve(stack: Stack, log: Path, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([script("serve-all"), *args], stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            cwd=ROOT, env=stack.env(), stdin=subprocess.DEVNULL)
    wait_for_text(log, SERVING, proc, timeout=120)
    return proc


def _kill_while_holding(client, rest, serve_pid: int, kill: tuple[str, ...], also: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """Trigger ``kill`` and ``also``; SIGKILL the runs of ``kill`` once each holds a database
    slot. Returns (the runs by name, the earliest moment a killed holder could have taken it)."""
    runs = {name: trigger(client, name) for name in (*kill, *also)}
    targets = {runs[name] for name in kill}
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the runs never all held a database slot"
        held = rest.task_runs_by_id(rest.tag_holders("database"))
        holding = {t.flow_run_id for t in held.values()} & targets
        if holding == targets:
            pids = [engine_pid_for(serve_pid, run) for run in targets]
            if None not in pids:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
                # A slot is taken after its task run went Pending: its lease cannot expire
                # before that moment plus the lease (renewals only push expiry later).
                pending = [t.expected_start_time or t.created for t in held.values() if t.flow_run_id in targets]
                return runs, min(p for p in pending if p is not None)
        time.sleep(0.2)


def test_a_killed_run_is_flagged_and_repair_frees_its_slots_at_once(stack: Stack, prefect_client, rest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    serve = _serve(stack, tmp_path / "serve.log", "--no-auto-repair")
    try:
        # 1. Kill ingest mid-run: flagged by the inspector, reports still completes.
        runs, _ = _kill_while_holding(prefect_client, rest, serve.pid, ("ingest/local",), ("reports/local",))
        flagged: list[str] = []
        deadline = time.monotonic() + 60
        while not any("tag:database" in a and "CRASHED" in a for a in flagged) and time.monotonic() < deadline:
            check = run_cli("slots", "--json", "--check")
            flagged = json.loads(check.stdout)["anomalies"] if check.returncode == 1 else []
        print("\nflagged:", flagged)
        assert any("tag:database" in a and "CRASHED" in a for a in flagged), "never flagged the killed run's slots"
        reports = runs["reports/local"]
        assert wait_final(prefect_client, [reports])[reports].state_type.value == "COMPLETED"

        # 2. Kill ingest alone (every holder dead: repair never revokes beside a live holder),
        #    then `slots repair --yes` frees them, before their leases could have expired.
        _, held_since = _kill_while_holding(prefect_client, rest, serve.pid, ("ingest/local",))
        result = None
        while datetime.now(timezone.utc) < held_since + timedelta(seconds=LEASE_SECONDS):
            result = run_cli("slots", "repair", "--yes")
            assert result.returncode == 0, result.stdout + result.stderr
            if "done: tag:database" in result.stdout:
                break
            time.sleep(1)
        assert result is not None and "done: tag:database" in result.stdout, result and result.stdout
        assert slot_usage(stack.api_url) == (0, 0)
        assert datetime.now(timezone.utc) < held_since + timedelta(seconds=LEASE_SECONDS), "freed by lease expiry"
        assert run_cli("slots", "--check").returncode == 0
    finally:
        stop_with_ctrl_c(serve)
    assert "auto-repair" not in (tmp_path / "serve.log").read_text(), "--no-auto-repair still repaired"


def test_the_watchdog_frees_leaked_slots_with_no_command_typed(stack: Stack, prefect_client, rest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "serve.log"
    serve = _serve(stack, log)
    try:
        # SIGKILL both flows while they hold database slots: nobody types anything.
        _, held_since = _kill_while_holding(prefect_client, rest, serve.pid, ("ingest/local", "reports/local"))
        killed = time.monotonic()
        expiry = held_since + timedelta(seconds=LEASE_SECONDS)
        while slot_usage(stack.api_url) != (0, 0):
            assert datetime.now(timezone.utc) < expiry, "the slots were still taken when their leases could expire"
            time.sleep(0.5)
        freed = time.monotonic() - killed
        left = (expiry - datetime.now(timezone.utc)).total_seconds()
        print(f"\nwatchdog freed the killed runs' slots {freed:.0f} s after SIGKILL, {left:.0f} s before lease expiry")
        repairs = [line for line in log.read_text().splitlines() if "auto-repair: tag:database" in line]
        assert repairs, "the slots came back, but not by the watchdog"

        # A counter raised above its live leases (as a crash between increment and lease
        # would leave it) is brought back too; the counter is not a lease, it never expires.
        httpx.post(f"{stack.api_url}/v2/concurrency_limits/increment",
                   json={"names": ["tag:database"], "slots": 2, "mode": "concurrency"}, timeout=10).raise_for_status()
        assert slot_usage(stack.api_url) == (2, 0)
        deadline = time.monotonic() + 60
        while slot_usage(stack.api_url) != (0, 0):
            assert time.monotonic() < deadline, f"counter still raised: {slot_usage(stack.api_url)}"
            time.sleep(0.5)
        assert any("auto-repair: tag:database: free 2 slot(s)" in line for line in log.read_text().splitlines())
    finally:
        stop_with_ctrl_c(serve)


def test_the_watchdog_waits_out_its_grace() -> None:
    """A leak is repaired only once it has been seen for the whole grace; one that goes away
    (a holder that was only releasing) is forgotten."""
    from slot_tools.repair import RepairAction
    from slot_tools.watchdog import Watchdog

    now = [100.0]
    dog = Watchdog(registry=None, api_url="", grace=6.0, clock=lambda: now[0])  # type: ignore[arg-type]
    leak = RepairAction("database", "decrement", 2, "counter says 2 taken, 0 live leases")
    assert dog.due([leak]) == []
    now[0] += 5.9
    assert dog.due([leak]) == []
    now[0] += 0.2
    assert dog.due([leak]) == [leak]
    assert dog.due([]) == []
    now[0] += 10
    assert dog.due([leak]) == [], "a leak seen again starts its grace again"
    assert dog.due([RepairAction("database", "wait", 1, "beside a live holder")]) == []


def test_a_mismatch_that_moves_from_tick_to_tick_is_never_a_leak() -> None:
    """Under a flood the counter runs ahead of the leases for a moment at every acquisition:
    ticks that each see a mismatch, but with other holders each time, never add up to a leak;
    and a plan a fresh reading no longer backs is not applied."""
    from slot_tools.repair import RepairAction, confirmed
    from slot_tools.watchdog import Watchdog

    now = [0.0]
    dog = Watchdog(registry=None, api_url="", grace=6.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for tick in range(10):
        moment = RepairAction("database", "decrement", 1, "counter says 3 taken, 2 live leases",
                              evidence=("counter=3/3", f"t{tick}", f"t{tick + 1}"))
        assert dog.due([moment]) == [], f"tick {tick}: a hand-off taken for a leak"
        now[0] += 2.0
    steady = RepairAction("database", "decrement", 1, "counter says 3 taken, 2 live leases",
                          evidence=("counter=3/3", "t1", "t2"))
    assert confirmed([steady], [steady]) == [steady]
    moved = RepairAction("database", "decrement", 1, "counter says 3 taken, 2 live leases",
                         evidence=("counter=3/3", "t2", "t3"))
    assert confirmed([steady], [moved]) == []
