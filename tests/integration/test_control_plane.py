"""serve-all on its defaults, as a new user meets it, and the control plane blinking under it:
one serve-all on port 4200 in a terminal with nothing exported (its own local server, front,
supervisor and watchdog), both flows triggered, faults injected from outside and judged from
the server's own records.

- the banner's commands, typed as printed in a second terminal, reach the served deployments,
  and the runs they start ride through a SIGKILL of the server (the supervisor restarts it);
- a flow-run process frozen (SIGSTOP) for longer than its slots' lease while it holds them and
  the other flow waits: each frozen holder ends its attempt on waking, without another
  statement; its work is done again by a new task run on a fresh slot; ``slots`` names it as
  Running without a slot while the freeze lasts; ``slots history`` tells that overlap apart;
- the Prefect server stalled (SIGSTOP; replaced) while both flows hold slots, as it was killed
  above: both runs complete, the limit held, nothing leaked;
- leaks and their repair by the watchdog, each told through Prefect's events to the automation
  limits.toml declares (its notification block pointed at a listener on this machine, as the
  docs say), then a Ctrl-C to serve-all's whole process group, as a terminal sends it: nothing
  left running, the port free, and Prefect's CLI in the folder then fails instead of starting a
  server of its own.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from common.prefect_api import DEFAULT_PORT, PROJECT_API_URL
from local_server.processes import port_is_free
from slot_tools.ledger import LEDGER_FILE
from support import (
    ROOT,
    SERVING,
    Stack,
    Terminal,
    assert_every_limit_held,
    descendants,
    engine_pid_for,
    free_port,
    fresh_terminal_env,
    left_running,
    linked_data_dir,
    listening,
    running,
    script,
    slot_usage,
    task_run_logs,
    trigger_at,
    wait_final_at,
)
from support.webhook import WebhookListener, block_command, events_named, webhook_listener

pytestmark = pytest.mark.integration

LEASE_SECONDS = 60  # the task engine's slot lease (docs/prefect-facts.md)
FREEZE_SECONDS = 70  # longer than the lease and the server's repossessor (every 5 s) together
WAKE_BOUND_SECONDS = 30.0  # a bound on a hang: a frozen holder says it stopped this soon after waking


@dataclass(frozen=True)
class Own:
    api: str
    data: Path
    terminal: Terminal
    home: Path  # for a second terminal's HOME

    @property
    def pid(self) -> int:
        """serve-all: the leader of its own process group, as a terminal starts it."""
        return self.terminal.proc.pid

    @property
    def log(self) -> Path:
        return self.terminal.log

    def text(self) -> str:
        return self.terminal.text

    def server_pid(self) -> int:
        return int((self.data / "prefect" / "server.pid").read_text())

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        """Until serve-all's terminal shows ``text`` ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.text().count(text) < count:
            assert time.monotonic() < deadline, f"no {text!r} (x{count}) after {timeout:.0f} s:\n{self.text()[-3000:]}"
            time.sleep(0.5)

    def typed(self, command: str) -> subprocess.CompletedProcess[str]:
        """``command`` typed as printed in a second terminal in the repository, nothing exported."""
        return subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            timeout=180,
            env=fresh_terminal_env(self.home / "second"),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )


