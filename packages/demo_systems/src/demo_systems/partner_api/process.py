"""Running the demo partner API: in a thread (tests), in this process (``demo-api``), or
as a child process of serve-all or a test (:class:`DemoApiProcess`, tracked by its PID).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn

from demo_systems.partner_api.app import create_app
from local_server.processes import Child, ChildFailed, bind_socket
from local_server.reaper import wait_for_parent_exit

TOKEN_ENV_VAR = "ETL_DEMO_API_TOKEN"  # the CLI's token source: keeps it out of argv / ps


def _port_taken_message(host: str, port: int, reason: str) -> str:
    return (
        f"demo API cannot bind {host}:{port} ({reason}): stop whatever holds port {port} "
        "or set ETL_DEMO_API_PORT (or --port) to a free port"
    )


def _exit_with_parent(server: uvicorn.Server, parent_pid: int) -> None:
    """Stop ``server`` once ``parent_pid`` is gone: a parent killed with SIGKILL cannot stop
    its child, and an orphaned API would hold the port and the next run would refuse it."""

    def watch() -> None:
        if wait_for_parent_exit(parent_pid, stop=lambda: bool(server.should_exit)):
            server.should_exit = True

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def serve(
    host: str, port: int, capacity: int, storage_dir: Path, token: str | None = None, parent_pid: int | None = None
) -> None:
    """Run the API in this process until SIGINT/SIGTERM (or until ``parent_pid`` dies)."""
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        typer.echo(_port_taken_message(host, port, exc.strerror or str(exc)), err=True)
        raise typer.Exit(2) from None
    app = create_app(capacity, storage_dir, token=token)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    if parent_pid is not None:
        _exit_with_parent(server, parent_pid)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _cli(
    capacity: Annotated[int, typer.Option(min=1, help="Requests in flight before it answers 429 (= the api limit).")],
    host: Annotated[str, typer.Option(help="Interface to bind; keep the default to stay local.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port; default ETL_DEMO_API_PORT (8765).")] = None,
    storage_dir: Annotated[
        Path | None, typer.Option(help="Where published reports go; default <data>/partner_api.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV_VAR, show_default=False, show_envvar=True, help="Require this bearer token on /v1/*."
        ),
    ] = None,
    parent_pid: Annotated[
        int | None, typer.Option(hidden=True, help="Exit when this process (the one that started us) dies.")
    ] = None,
) -> None:
    """Serve the demo partner API (it refuses with 429 above its capacity)."""
    from common.settings import get_settings

    settings = get_settings()
    serve(
        host,
        port if port is not None else settings.demo_api_port,
        capacity,
        storage_dir if storage_dir is not None else settings.data_dir / "partner_api",
        token=token or None,
        parent_pid=parent_pid,
    )


def main() -> None:
    typer.run(_cli)


def answers(url: str) -> bool:
    """True when a demo partner API answers ``/health`` at ``url``."""
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    return False


class DemoApiProcess:
    """The demo API as a child process of serve-all or of a test, tracked by its PID only.

    The token goes to the child through the environment, never the command line.
    """

    def __init__(
        self,
        capacity: int,
        storage_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        token: str | None = None,
    ) -> None:
        from common.settings import get_settings

        settings = get_settings()
        self.capacity = capacity
        default_dir = settings.data_dir / "partner_api"
        self.storage_dir = Path(storage_dir) if storage_dir is not None else default_dir
        self.host = host
        self.port = port if port is not None else settings.demo_api_port
        self._token = token
        self._child: Child | None = None

    def __repr__(self) -> str:
        return f"DemoApiProcess(url={self.url!r}, capacity={self.capacity}, pid={self.pid})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child else None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def start(self) -> None:
        """Spawn the child; fails with one line if the port is already taken."""
        if self.running:
            return
        try:
            bind_socket(self.host, self.port).close()
        except OSError as exc:
            raise RuntimeError(_port_taken_message(self.host, self.port, exc.strerror or str(exc))) from None
        env = dict(os.environ)
        env.pop(TOKEN_ENV_VAR, None)
        if self._token:
            env[TOKEN_ENV_VAR] = self._token
        self._child = Child(
            f"demo API on {self.url}",
            [
                sys.executable,
                "-m",
                "demo_systems.partner_api",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--capacity",
                str(self.capacity),
                "--storage-dir",
                str(self.storage_dir),
                "--parent-pid",
                str(os.getpid()),
            ],
            env=env,
        )
        self._child.start()

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Poll ``/health`` until it answers; raise one clear line if the child died or hung."""
        if self._child is None:
            raise RuntimeError("demo API was not started: call start() first")

        try:
            self._child.wait_healthy(lambda: answers(self.url), timeout, poll=0.1)
        except ChildFailed as exc:
            raise RuntimeError(str(exc)) from None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``: only this child's PID, nothing else."""
        if self._child is not None:
            self._child.stop(timeout)

    def __enter__(self) -> DemoApiProcess:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
