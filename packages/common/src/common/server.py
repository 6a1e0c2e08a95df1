"""One Prefect server for every flow: start it, find it, point processes at it.

Shared limits only work when every process talks to the same server (without
``PREFECT_API_URL`` each process would start its own temporary server and each would have
its own limits). Entry points call :func:`use_api` before they import Prefect, so they and
every child process (served flow runs) reach the one server.

The local server is configured here and only here, so serve-all, the tests and the
benchmark run exactly the same configuration.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common.logs import prefect_logging_env
from common.pg import EmbeddedPostgres

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200
LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
SLOT_WAIT_SETTING = "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS"
SLOT_WAIT_SECONDS = "0.25"


class ServerUnavailableError(RuntimeError):
    """No usable Prefect server; the message is one line that says what to fix."""


def api_url_for(host: str, port: int) -> str:
    return f"http://{host}:{port}/api"


def default_api_url() -> str:
    """``PREFECT_API_URL`` if set, else the local server serve-all starts."""
    return os.environ.get("PREFECT_API_URL") or api_url_for(DEFAULT_HOST, DEFAULT_PORT)


def server_env(home: Path) -> dict[str, str]:
    """The settings of the local Prefect server (see DESIGN.md, facts 3, 5 and 12)."""
    return {
        "PREFECT_HOME": str(home),
        # No telemetry: the machine has no internet and nothing may download at run time.
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
        # Leases survive a server restart (in-memory leases leak held slots for good).
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": LEASE_STORAGE,
        # Waiting tasks poll; cap the Retry-After the server hands them so a freed slot is
        # taken within a fraction of a second instead of up to 30 s. 0.25 s: the measured
        # balance between hand-off and the polling load on 2 cores (bench/RESULTS.md);
        # exporting the Prefect setting overrides it.
        SLOT_WAIT_SETTING: os.environ.get(SLOT_WAIT_SETTING, SLOT_WAIT_SECONDS),
        # Expired leases (a killed holder) are freed within 5 s of expiring, not 15 s.
        "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "5",
    }


def client_env(api_url: str) -> dict[str, str]:
    """Settings for every client process: the one server, our logs in the UI, fast polling."""
    return {
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # A served deployment picks up a triggered run within about 2 s.
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        **prefect_logging_env(),
    }


def use_api(api_url: str | None = None) -> str:
    """Point this process and its children at one server; call before importing Prefect.

    If Prefect is already imported (tests, notebooks), its settings were read at import,
    so the caller should also wrap its work in :func:`prefect_settings`.
    """
    url = api_url or default_api_url()
    os.environ.update(client_env(url))
    return url


def prefect_settings(api_url: str):  # type: ignore[no-untyped-def]
    """A context manager applying :func:`client_env` to an already-imported Prefect."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: api_url})


def probe(api_url: str, timeout: float = 2.0) -> str:
    """'prefect' if a Prefect API answers at ``api_url``, 'free' if nothing listens, else 'other'."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.ConnectError:
        return "free"
    except httpx.HTTPError:
        return "other"
    if response.status_code == 200 and response.text.strip() == "true":
        return "prefect"
    return "other"


def check_reachable(api_url: str, timeout: float = 5.0) -> None:
    """Fail within seconds, with one clear line, when the server is not there."""
    state = probe(api_url, timeout=timeout)
    if state == "free":
        raise ServerUnavailableError(
            f"no Prefect server at {api_url}: start one with `uv run serve-all`, "
            "or set PREFECT_API_URL to a running server"
        )
    if state == "other":
        raise ServerUnavailableError(
            f"{api_url} answers but is not a Prefect API: fix PREFECT_API_URL"
        )


@dataclass
class LocalPrefectServer:
    """A ``prefect server start`` child process bound to 127.0.0.1, tracked by PID."""

    home: Path
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    backend: str = "postgres"  # or "sqlite" (Prefect's default; slow hand-off under load)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    postgres: EmbeddedPostgres | None = None
    _reaper: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return api_url_for(self.host, self.port)

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def start(self) -> bool:
        """Start the server; False if a Prefect server already answers on the port (reused)."""
        state = probe(self.api_url)
        if state == "prefect":
            return False
        if state == "other":
            raise ServerUnavailableError(
                f"port {self.port} on {self.host} is taken by something that is not a Prefect "
                "server: stop it, or point PREFECT_API_URL at your Prefect server"
            )
        if self.backend not in ("postgres", "sqlite"):
            raise ServerUnavailableError(f"unknown Prefect server backend {self.backend!r}: use postgres or sqlite")
        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(server_env(self.home))
        if self.backend == "postgres":
            self.postgres = EmbeddedPostgres(self.home / "pgdata")
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.postgres.start()
        env.update(self.extra_env)
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start",
                 "--host", self.host, "--port", str(self.port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: we stop all it spawned
            )
        finally:
            log.close()
        # If this process dies without stopping the server (SIGKILL), the reaper does.
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "common.reaper", "--parent", str(os.getpid()), "--group", str(self.process.pid),
             *(["--pgdata", str(self.postgres.pgdata)] if self.postgres is not None else [])],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return True

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Block until the API answers; seconds waited. Clear error if it dies or times out."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is not None and self.process.poll() is not None:
                raise ServerUnavailableError(
                    f"the Prefect server exited with code {self.process.returncode} before it "
                    f"was healthy; see {self.log_path}"
                )
            if probe(self.api_url, timeout=1.0) == "prefect":
                return time.monotonic() - started
            time.sleep(0.2)
        self.stop()
        raise ServerUnavailableError(
            f"the Prefect server was not healthy after {timeout:.0f} s; see {self.log_path}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server we started (its process group), then its PostgreSQL."""
        reaper, self._reaper = self._reaper, None
        if reaper is not None and reaper.poll() is None:
            reaper.terminate()  # we stop the server ourselves
            reaper.wait(timeout=10)
        try:
            self._stop_api(timeout)
        finally:
            if self.postgres is not None:
                self.postgres.stop()
                self.postgres = None

    def _stop_api(self, timeout: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Reap any straggler of the group (uvicorn workers, services) by the same group id.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def __enter__(self) -> "LocalPrefectServer":
        if self.start():
            self.wait_healthy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