@pytest.fixture(scope="module")
def own(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    """serve-all as a new user starts it: its default port, in a terminal, nothing exported (its
    data folder, and the demo API's and board's ports, aside: the session's own are taken)."""
    assert port_is_free("127.0.0.1", DEFAULT_PORT), (
        f"port {DEFAULT_PORT} is taken: this module runs serve-all on its default port (stop the other server)"
    )
    root = tmp_path_factory.mktemp("control-plane")
    data = linked_data_dir(stack, root)  # its own Prefect home, so this server is not the session's
    env = dict(
        fresh_terminal_env(root / "first"),
        ETL_DATA_DIR=str(data),
        ETL_DEMO_API_PORT=str(free_port()),
        ETL_BOARD_PORT=str(free_port()),
    )
    terminal = Terminal([script("serve-all")], env, root / "serve-all.log")
    try:
        deadline = time.monotonic() + 180
        while SERVING not in terminal.text:
            assert terminal.proc.poll() is None and time.monotonic() < deadline, terminal.text[-3000:]
            time.sleep(0.5)
        yield Own(PROJECT_API_URL, data, terminal, root)
    finally:
        if terminal.proc.poll() is None:
            os.killpg(terminal.proc.pid, signal.SIGKILL)
            terminal.proc.wait()


def test_the_banners_commands_reach_the_served_deployments_and_ride_through_a_killed_server(own: Own) -> None:
    """In a second terminal with nothing exported, the banner's commands, exactly as printed,
    reach the served deployments; no other instruction is printed (no bare `prefect ...` a
    fresh terminal could not run); no telemetry notice; the server listens on loopback only;
    serve-all keeps the slot ledger read. The runs they start ride through a SIGKILL of the
    server (serve-all's supervisor restarts it): both complete, the limit held, nothing leaked."""
    limits = {g["name"]: g["limit"] for g in httpx.post(f"{own.api}/v2/concurrency_limits/filter", json={}).json()}
    assert limits["tag:database"] == 3 and limits["tag:api"] == 10
    text = own.text()
    banner = text.split("Trigger runs (from another terminal in this folder):", 1)[1]
    commands = [line.strip() for line in banner.split("Watch the shared slots:", 1)[0].splitlines() if line.strip()]
    assert commands == [
        "uv run prefect deployment run 'ingest/local'",
        "uv run prefect deployment run 'reports/local'",
    ], text[-3000:]
    watch = banner.split("Watch the shared slots:", 1)[1].splitlines()[0].strip()
    assert watch == "uv run slots --watch", watch
    printed = [line.strip() for line in text.splitlines() if re.search(r"\bprefect\b.*\brun\b", line)]
    assert all(line.startswith("uv run prefect deployment run '") for line in printed), printed
    ids = []
    for command in commands:  # exactly as printed
        done = own.typed(command)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        ids.append(UUID(re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)))  # type: ignore[union-attr]
    shown = own.typed(watch.replace("--watch", "--json"))  # the same reading, once, while they run
    assert shown.returncode == 0 and '"tag": "database"' in shown.stdout, shown.stdout[-2000:] + shown.stderr[-2000:]
    _rides_through(own, ids[0], ids[1], "SIGKILL")  # the same runs, through a killed server
    assert "anonymous usage" not in own.text(), "a telemetry notice reached the terminal"
    with closing(sqlite3.connect(own.data / LEDGER_FILE)) as ledger:  # kept read in the background
        covered = set(ledger.execute("SELECT server, tag FROM coverage"))
    assert covered == {(own.api, "database"), (own.api, "api")}, covered
    assert listening(DEFAULT_PORT) == [f"0100007F:{DEFAULT_PORT:04X}"], listening(DEFAULT_PORT)


def _holders(api: str, tag: str = "database") -> dict[UUID, object]:
    from common.prefect_rest import PrefectRest

    with PrefectRest(api) as rest:
        return rest.task_runs_by_id(rest.tag_holders(tag))  # type: ignore[return-value]


def _wait_holding(
    api: str, run: UUID, at_least: int, waiting: UUID | None = None, timeout: float = 180, api_too: bool = False
) -> list[UUID]:
    """The task runs of ``run`` holding ``database`` slots, once there are ``at_least`` of them
    (and, with ``waiting``, once that run has a task waiting for one; with ``api_too``, once
    the run also holds an ``api`` slot)."""
    from common.prefect_rest import PrefectRest

    deadline = time.monotonic() + timeout
    with PrefectRest(api) as rest:
        while True:
            held = [t.id for t in rest.task_runs_by_id(rest.tag_holders("database")).values() if t.flow_run_id == run]
            waits = waiting is None or any(t.flow_run_id == waiting for t in rest.pending_with_tag("database"))
            api_held = rest.task_runs_by_id(rest.tag_holders("api")).values() if api_too else ()
            calls = not api_too or any(t.flow_run_id == run for t in api_held)
            if len(held) >= at_least and waits and calls:
                return held
            assert time.monotonic() < deadline, f"{run} never held {at_least} database slots with a waiter beside it"
            time.sleep(0.1)


