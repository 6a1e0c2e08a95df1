"""Stop the local Prefect server (and its PostgreSQL) when the process that started it dies.

serve-all stops everything it started on Ctrl-C or SIGTERM, but SIGKILL (or an OOM kill, or
a CI timeout) gives it no chance: the server runs in its own process group, so it would keep
the port and its PostgreSQL. :class:`common.server.LocalPrefectServer` therefore starts this
small watcher beside the server:

    python -m common.reaper --parent PID --group PGID [--pgdata DIR]

It checks once a second whether PID is still its parent; once it is not, it ends the process
group PGID (the server it was started for: SIGTERM, then SIGKILL) and stops the PostgreSQL on
DIR (PostgreSQL's fast shutdown, SIGINT to the postmaster its postmaster.pid names). The server's owner ends the watcher by PID when it stops the server itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # gone meanwhile, or no /proc: trust the signal
    except OSError:
        return True


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


def end_group(pgid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--group", type=int, required=True)
    parser.add_argument("--pgdata", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is for the parent, which stops us
    if not wait_for_parent_exit(args.parent):
        return
    end_group(args.group)
    if args.pgdata is not None:
        from common.pg import stop_postmaster

        stop_postmaster(args.pgdata)


if __name__ == "__main__":
    main()
