"""serve-all's own lifecycle, met as a new user meets it: it starts a Prefect server (embedded
PostgreSQL) on its default port, prints commands that work as printed from a fresh terminal
(prefect.toml points Prefect's CLI at it), and Ctrl-C stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from common.prefect_api import DEFAULT_PORT, PROJECT_API_URL
from local_server.processes import port_is_free, running
from slot_tools.ledger import LEDGER_FILE
from support import (
    ROOT,
    SERVING,
    Stack,
    Terminal,
    descendants,
    free_port,
    left_running,
    linked_data_dir,
    listening,
    pids_with_arg,
    script,
    trigger,
    wait_final,
    wait_final_at,
    wait_for_text,
)

pytestmark = pytest.mark.integration


def fresh_terminal_env(home: Path) -> dict[str, str]:
    """A terminal with nothing exported: no PREFECT_*, ETL_*, DO_NOT_TRACK or CI variable, and
    a HOME of its own (Prefect shows its telemetry notice once per home, in a terminal)."""
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    drop = set(CI_ENV_VARS) | {"DO_NOT_TRACK"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ETL_")) and k not in drop}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    return env


def test_serve_all_on_its_defaults_serves_the_banner_commands_from_a_fresh_terminal(
    stack: Stack, tmp_path: Path
) -> None:
    """serve-all as a new user starts it (port 4200, in a terminal); in a second terminal with
    nothing exported, the banner's commands run exactly as printed reach the served
    deployments and the runs complete; no telemetry notice anywhere; Ctrl-C leaves nothing."""
    assert port_is_free("127.0.0.1", DEFAULT_PORT), (
        f"port {DEFAULT_PORT} is taken: this test runs serve-all on its default port (stop the other server)"
    )
    data = linked_data_dir(stack, tmp_path)  # its own Prefect home, so this server is not the session's
    first = dict(fresh_terminal_env(tmp_path / "home-1"), ETL_DATA_DIR=str(data),
                 ETL_DEMO_API_PORT=str(free_port()), ETL_BOARD_PORT=str(free_port()))
    terminal = Terminal([script("serve-all")], first, tmp_path / "serve-all.log")
    proc = terminal.proc
    started: set[int] = set()
    pgdata = str(data / "prefect" / "pgdata").encode()
    try:
        deadline = time.monotonic() + 180
        while SERVING not in terminal.text:
            assert proc.poll() is None and time.monotonic() < deadline, terminal.text[-3000:]
            time.sleep(0.5)
        started = descendants(proc.pid)
        assert pids_with_arg(pgdata), "no embedded PostgreSQL found for the Prefect server"
        limits = {g["name"]: g["limit"] for g in httpx.post(f"{PROJECT_API_URL}/v2/concurrency_limits/filter",
                                                             json={}).json()}
        assert limits["tag:database"] == 3 and limits["tag:api"] == 10

        banner = terminal.text.split("Trigger runs (from another terminal in this folder):", 1)[1]
        commands = [line.strip() for line in banner.split("Watch the shared slots:", 1)[0].splitlines() if line.strip()]
        assert len(commands) == 2, terminal.text[-3000:]
        # ...and no other instructions: Prefect's own serve banner prints a bare
        # `$ prefect deployment run [DEPLOYMENT_NAME]`, which a fresh terminal cannot run.
        printed = [line.strip() for line in terminal.text.splitlines() if "deployment run" in line]
        assert all(line.startswith("uv run prefect deployment run '") for line in printed), printed
        second = fresh_terminal_env(tmp_path / "home-2")
        bin_dir = str(Path(sys.executable).parent)
        ids = []
        for command in commands:  # exactly as printed, `uv run` being this environment's scripts
            assert command.startswith("uv run prefect deployment run '"), command
            done = subprocess.run(["bash", "-c", command.replace("uv run ", f"{bin_dir}/", 1)], capture_output=True,
                                  text=True, timeout=120, env=second, cwd=ROOT, stdin=subprocess.DEVNULL)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            ids.append(UUID(re.search(r"UUID: ([0-9a-f-]{36})", done.stdout).group(1)))  # type: ignore[union-attr]
        runs = wait_final_at(PROJECT_API_URL, ids, timeout=300)
        assert {r.state_type for r in runs.values()} == {"COMPLETED"}, terminal.text[-3000:]
        assert "anonymous usage" not in terminal.text, "a telemetry notice reached the terminal"
        assert (data / LEDGER_FILE).exists(), "serve-all keeps no slot ledger"
        with closing(sqlite3.connect(data / LEDGER_FILE)) as ledger:  # kept read in the background
            covered = set(ledger.execute("SELECT server, tag FROM coverage"))
        assert covered == {(PROJECT_API_URL, "database"), (PROJECT_API_URL, "api")}, covered

        # The server and the demo API listen on loopback only.
        assert listening(DEFAULT_PORT) == [f"0100007F:{DEFAULT_PORT:04X}"], listening(DEFAULT_PORT)

        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert left_running(started, pgdata) == [], "serve-all left processes running"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{PROJECT_API_URL}/health", timeout=2)


def test_prefect_toml_names_the_server_serve_all_starts_by_default() -> None:
    import tomllib

    settings = tomllib.loads((ROOT / "prefect.toml").read_text())
    assert settings["api"]["url"] == PROJECT_API_URL


def test_prefect_cli_in_the_folder_fails_instead_of_starting_a_server_of_its_own(tmp_path: Path) -> None:
    """With nothing exported and nothing on the port prefect.toml names, Prefect's CLI fails
    with its connection error rather than starting a temporary server."""
    assert port_is_free("127.0.0.1", DEFAULT_PORT), f"port {DEFAULT_PORT} is taken"
    done = subprocess.run([script("prefect"), "deployment", "ls"], capture_output=True, text=True, timeout=120,
                          env=fresh_terminal_env(tmp_path / "home"), cwd=ROOT, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-2000:]
    assert "ConnectError" in output and "temporary server" not in output.lower(), output[-2000:]


def test_a_killed_owner_leaves_no_server_or_postgres_behind(tmp_path: Path) -> None:
    """SIGKILL gives the process that started the local server no chance to stop it: the
    reaper beside the server ends the server's process group and its PostgreSQL."""
    import sys

    port = free_port()
    home = tmp_path / "prefect"
    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\n"
         "from pathlib import Path\n"
         "from local_server.prefect_server import LocalPrefectServer\n"
         f"server = LocalPrefectServer(home=Path({str(home)!r}), port={port})\n"
         "server.start(); server.wait_healthy(120)\n"
         "print(server.pid, flush=True)\n"
         "sys.stdin.read()  # until the test kills us\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    group = postmaster = None
    try:
        assert owner.stdout is not None
        group = int(owner.stdout.readline())
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
        assert running(group) and running(postmaster)
    finally:
        owner.kill()
        owner.wait(timeout=10)
    try:
        deadline = time.monotonic() + 60
        while running(group) or running(postmaster):
            assert time.monotonic() < deadline, "server or PostgreSQL still running 60 s after their owner died"
            time.sleep(0.5)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
    finally:  # ours: never leave them running, even when the test fails
        for pid in (group, postmaster):
            if pid is not None and running(pid):
                os.kill(pid, signal.SIGKILL)