def test_a_frozen_holder_stops_on_waking_and_its_work_runs_again_on_a_fresh_slot(own: Own) -> None:
    from common.prefect_rest import PrefectRest
    from slot_tools.history import peak_concurrency, read_intervals, summarize_tag

    ingest = trigger_at(own.api, "ingest/local")
    frozen = _wait_holding(own.api, ingest, at_least=3, api_too=True)
    pid = engine_pid_for(own.pid, ingest)
    assert pid is not None, "ingest's flow-run process not found"
    os.kill(pid, signal.SIGSTOP)
    stopped = datetime.now(UTC)  # anything the process logs from now on, it logs after waking
    reports = trigger_at(own.api, "reports/local")  # waits for the frozen holders' slots
    flagged: set[str] = set()
    try:
        deadline = time.monotonic() + FREEZE_SECONDS
        while time.monotonic() < deadline:  # what `slots` says meanwhile, from a second terminal
            shown = own.typed("uv run slots --json")
            flagged |= {m for m in shown.stdout.split('"') if "Running without a slot" in m}
            time.sleep(3)
    finally:
        os.kill(pid, signal.SIGCONT)
    woke = datetime.now(UTC)
    runs = wait_final_at(own.api, [ingest, reports], timeout=300)
    assert {r.state_type for r in runs.values()} == {"COMPLETED"}, {r.name: r.state_type for r in runs.values()}

    with PrefectRest(own.api) as rest:
        records = rest.task_runs_by_id(frozen)
        mine = rest.task_runs_of([ingest])
        logs = task_run_logs(own.api, list(records))
        for held in records.values():
            print(f"\n{held.name}: {held.state_type} {held.end_time} (woke {woke}): {held.state_message}")
            # Frozen while it held its slot, or between the grant and its first step (then its
            # process learns it from the server): either way, stopped on waking, before a statement.
            message = held.state_message or ""
            assert held.state_type == "FAILED" and "lost its 'database' slot: " in message, held
            assert "this process was frozen for" in message or "lease was gone before it began" in message, message
            # When it stopped, from the logs the server holds (the record's end is when the final
            # state reached the server, which may be later: that event can be lost with the freeze).
            said = [at for run, at, line in logs if run == held.id and "lost its 'database' slot" in line]
            if said:
                print(f"{held.name} said it stopped {(min(said) - woke).total_seconds():.2f} s after waking")
            assert said and woke <= min(said) <= woke + timedelta(seconds=WAKE_BOUND_SECONDS), (
                f"{held.name} said it lost its slot at {said} (woke {woke})"
            )
            # ...and its work was done again, by a new task run that took a fresh slot after the wake.
            again = [t for t in mine if t.name == held.name and t.id != held.id]
            assert [t.state_type for t in again] == ["COMPLETED"], [(t.id, t.state_type) for t in again]
            assert again[0].start_time is not None and again[0].start_time > woke, again[0]
        # No resource work after waking (an extract that ended in the moment before the SIGSTOP
        # landed is not one: its holder still fails on waking, and its work is redone).
        extracted = [(at, line) for _, at, line in logs if line.startswith("extracted ") and at >= stopped]
        assert not extracted, f"a frozen holder finished its extract after waking (woke {woke}): {extracted}"

        # `slots` named them while they ran on without a slot (once the server had freed their slots).
        names = {t.name for t in records.values()}
        assert any(n in m for m in flagged for n in names), f"slots never flagged a frozen holder: {flagged}"

        # The records overlap (the frozen holders stay Running until they wake); their leases did not.
        intervals = read_intervals(rest, ["database"], flow_run_ids=[ingest, reports])
        report = summarize_tag("database", 3, intervals, min(i.start for i in intervals), datetime.now(UTC))
    print(f"database: peak {report.peak} in the records, {report.live_peak} with live leases; {report.lost_holders}")
    assert report.peak > 3 and report.live_peak <= 3 and not report.exceeded, report
    assert any(
        line.startswith(f"ingest held {len(frozen)} slot(s) while frozen") and "reports" in line
        for line in report.lost_holders
    ), report.lost_holders
    assert peak_concurrency([i.live for i in intervals if i.tag == "database"])[0] <= 3
    # ...and `slots history` (exit 1 on any limit exceeded) says the same of `api`, which it held too.
    history = own.typed(f"uv run slots history --flow-run {ingest} --flow-run {reports}")
    assert history.returncode == 0 and "while frozen" in history.stdout, history.stdout + history.stderr
    _wait_free(own.api)


