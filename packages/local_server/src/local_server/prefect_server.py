"""The local Prefect server serve-all starts: one ``prefect server start`` child on 127.0.0.1.

Its store is an embedded PostgreSQL (:mod:`local_server.postgres`) unless SQLite is asked
for; its settings are made here and only here (:func:`server_env`), so serve-all, the tests
and the benchmark run exactly the same configuration. A reaper (:mod:`local_server.reaper`)
beside it stops it if the process that started it is killed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from common.prefect_api import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerUnavailableError,
    api_url_for,
    no_telemetry_env,
    not_ready,
    probe,
)
from local_server.balancer import Balancer, balancing
from local_server.postgres import EmbeddedPostgres, stop_postmaster
from local_server.processes import Child, ChildFailed, deferred_signals, end_group, free_port, port_is_free, running

PID_FILE = "server.pid"  # under the server's home: the PID of the server this folder started

LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
SLOT_WAIT_SETTING = "PREFECT_SERVER_TASKS_TAG_CONCURRENCY_SLOT_WAIT_SECONDS"
SLOT_WAIT_SECONDS = "0.25"
FRONT_HOLD_SECONDS = 45.0  # a client's new connection waits this long for a restarting server


def server_env(home: Path) -> dict[str, str]:
    """The settings of the local Prefect server (docs/prefect-facts.md, facts 3, 7 and 15)."""
    return {
        "PREFECT_HOME": str(home),
        # No telemetry: the machine has no internet and nothing may download at run time.
        **no_telemetry_env(),
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


@dataclass
class LocalPrefectServer:
    """A ``prefect server start`` child process bound to 127.0.0.1, tracked by PID."""

    home: Path
    port: int = DEFAULT_PORT
    host: str = DEFAULT_HOST
    backend: str = "postgres"  # or "sqlite" (Prefect's default; slow hand-off under load)
    extra_env: dict[str, str] = field(default_factory=dict)
    auth_string: str | None = field(default=None, repr=False)  # the server's API auth string, if any
    front: bool = False  # clients reach it through a front on `port` that holds them while it restarts
    postgres: EmbeddedPostgres | None = None
    notes: list[str] = field(default_factory=list)  # what start() found and did, one line each
    _api: Child | None = field(default=None, repr=False)
    _reaper: Child | None = field(default=None, repr=False)
    _front: ExitStack | None = field(default=None, repr=False)
    _balancer: Balancer | None = field(default=None, repr=False)
    _server_port: int | None = field(default=None, repr=False)  # behind the front: the server's own port
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)  # one start, restart or stop at a time
    _closing: bool = field(default=False, repr=False)  # stop() began: a restart under way gives up

    @property
    def api_url(self) -> str:
        """What every client uses (the front's address, when there is one)."""
        return api_url_for(self.host, self.port)

    @property
    def server_api_url(self) -> str:
        """The server process's own address (the supervisor asks it, not the front)."""
        return api_url_for(self.host, self._server_port or self.port)

    @property
    def held_connections(self) -> int:
        """Connections the front held while the server was away (0 without a front)."""
        return self._balancer.held if self._balancer is not None else 0

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    @property
    def pid(self) -> int | None:
        """The server process (the leader of its own process group)."""
        return self._api.pid if self._api is not None else None

    @property
    def running(self) -> bool:
        """True while the server process we started runs."""
        return self._api is not None and self._api.running

    @property
    def database_running(self) -> bool:
        """True while its PostgreSQL runs (always, on SQLite)."""
        if self.backend != "postgres":
            return True
        try:
            return running(int((self.home / "pgdata" / "postmaster.pid").read_text().splitlines()[0]))
        except (OSError, ValueError, IndexError):
            return False

    @property
    def pid_file(self) -> Path:
        return self.home / PID_FILE

    def _recorded_pid(self) -> int | None:
        """The server this home started, if it still runs as a ``prefect server start`` (on our
        port, or behind a front on any port: its own port was a free one)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = b"server" in cmdline and b"start" in cmdline and (self.front or str(self.port).encode() in cmdline)
        return pid if ours and running(pid) else None

    def _replace_stale(self, problem: str) -> None:
        """A Prefect API answers on the port but is not ready: replace it if this home
        started it (stopped by its recorded PID), else refuse in one line."""
        pid = self._recorded_pid()
        if pid is None:
            raise ServerUnavailableError(
                f"a Prefect server answers on {self.ui_url} but is not ready ({problem}), and this data "
                f"folder ({self.home}) did not start it: stop it, or serve on another port (--port)"
            )
        self.notes.append(
            f"the Prefect server on {self.ui_url} (pid {pid}, started from {self.home}) is not ready "
            f"({problem}): stopping it and starting a fresh one"
        )
        end_group(pid, timeout=10.0)
        stop_postmaster(self.home / "pgdata")
        self.pid_file.unlink(missing_ok=True)
        for _ in range(50):
            if port_is_free(self.host, self.port):
                return
            time.sleep(0.1)

    def start(self) -> bool:
        """Start the server; False if a ready Prefect server already answers on the port (reused).

        A server that answers ``/health`` but not ``/ready`` (its database is gone) is never
        reused: if this home started it, it is stopped by its PID and a fresh one started. With
        a front, the server listens on a free port of its own and the front on ``port``.
        """
        state = probe(self.api_url)
        if state == "prefect":
            problem = not_ready(self.api_url)
            if problem is None:
                return False
            self._replace_stale(problem)
        elif state == "other":
            raise ServerUnavailableError(
                f"port {self.port} on {self.host} is taken by something that is not a Prefect "
                "server: stop it, or point PREFECT_API_URL at your Prefect server"
            )
        if self.backend not in ("postgres", "sqlite"):
            raise ServerUnavailableError(f"unknown Prefect server backend {self.backend!r}: use postgres or sqlite")
        self.home.mkdir(parents=True, exist_ok=True)
        if self.front:
            stale = self._recorded_pid()  # behind a front of a serve-all that was killed, its reaper too
            if stale is not None:
                self.notes.append(
                    f"a Prefect server this data folder started is still running (pid {stale}): stopping it"
                )
                end_group(stale, timeout=10.0)
            self._server_port = free_port(self.host)
            self._front = ExitStack()
            self._balancer = self._front.enter_context(
                balancing((self._server_port,), self.host, self.port, hold=FRONT_HOLD_SECONDS)
            )
        self._start_server()
        return True

    def _start_server(self) -> None:
        """The ``prefect server start`` child (and its reaper), on its own port."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(server_env(self.home))
        if self.backend == "postgres":
            self.postgres = EmbeddedPostgres(self.home / "pgdata")
            env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = self.postgres.start()
        if self.front:
            env["PREFECT_UI_API_URL"] = self.api_url  # the UI in a browser goes through the front too
        env.update(self.extra_env)
        if self.auth_string:
            env["PREFECT_SERVER_API_AUTH_STRING"] = self.auth_string  # environment only, never argv
        port = self._server_port or self.port
        self._api = Child(
            "the Prefect server",
            [sys.executable, "-m", "prefect", "server", "start", "--host", self.host, "--port", str(port)],
            env=env,
            log_path=self.log_path,
            own_group=True,
            cwd=self.home,  # not the repository: its prefect.toml names the default port, not ours
        )
        self._api.start()
        self.pid_file.write_text(f"{self._api.pid}\n")
        # If this process dies without stopping the server (SIGKILL), the reaper does.
        assert self._api.pid is not None
        self._reaper = Child(
            "the reaper",
            [
                sys.executable,
                "-m",
                "local_server.reaper",
                "--parent",
                str(os.getpid()),
                "--group",
                str(self._api.pid),
                *(["--pgdata", str(self.postgres.pgdata)] if self.postgres is not None else []),
            ],
            quiet=True,
            own_group=True,  # a session of its own: a kill of our whole group does not take it along
        )
        self._reaper.start()

    def restart(self, timeout: float = 60.0) -> float:
        """Stop the server and start it again on the same data (and port, behind the same
        front, which holds its clients meanwhile); seconds until it answers. Never after
        :meth:`stop` began: a stop and a restart cannot interleave."""
        with self._lock:
            if self._closing:
                raise ServerUnavailableError("the local Prefect server is being stopped")
            self._stop_server(15.0)
            self._start_server()
        return self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Block until the API answers; seconds waited. Clear error if it dies or times out."""
        api = self._api
        if api is None:
            raise ServerUnavailableError("the local Prefect server was stopped (or never started)")
        try:
            return api.wait_healthy(lambda: probe(self.server_api_url, timeout=1.0) == "prefect", timeout)
        except ChildFailed as exc:
            self.stop()
            raise ServerUnavailableError(f"{exc}; see {self.log_path}") from None

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the front (no new client reaches a stopping server), the server we started
        (its process group), then its PostgreSQL.

        Never the other way round: an API left without its database answers ``/health`` and
        fails every real call. A second Ctrl-C (or a SIGTERM) during the stop is held until
        the stop is done, and if stopping the API fails anyway its group is killed before
        PostgreSQL stops.
        """
        self._closing = True
        with deferred_signals(), self._lock:
            front, self._front = self._front, None
            if front is not None:
                front.close()
            self._stop_server(timeout)

    def _stop_server(self, timeout: float) -> None:
        with deferred_signals():
            reaper, self._reaper = self._reaper, None
            if reaper is not None:
                reaper.stop()  # we stop the server ourselves
            api, self._api = self._api, None
            group = api.pid if api is not None else None
            try:
                if api is not None:
                    api.stop(timeout)
            finally:
                if group is not None:
                    end_group(group, timeout=0.0)  # nothing left of it once stop() returns
                self.pid_file.unlink(missing_ok=True)
                if self.postgres is not None:
                    self.postgres.stop()
                    self.postgres = None

    def __enter__(self) -> LocalPrefectServer:
        if self.start():
            self.wait_healthy()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
