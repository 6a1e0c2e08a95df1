"""The load balancer in front of Prefect's API replicas, as small as it can be: TCP, in a thread.

Prefect's replicated tier expects one (NGINX, HAProxy, a cloud balancer): clients know one
address, and a replica that is being restarted simply stops receiving connections. This one
sends each new connection to the first upstream, in the order given, that accepts it, so an
order of ``[replica 1, replica 0]`` means "replica 1, or replica 0 while replica 1 is away";
with ``rotate``, each new connection starts one upstream further (round robin), which spreads
the load. Connections in flight when a replica stops are cut, which Prefect's client retries.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from local_server.processes import bind_socket

CONNECT_TIMEOUT = 2.0
CHUNK = 65536


@dataclass
class Balancer:
    """What :func:`balancing` started: its address, and connections served per upstream port."""

    host: str
    port: int
    upstreams: tuple[int, ...]
    rotate: bool = False
    served: Counter[int] = field(default_factory=Counter)
    _next: int = 0

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        start, self._next = self._next, (self._next + 1) % len(self.upstreams) if self.rotate else 0
        for port in self.upstreams[start:] + self.upstreams[:start]:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(self.host, port), CONNECT_TIMEOUT)
            except (OSError, asyncio.TimeoutError):
                continue
            self.served[port] += 1
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            return
        writer.close()  # no upstream accepts: the client sees a closed connection and retries


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextmanager
def balancing(upstreams: tuple[int, ...], host: str = "127.0.0.1", port: int = 0,
              rotate: bool = False) -> Iterator[Balancer]:
    """Balance ``host:port`` over the upstream ports (first that accepts) while the block runs."""
    sock = bind_socket(host, port)
    balancer = Balancer(host, sock.getsockname()[1], upstreams, rotate)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stopping: asyncio.Future[None] = loop.create_future()

    async def serve() -> None:
        server = await asyncio.start_server(balancer.handle, sock=sock)
        ready.set()
        async with server:
            await stopping

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="balancer", daemon=True)
    thread.start()
    try:
        if not ready.wait(10):
            raise RuntimeError(f"the balancer on {host}:{balancer.port} did not start")
        yield balancer
    finally:
        loop.call_soon_threadsafe(stopping.set_result, None)
        thread.join(10)
        if not thread.is_alive():
            loop.close()
        sock.close()