def _wait_free(api: str, timeout: float = LEASE_SECONDS + 30) -> None:
    """Every slot of both limits comes back, with nobody typing anything."""
    deadline = time.monotonic() + timeout
    while (used := (slot_usage(api), slot_usage(api, "api"))) != ((0, 0), (0, 0)):
        assert time.monotonic() < deadline, f"slots still taken: {used}"
        time.sleep(0.5)


def test_runs_ride_through_a_stalled_server(own: Own) -> None:
    """The server stalled (SIGSTOP: serve-all's supervisor finds it not ready and replaces it)
    while both flows hold slots: as through a killed server (the banner's test), both runs
    complete, the records never show the limit exceeded, and every slot comes back."""
    _rides_through(own, trigger_at(own.api, "ingest/local"), trigger_at(own.api, "reports/local"), "SIGSTOP")


def _rides_through(own: Own, ingest: UUID, reports: UUID, fault: str) -> None:
    """The server's process group SIGKILLed or stalled while ``ingest`` holds slots and
    ``reports`` waits: both runs complete, the records never show the limit exceeded, and every
    slot comes back with nobody typing anything."""
    from common.prefect_rest import PrefectRest

    _wait_holding(own.api, ingest, at_least=1, waiting=reports)
    restarts = own.text().count("is back on")
    repairs = own.text().count("auto-repair")
    server = own.server_pid()
    os.killpg(server, getattr(signal, fault))
    faulted = time.monotonic()
    own.wait_for("is back on", restarts + 1, timeout=120)
    print(f"\n{fault}: server back {time.monotonic() - faulted:.1f} s after the fault")
    assert not running(server), "the stalled server was not replaced"
    runs = wait_final_at(own.api, [ingest, reports], timeout=300)
    assert {r.state_type for r in runs.values()} == {"COMPLETED"}, {r.name: r.state_type for r in runs.values()}
    with PrefectRest(own.api) as rest:
        assert_every_limit_held(rest, [ingest, reports], f" across a {fault} of the server")
    _wait_free(own.api)  # by themselves, or freed by the watchdog: nobody types anything
    # A server killed between raising a counter and writing its lease (Prefect does the two
    # apart) leaves the counter a slot above its leases; the watchdog frees it.
    print(f"watchdog repairs across the {fault}: {own.text().count('auto-repair') - repairs}")


def test_after_leaks_and_their_repair_a_ctrl_c_to_the_group_leaves_nothing(own: Own) -> None:
    """The watchdog frees the slots of a SIGKILLed flow run before their leases could expire,
    and a counter raised above its live leases (which never expires), with nothing typed, and
    the automation of limits.toml notifies of each; then Ctrl-C reaches serve-all's whole process
    group, as a terminal sends it: everything stops, PostgreSQL after the API, within bounds, and
    the port is free."""
    with webhook_listener() as listener:
        _leaks_are_repaired_and_told(own, listener)
    _ctrl_c_leaves_nothing(own)


