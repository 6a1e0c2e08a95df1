"""A throwaway Redis (Debian's ``redis-server``) on 127.0.0.1, for Prefect's multi-server tier.

Prefect's API replicas share events, the background services' coordination (Docket) and slot
leases through Redis (``prefect-redis``). This one keeps nothing on disk (``--save ''``,
no append-only file): it lives as long as the tier that started it, and a replica restart
does not restart it, which is what keeps the leases.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from common.prefect_api import ServerUnavailableError
from local_server.processes import Child, ChildFailed

INSTALL_HINT = "install Debian's redis-server (apt-get install -y redis-server)"


@dataclass
class RedisServer:
    """One ``redis-server`` child bound to 127.0.0.1:``port``, tracked by PID."""

    home: Path
    port: int
    host: str = "127.0.0.1"
    _child: Child | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def start(self, timeout: float = 20.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerUnavailableError(f"no redis-server on PATH: {INSTALL_HINT}")
        self.home.mkdir(parents=True, exist_ok=True)
        self._child = Child(
            "Redis",
            [
                binary,
                "--bind",
                self.host,
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
                "--protected-mode",
                "yes",
            ],
            log_path=self.home / "redis.log",
            own_group=True,
        )
        self._child.start()
        try:
            self._child.wait_healthy(self.ping, timeout)
        except ChildFailed as exc:
            self.stop()
            raise ServerUnavailableError(f"{exc}; see {self.home / 'redis.log'}") from None

    def ping(self) -> bool:
        import redis

        try:
            with redis.Redis(host=self.host, port=self.port, socket_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop()
