"""Ports and listening sockets: free ports for the session, and who listens where (/proc)."""

from __future__ import annotations

from pathlib import Path

from local_server.processes import free_port

__all__ = ["free_port", "listening"]


def listening(port: int) -> list[str]:
    """Local addresses (hex, as the kernel shows them: ``0100007F:1F90``) of LISTEN sockets
    on ``port``, IPv4 and IPv6."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, state = fields[1], fields[3]
            if state == "0A" and address.endswith(f":{port:04X}"):  # 0A = LISTEN
                out.append(address)
    return out