def _leaks_are_repaired_and_told(own: Own, listener: WebhookListener) -> None:
    from common.prefect_rest import PrefectRest

    # Once, as docs/alerts.md says: the notification block, then the automation.
    for command in (block_command(listener.url), "uv run limits sync"):
        done = own.typed(command)
        assert done.returncode == 0, command + "\n" + done.stdout + done.stderr
    assert "done: automation shared-slot-alerts" in done.stdout, done.stdout
    since = datetime.now(UTC)

    ingest = trigger_at(own.api, "ingest/local", tables=["order_items", "page_views", "inventory_movements"])
    held = _wait_holding(own.api, ingest, at_least=1)
    pid = engine_pid_for(own.pid, ingest)
    assert pid is not None
    with PrefectRest(own.api) as rest:  # a slot is granted after its task run went Pending
        pending = min(
            t.expected_start_time or t.created or datetime.now(UTC) for t in rest.task_runs_by_id(held).values()
        )
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    expiry = pending + timedelta(seconds=LEASE_SECONDS)
    while slot_usage(own.api) != (0, 0):
        assert datetime.now(UTC) < expiry, "the slots were still taken when their leases could expire"
        time.sleep(0.5)
    print(
        f"\nwatchdog freed the killed run's slots {time.monotonic() - killed:.0f} s after SIGKILL, "
        f"{(expiry - datetime.now(UTC)).total_seconds():.0f} s before their leases could expire"
    )
    own.wait_for("auto-repair: tag:database", timeout=15)  # its line can trail the freed slots

    httpx.post(
        f"{own.api}/v2/concurrency_limits/increment",  # as a crash between increment and lease leaves it
        json={"names": ["tag:database"], "slots": 2, "mode": "concurrency"},
        timeout=10,
    ).raise_for_status()
    assert slot_usage(own.api) == (2, 0)
    deadline = time.monotonic() + 60
    while slot_usage(own.api) != (0, 0):
        assert time.monotonic() < deadline, f"counter still raised: {slot_usage(own.api)}"
        time.sleep(0.5)
    own.wait_for("auto-repair: tag:database: free 2 slot(s)", timeout=15)

    # Told with nobody watching: each anomaly once, however many ticks it lasted, and each repair,
    # in the server's event store; and the automation's notification reached the listener.
    killed_holders = {str(h) for h in held}
    note = listener.wait_for(lambda m: "tag:database" in m["subject"] and "flows: ingest" in m["body"], timeout=60)
    print(f"notified: {note}")
    deadline = time.monotonic() + 30
    while True:
        events = events_named(own.api, "shared-limits.", since.isoformat())
        anomalies = [e for e in events if e["event"] == "shared-limits.anomaly.detected"]
        dead = [e for e in anomalies if set(e["payload"]["task_run_ids"]) & killed_holders]
        repaired = [e for e in events if e["event"] == "shared-limits.slots.repaired"]
        if (dead and len(repaired) >= 2) or time.monotonic() > deadline:
            break
        time.sleep(1)
    print(f"events: {[(e['event'], e['payload'].get('kind'), e['payload'].get('task_run_ids')) for e in events]}")
    assert dead and all(e["resource"]["prefect.resource.name"] == "tag:database" for e in dead), events
    assert all(e["resource"]["shared-limits.flows"] == "ingest" for e in dead), dead
    per_holder = [sum(h in e["payload"]["task_run_ids"] for e in dead) for h in killed_holders]
    assert set(per_holder) <= {0, 1} and sum(per_holder) >= 1, f"an anomaly told more than once: {dead}"
    assert [e["payload"]["kind"] for e in anomalies if e["payload"]["kind"] == "counter-above-holders"] == [
        "counter-above-holders"
    ], anomalies
    assert {e["resource"]["shared-limits.kind"] for e in repaired} == {"revoke", "decrement"}, repaired


def _ctrl_c_leaves_nothing(own: Own) -> None:
    started = descendants(own.pid)
    server = own.server_pid()
    postmaster = int((own.data / "prefect" / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    assert os.getsid(postmaster) != os.getsid(own.pid), "PostgreSQL is within reach of the terminal's Ctrl-C"
    os.killpg(own.pid, signal.SIGINT)
    stopped = time.monotonic()
    order = []
    while alive := {n for n, p in (("api", server), ("postgres", postmaster), ("serve-all", own.pid)) if running(p)}:
        order += [n for n in ("api", "postgres", "serve-all") if n not in alive and n not in order]
        assert time.monotonic() - stopped < 45, f"still running 45 s after Ctrl-C: {alive}"
        time.sleep(0.05)
    order += [n for n in ("api", "postgres", "serve-all") if n not in order]
    print(f"\nCtrl-C: everything stopped after {time.monotonic() - stopped:.1f} s, in the order {order}")
    assert order.index("api") < order.index("postgres"), order
    assert left_running(started, str(own.data / "prefect" / "pgdata").encode(), grace=10) == []
    assert port_is_free("127.0.0.1", DEFAULT_PORT), f"port {DEFAULT_PORT} still taken"
    # With nothing on the port prefect.toml names, Prefect's CLI in the folder fails with its
    # connection error rather than starting a temporary server of its own.
    done = own.typed("uv run prefect deployment ls")
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "ConnectError" in done.stdout + done.stderr and "temporary server" not in (done.stdout + done.stderr).lower()
