"""One real local Prefect server, one demo database and one demo API per test session.

The environment is pinned here, at import, before any test module imports Prefect: every
process of the session (this one, served flow runs, CLI subprocesses) talks to the same
server, configured exactly as serve-all configures it (``common.server``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SESSION_DIR = Path(tempfile.mkdtemp(prefix="etl-tests-"))
SERVER_PORT = _free_port()
API_PORT = _free_port()
os.environ.update(
    {
        "ETL_PROJECT_DIR": str(ROOT),
        "ETL_DATA_DIR": str(SESSION_DIR / "data"),
        "ETL_DEMO_API_PORT": str(API_PORT),
        "PREFECT_HOME": str(SESSION_DIR / "client-home"),
    }
)
for _var in ("ETL_DATABASE_URL", "ETL_API_URL", "ETL_API_TOKEN", "ETL_LIMITS_FILE"):
    os.environ.pop(_var, None)

from common.server import LocalPrefectServer, use_api  # noqa: E402

API_URL = use_api(f"http://127.0.0.1:{SERVER_PORT}/api")


@dataclass
class Stack:
    """What an integration test can use: the server, the data folder, the demo API."""

    api_url: str
    server: LocalPrefectServer
    data_dir: Path
    demo_api_url: str

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        return env


def script(name: str) -> str:
    """A console script of this workspace's environment (``uv run <name>`` without uv)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"console script {name} missing: run `uv sync`"
    return str(path)


def run_cli(*args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
        env=env or dict(os.environ), cwd=ROOT, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    from prefect.client.orchestration import get_client

    from common.demo_api import DemoApiProcess
    from common.limits_sync import sync
    from common.resources import API, get_registry
    from common.seed import ensure_demo_database
    from common.settings import get_settings

    settings = get_settings()
    server = LocalPrefectServer(home=SESSION_DIR / "prefect", port=SERVER_PORT)
    assert server.start(), f"port {SERVER_PORT} already serves Prefect"
    api: DemoApiProcess | None = None
    try:
        server.wait_healthy(timeout=120)
        with get_client(sync_client=True) as client:
            sync(client, get_registry())
        ensure_demo_database(settings)
        api = DemoApiProcess(capacity=get_registry()[API].slots, port=API_PORT)
        api.start()
        api.wait_healthy(timeout=30)
        yield Stack(API_URL, server, settings.data_dir, api.url)  # type: ignore[arg-type]
    finally:
        if api is not None:
            api.stop()
        server.stop()
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_client(stack: Stack):  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client


def slot_usage(api_url: str, tag: str = "database") -> tuple[int, int]:
    """(the counter of the limit on ``tag``, its live lease holders): (0, 0) means all free."""
    from common.prefect_rest import PrefectRest

    with PrefectRest(api_url) as rest:
        return rest.tag_usage(tag)


def stop_with_ctrl_c(proc: subprocess.Popen, timeout: float = 60) -> None:  # type: ignore[type-arg]
    """Stop a serve process we started the way a user does (SIGINT), killing it by PID only
    if it ignores that for ``timeout`` seconds."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
