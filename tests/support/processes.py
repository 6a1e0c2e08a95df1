"""Finding processes from /proc (Linux): what a command started, and which one runs a flow run."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from local_server.processes import descendants, parent_pids, running

__all__ = ["command_lines", "descendants", "engine_pid_for", "left_running", "pids_with_arg", "running"]


def pids_with_arg(text: bytes) -> list[int]:
    """Processes whose command line contains ``text``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def engine_pid_for(parent: int, flow_run_id: UUID) -> int | None:
    """The `python -m prefect.engine` child of ``parent`` running ``flow_run_id``."""
    for pid, ppid in parent_pids().items():
        if ppid != parent:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode() in environ:
            return pid
    return None


def command_lines() -> list[bytes]:
    """The command line of every process (to check that no secret is on one)."""
    out = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(path.read_bytes())
        except OSError:
            continue
    return out


def left_running(started: set[int], *args: bytes, grace: float = 20.0) -> list[str]:
    """What is still running ``grace`` seconds after a stop: the PIDs of ``started`` (a
    command's descendants) and the processes whose command line holds one of ``args``
    (PostgreSQL daemonizes: its parent is init, so it is found by its data folder)."""
    import time

    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(running(p) for p in started):
        time.sleep(0.2)
    left = [f"pid {p}" for p in started if running(p)]
    left += [f"pid {p} ({arg.decode(errors='replace')})" for arg in args for p in pids_with_arg(arg) if running(p)]
    return left
