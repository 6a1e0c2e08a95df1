"""serve-all watches what it started: the local Prefect server (with its PostgreSQL) and the
demo partner API. A part that dies is restarted on the same data, with one WARNING line; if
it cannot be restarted, serve-all stops everything it started and exits non-zero with one
line. Never a half-alive stack: an API without its database, or deployments served against a
dead API.

Runs in flight ride through a restart: the server's front holds their new connections while
it is away, Prefect's client retries the ones the restart cut, and the flows submit again, as
new task runs, whatever the outage still lost. Leases live in the server's own folder
(filesystem lease storage), so the restarted server still knows who holds which slot; a
holder that could not confirm its lease meanwhile stopped before it could lapse; whatever
leaked, the watchdog frees.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from common.logs import get_logger
from common.prefect_api import not_ready
from common.threads import in_background

if TYPE_CHECKING:
    from demo_systems.partner_api.process import DemoApiProcess
    from local_server.prefect_server import LocalPrefectServer

INTERVAL_SECONDS = 2.0
RESTART_TIMEOUT_SECONDS = 60.0

log = get_logger("supervisor")


class Supervisor:
    """One look at a time (:meth:`check`): restart what died, or give up with one line."""

    def __init__(
        self, server: LocalPrefectServer | None, demo_api: DemoApiProcess | None, give_up: Callable[[str], None]
    ) -> None:
        self.server = server
        self.demo_api = demo_api
        self.give_up = give_up
        self.restarts = 0

    def _server_problem(self) -> str | None:
        server = self.server
        if server is None:
            return None
        if not server.running:
            return "its process is gone"
        if not server.database_running:
            return "its PostgreSQL is gone"
        problem = not_ready(server.server_api_url, timeout=5.0)
        return problem and f"it is not ready ({problem})"

    def check(self) -> bool:
        """True while everything runs (after restarting what had died); False once given up."""
        problem = self._server_problem()
        if problem is not None and self.server is not None:
            log.warning(
                f"the local Prefect server on {self.server.ui_url} died ({problem}): restarting it on the same data",
                event_kind="restart",
                part="prefect-server",
            )
            try:
                seconds = self.server.restart(RESTART_TIMEOUT_SECONDS)
            except Exception as exc:
                self.give_up(f"the local Prefect server died ({problem}) and could not be restarted: {exc}")
                return False
            self.restarts += 1
            log.warning(
                f"the local Prefect server is back on {self.server.ui_url} after {seconds:.1f} s", part="prefect-server"
            )
        if self.demo_api is not None and not self.demo_api.running:
            log.warning(f"the demo partner API on {self.demo_api.url} died: restarting it", part="demo-api")
            try:
                self.demo_api.stop()
                self.demo_api.start()
                self.demo_api.wait_healthy(30)
            except Exception as exc:
                self.give_up(f"the demo partner API died and could not be restarted: {exc}")
                return False
            self.restarts += 1
        return True

    def run(self, stop: threading.Event, interval: float = INTERVAL_SECONDS) -> None:
        while not stop.wait(interval):
            if not self.check():
                return


# How long leaving the block waits for a look in progress: a restart under way gives up once
# the server's stop begins (LocalPrefectServer.restart), so nothing it starts outlives the stop.
JOIN_SECONDS = 5.0


@contextmanager
def supervising(
    server: LocalPrefectServer | None, demo_api: DemoApiProcess | None, give_up: Callable[[str], None]
) -> Iterator[Supervisor]:
    """The supervisor in a background thread while the block runs."""
    supervisor = Supervisor(server, demo_api, give_up)
    with in_background(supervisor.run, "stack-supervisor", join_timeout=JOIN_SECONDS):
        yield supervisor
