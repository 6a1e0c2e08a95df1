"""Stop the local Prefect server (and its PostgreSQL) when the process that started it dies.

serve-all stops everything it started on Ctrl-C or SIGTERM, but SIGKILL (or an OOM kill, or
a CI timeout) gives it no chance: the server runs in its own process group, so it would keep
the port and its PostgreSQL. :class:`local_server.prefect_server.LocalPrefectServer` therefore starts this
small watcher beside the server:

    python -m local_server.reaper --parent PID --group PGID [--group PGID ...] [--pgdata DIR]

It checks once a second whether PID is still its parent; once it is not, it ends each process
group PGID (the servers it was started for: SIGTERM, then SIGKILL) and stops the PostgreSQL on
DIR (PostgreSQL's fast shutdown, SIGINT to the postmaster its postmaster.pid names). The
server's owner ends the watcher by PID when it stops the server itself. It runs in a session
of its own, like the server and PostgreSQL: neither a Ctrl-C at the terminal nor a kill of the
owner's whole process group reaches it, so it outlives the owner it watches.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from local_server.processes import end_group


def parent_gone(parent_pid: int) -> bool:
    """True once the process that started us has died (we were re-parented)."""
    return os.getppid() != parent_pid


def wait_for_parent_exit(parent_pid: int, stop: Callable[[], bool] = lambda: False, poll: float = 1.0) -> bool:
    """Block until ``parent_pid`` is gone (True) or ``stop()`` says to give up (False)."""
    while not stop():
        if parent_gone(parent_pid):
            return True
        time.sleep(poll)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--group", type=int, action="append", required=True)
    parser.add_argument("--pgdata", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the parent, which stops us
    if not wait_for_parent_exit(args.parent):
        return
    for group in args.group:
        end_group(group)
    if args.pgdata is not None:
        from local_server.postgres import stop_postmaster

        stop_postmaster(args.pgdata)


if __name__ == "__main__":
    main()
