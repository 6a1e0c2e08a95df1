"""Leaked slots, made the honest way: a served flow run holding `database` slots is killed
(SIGKILL, like an OOM kill). With the watchdog off, the inspector flags the slots as held by a
run that is gone, the other flow still completes, and then `slots repair` frees the killed
run's slots at once, long before their leases could expire. (With
serve-all's watchdog on, its default, they come back with no command typed: that test runs
on the served stack of ``test_faults_served.py``.) Then the watchdog's own rules, in-process."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from support import (
    ROOT,
    SERVING,
    Stack,
    kill_while_holding,
    run_cli,
    script,
    slot_usage,
    stop_with_ctrl_c,
    wait_final,
    wait_for_text,
)

pytestmark = pytest.mark.integration

LEASE_SECONDS = 60  # Prefect 3.9.1's slot lease (docs/prefect-facts.md, fact 5): expiry is never sooner after acquiring


def _serve(stack: Stack, log: Path, *args: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [script("serve-all"), *args],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env=stack.env(),
        stdin=subprocess.DEVNULL,
    )
    wait_for_text(log, SERVING, proc, timeout=120)
    return proc


def test_a_killed_run_is_flagged_and_repair_frees_its_slots_at_once(
    stack: Stack, prefect_client, rest, tmp_path: Path, record_property
) -> None:
    began = time.monotonic()
    phases: list[str] = []

    def phase(name: str) -> None:  # where the test's time goes, printed after the session
        phases.append(f"{name} {time.monotonic() - began:.1f} s")

    serve = _serve(stack, tmp_path / "serve.log", "--no-auto-repair")
    phase("serving")
    try:
        # 1. Kill ingest mid-run: flagged by the inspector, reports still completes.
        runs, held_since = kill_while_holding(prefect_client, rest, serve.pid, ("ingest/local",), ("reports/local",))
        killed = datetime.now(UTC)
        phase("killed")
        ingest = runs["ingest/local"]
        crashed = wait_final(prefect_client, [ingest], timeout=LEASE_SECONDS)[ingest]
        assert crashed.state_type.value == "CRASHED", crashed.state
        # The inspector can name the run while the server still lists its holders, until their
        # leases expire: a lease after the kill at the latest (a live engine renews them).
        flagged: list[str] = []
        check = None
        while not any("tag:database" in a and "CRASHED" in a for a in flagged) and (
            datetime.now(UTC) < killed + timedelta(seconds=LEASE_SECONDS)
        ):
            check = run_cli("slots", "--json", "--check")
            flagged = json.loads(check.stdout)["anomalies"]
        timeline = (
            f"killed {(killed - held_since).total_seconds():.1f} s after its holders were scheduled, "
            f"reported crashed {(crashed.state.timestamp - killed).total_seconds():.1f} s later; "
            f"last reading {(datetime.now(UTC) - killed).total_seconds():.1f} s after the kill: {flagged}"
        )
        print("\n" + timeline)
        assert any("tag:database" in a and "CRASHED" in a for a in flagged), (
            f"never flagged the killed run's slots: {timeline}"
        )
        assert check is not None and check.returncode == 1, "slots --check exited 0 on a leak"
        phase("flagged")

        # 2. `slots repair --yes` frees the killed run's slots before their leases could have
        #    expired: it leaves them while reports still holds a slot of the limit (revoking
        #    would drop the live holder's lease too), and frees them once every holder left is
        #    the killed run's.
        assert slot_usage(stack.api_url)[1] > 0, "the killed run's slots were gone before the repair"
        result = None
        while datetime.now(UTC) < held_since + timedelta(seconds=LEASE_SECONDS):
            result = run_cli("slots", "repair", "--yes")
            assert result.returncode == 0, result.stdout + result.stderr
            if "done: tag:database" in result.stdout:
                break
            time.sleep(1)
        assert result is not None and "done: tag:database" in result.stdout, result and result.stdout
        left = (held_since + timedelta(seconds=LEASE_SECONDS) - datetime.now(UTC)).total_seconds()
        print(f"repair freed the killed run's slots {left:.1f} s before their leases could expire")
        assert left > 0, "freed by lease expiry"
        phase("repaired")
        reports = runs["reports/local"]
        assert wait_final(prefect_client, [reports])[reports].state_type.value == "COMPLETED"
        phase("reports completed")
        assert slot_usage(stack.api_url) == (0, 0)
        assert run_cli("slots", "--check").returncode == 0

        # 3. The killed run never reached its cleanup: its staging folder stays until the next
        #    run of either flow sweeps the folders of runs the server reports as over.
        from common.lake import sweep_abandoned_staging

        leftover = stack.data_dir / "lake" / ".staging" / str(ingest)
        assert leftover.is_dir(), "the killed run left no staging folder: nothing to sweep"
        assert str(ingest) in sweep_abandoned_staging(stack.data_dir / "lake", keep="")
        assert not leftover.exists()
    finally:
        stop_with_ctrl_c(serve)
        phase("stopped")
        record_property("phases", ", ".join(phases))
    assert "auto-repair" not in (tmp_path / "serve.log").read_text(), "--no-auto-repair still repaired"


def test_the_watchdog_waits_out_its_grace() -> None:
    """A leak is repaired only once it has been seen for the whole grace; one that goes away
    (a holder that was only releasing) is forgotten."""
    from slot_tools.repair import RepairAction
    from slot_tools.watchdog import Watchdog

    now = [100.0]
    dog = Watchdog(readings=None, grace=6.0, clock=lambda: now[0])  # type: ignore[arg-type]
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
    dog = Watchdog(readings=None, grace=6.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for tick in range(10):
        moment = RepairAction(
            "database",
            "decrement",
            1,
            "counter says 3 taken, 2 live leases",
            evidence=("counter=3/3", f"t{tick}", f"t{tick + 1}"),
        )
        assert dog.due([moment]) == [], f"tick {tick}: a hand-off taken for a leak"
        now[0] += 2.0
    steady = RepairAction(
        "database", "decrement", 1, "counter says 3 taken, 2 live leases", evidence=("counter=3/3", "t1", "t2")
    )
    assert confirmed([steady], [steady]) == [steady]
    moved = RepairAction(
        "database", "decrement", 1, "counter says 3 taken, 2 live leases", evidence=("counter=3/3", "t2", "t3")
    )
    assert confirmed([steady], [moved]) == []
