"""Prefect's multi-server tier on one machine: API replicas beside one services process.

What Prefect documents for a highly available self-hosted server ("How to scale self-hosted
Prefect"): several ``prefect server start --no-services`` API processes and one
``prefect server services start``, on one PostgreSQL, with events, the services'
coordination (Docket) and the slot leases in Redis (``prefect-redis``). serve-all runs one
server; this tier exists to show, on real processes, that the tag limits hold across
replicas and that restarting a replica loses no lease. Every setting is serve-all's
(:func:`local_server.prefect_server.server_env`) but the lease storage and the messaging.

    uv run python -m local_server.replicas --ports 4301 4302   # until Ctrl-C
    uv run python -m local_server.replicas --balance 4300      # and a round-robin balancer on 4300
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.prefect_api import ServerUnavailableError, api_url_for, not_ready
from local_server.balancer import balancing
from local_server.postgres import EmbeddedPostgres
from local_server.prefect_server import server_env
from local_server.processes import Child, ChildFailed, deferred_signals, free_port
from local_server.redis_server import RedisServer

REDIS_LEASES = "prefect_redis.lease_storage"


def tier_env(home: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """The settings every process of the tier shares (``home``: that process's own folder)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(server_env(home))
    env.update(
        {
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": database_url,
            "PREFECT_SERVER_DATABASE_MIGRATE_ON_START": "false",  # migrated once, before any replica starts
            "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": REDIS_LEASES,  # one lease store for all replicas
            "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",  # events reach the services process
            "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
            "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
            "PREFECT_REDIS_MESSAGING_URL": f"{redis_url}/0",
            "PREFECT_SERVER_DOCKET_URL": f"{redis_url}/1",
        }
    )
    return env


@dataclass
class PrefectReplicas:
    """N API replicas (one per port), one services process, PostgreSQL and Redis, tracked by PID."""

    home: Path
    ports: tuple[int, ...]
    redis_port: int
    host: str = "127.0.0.1"
    postgres: EmbeddedPostgres | None = None
    redis: RedisServer | None = None
    _database_url: str = field(default="", repr=False)
    _apis: list[Child | None] = field(default_factory=list, repr=False)
    _services: Child | None = field(default=None, repr=False)
    _reaper: Child | None = field(default=None, repr=False)

    @property
    def api_urls(self) -> list[str]:
        return [api_url_for(self.host, port) for port in self.ports]

    def _env(self, name: str) -> dict[str, str]:
        assert self.redis is not None
        return tier_env(self.home / name, self._database_url, self.redis.url)

    def start(self, timeout: float = 180.0) -> None:
        """PostgreSQL, Redis, the migrations, then the services and every replica, until ready."""
        try:
            self.postgres = EmbeddedPostgres(self.home / "pgdata")
            self._database_url = self.postgres.start()
            self.redis = RedisServer(self.home / "redis", self.redis_port, self.host)
            self.redis.start()
            self._watch()  # from here on, a killed owner leaves neither Redis nor PostgreSQL behind
            migrate = subprocess.run(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                env=self._env("migrate"),
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if migrate.returncode != 0:
                last = (migrate.stdout + migrate.stderr).strip().splitlines()[-1:] or ["no output"]
                raise ServerUnavailableError(f"the Prefect database migration failed: {last[0]}")
            # One replica at a time: each registers Prefect's block types at start-up, and two
            # doing it at once on a fresh database collide (a unique violation ends one).
            self._apis = [None] * len(self.ports)
            for i in range(len(self.ports)):
                self.start_replica(i, timeout)
                if i == 0:
                    self._services = Child(
                        "the Prefect services",
                        [sys.executable, "-m", "prefect", "server", "services", "start"],
                        env=self._env("services"),
                        log_path=self.home / "services.log",
                        own_group=True,
                    )
                    self._services.start()
                    self._watch()
        except BaseException:
            self.stop()
            raise

    def _replica(self, index: int) -> Child:
        child = Child(
            f"Prefect API replica {index} (port {self.ports[index]})",
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--no-services",
                "--host",
                self.host,
                "--port",
                str(self.ports[index]),
            ],
            env=self._env(f"api-{index}"),
            log_path=self.home / f"api-{index}.log",
            own_group=True,
            cwd=self.home,  # not the repository: its prefect.toml names the default port
        )
        child.start()
        return child

    def _wait_ready(self, index: int, timeout: float) -> float:
        child = self._apis[index]
        assert child is not None
        try:
            return child.wait_healthy(lambda: not_ready(self.api_urls[index], timeout=2) is None, timeout, poll=0.5)
        except ChildFailed as exc:
            raise ServerUnavailableError(f"{exc}; see {child.log_path}") from None

    def _watch(self) -> None:
        """(Re)start the reaper on the current PIDs: if this process is killed, it ends them all."""
        if self._reaper is not None:
            self._reaper.stop()
        groups = [c.pid for c in (*self._apis, self._services) if c is not None and c.pid is not None]
        if self.redis is not None and self.redis.pid is not None:
            groups.append(self.redis.pid)
        argv = [sys.executable, "-m", "local_server.reaper", "--parent", str(os.getpid())]
        for pid in groups:
            argv += ["--group", str(pid)]
        if self.postgres is not None:
            argv += ["--pgdata", str(self.postgres.pgdata)]
        self._reaper = Child("the reaper", argv, quiet=True, own_group=True)
        self._reaper.start()

    def stop_replica(self, index: int) -> None:
        """Stop one API replica (SIGTERM to its group, as an orchestrator's rolling restart does)."""
        child, self._apis[index] = self._apis[index], None
        if child is not None:
            child.stop()

    def start_replica(self, index: int, timeout: float = 120.0) -> float:
        """Start a stopped replica again on its port; seconds until it is ready."""
        self._apis[index] = self._replica(index)
        self._watch()
        return self._wait_ready(index, timeout)

    def stop(self) -> None:
        """The replicas and the services first, then Redis, then PostgreSQL: never half-alive."""
        with deferred_signals():
            if self._reaper is not None:
                self._reaper.stop()
                self._reaper = None
            for index in range(len(self._apis)):
                self.stop_replica(index)
            if self._services is not None:
                self._services.stop()
                self._services = None
            if self.redis is not None:
                self.redis.stop()
                self.redis = None
            if self.postgres is not None:
                self.postgres.stop()
                self.postgres = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ports", type=int, nargs="+", default=[4301, 4302], help="one API replica per port")
    parser.add_argument("--redis-port", type=int, default=0, help="default: a free port")
    parser.add_argument("--home", type=Path, default=Path("data") / "replicas")
    parser.add_argument(
        "--balance",
        type=int,
        default=0,
        metavar="PORT",
        help="also serve a round-robin balancer over the replicas on PORT",
    )
    args = parser.parse_args()
    # Ctrl-C and SIGTERM stop the tier in order, even when a script started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    tier = PrefectReplicas(home=args.home.resolve(), ports=tuple(args.ports), redis_port=args.redis_port or free_port())
    try:
        tier.start()
        print("Prefect API replicas ready: " + ", ".join(tier.api_urls) + " (Ctrl-C stops the tier)", flush=True)
        with contextlib.ExitStack() as balancer:
            if args.balance:
                front = balancer.enter_context(balancing(tier.ports, port=args.balance, rotate=True))
                print(f"round-robin balancer over them: {front.api_url}", flush=True)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except ServerUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        tier.stop()
        print("the replicas, the services, Redis and PostgreSQL are stopped", flush=True)


if __name__ == "__main__":
    main()