def test_serve_all_on_sqlite_serves_a_run_and_a_sigkill_of_it_leaves_nothing(stack: Stack, tmp_path: Path) -> None:
    """`serve-all --server-db sqlite` (Prefect's own default store) serves a run to
    completion; then serve-all itself is SIGKILLed (an OOM kill gives it no chance to stop
    anything): every process it started ends anyway, and its port is freed."""
    from prefect.client.orchestration import SyncPrefectClient

    port = free_port()
    data = linked_data_dir(stack, tmp_path)
    env = dict(fresh_terminal_env(tmp_path / "home"), ETL_DATA_DIR=str(data),
               ETL_DEMO_API_PORT=str(free_port()), ETL_BOARD_PORT=str(free_port()))
    log = tmp_path / "serve-all.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([script("serve-all"), "--server-db", "sqlite", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, env=env, stdin=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api"
    started: set[int] = set()
    try:
        wait_for_text(log, SERVING, proc, timeout=180)
        started = descendants(proc.pid)
        assert (data / "prefect").is_dir() and not (data / "prefect" / "pgdata").exists(), "not on SQLite"
        assert list((data / "prefect").rglob("*.db")), "no SQLite database in the server's home"
        with SyncPrefectClient(api) as client:  # Prefect's own client: it retries a busy SQLite's 503s
            run = trigger(client, "ingest/local", tables=["customers"])
            state = wait_final(client, [run])[run].state_type.value
        assert state == "COMPLETED", log.read_text(errors="replace")[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert left_running(started, grace=60) == [], "a SIGKILL of serve-all left processes running"
        assert port_is_free("127.0.0.1", port), f"port {port} still taken after serve-all was killed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in started:  # ours: never leave them running, even when the test fails
            if running(pid):
                os.kill(pid, signal.SIGKILL)
