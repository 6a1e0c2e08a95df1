"""The front of a Prefect API: a TCP balancer as small as it can be, in a thread.

Prefect's replicated tier expects one (NGINX, HAProxy, a cloud balancer), and serve-all puts
one in front of its single local server: clients know one address that never refuses them.
Each new connection goes to the first upstream, in the order given, that accepts it, so an
order of ``[replica 1, replica 0]`` means "replica 1, or replica 0 while replica 1 is away";
with ``rotate``, each new connection starts one upstream further (round robin). When no
upstream accepts, the connection is held, and placed as soon as one does, for up to ``hold``
seconds: a client then sees a slow answer during a restart, not a refused connection, which
Prefect's client does not retry on a client that never connected (docs/prefect-facts.md).
Connections in flight when an upstream stops are cut, which Prefect's client retries.
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
RETRY_EVERY = 0.2  # how often a held connection asks the upstreams again


@dataclass
class Balancer:
    """What :func:`balancing` started: its address, and connections served per upstream port."""

    host: str
    port: int
    upstreams: tuple[int, ...]
    rotate: bool = False
    hold: float = 0.0  # seconds a new connection waits for an upstream when none accepts
    served: Counter[int] = field(default_factory=Counter)
    held: int = 0  # connections that had to wait for an upstream
    _next: int = 0

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    async def _place(self) -> tuple[int, asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The first upstream (in this connection's order) that accepts, or None."""
        start, self._next = self._next, (self._next + 1) % len(self.upstreams) if self.rotate else 0
        for port in self.upstreams[start:] + self.upstreams[:start]:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(self.host, port), CONNECT_TIMEOUT)
            except (TimeoutError, OSError):
                continue
            return port, up_reader, up_writer
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deadline = asyncio.get_running_loop().time() + self.hold
        placed = await self._place()
        if placed is None and self.hold > 0:
            self.held += 1
            while placed is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(RETRY_EVERY)
                placed = await self._place()
        if placed is None:
            writer.close()  # no upstream came: the client sees a closed connection and retries
            return
        port, up_reader, up_writer = placed
        self.served[port] += 1
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


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
def balancing(
    upstreams: tuple[int, ...], host: str = "127.0.0.1", port: int = 0, rotate: bool = False, hold: float = 0.0
) -> Iterator[Balancer]:
    """Balance ``host:port`` over the upstream ports (first that accepts) while the block runs."""
    sock = bind_socket(host, port)
    balancer = Balancer(host, sock.getsockname()[1], upstreams, rotate, hold)
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
