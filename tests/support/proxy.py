"""A TCP proxy the test controls, for a process's traffic to the Prefect server: :meth:`cut`
drops it the way a network partition does (nothing reaches either side: connections in flight
hang, new ones are accepted and get no answer), :meth:`heal` lets it through again (what was
sent meanwhile goes on, as TCP retransmission would deliver it)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class CuttableProxy:
    """``127.0.0.1:port`` -> ``127.0.0.1:upstream``, in a thread, until the ``with`` block ends."""

    upstream: int
    port: int = 0
    cut_at: float | None = None  # time.monotonic() of the last cut
    healed_at: float | None = None
    _open: asyncio.Event | None = field(default=None, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def cut(self) -> None:
        self.cut_at = time.monotonic()
        assert self._loop is not None and self._open is not None
        self._loop.call_soon_threadsafe(self._open.clear)

    def heal(self) -> None:
        self.healed_at = time.monotonic()
        assert self._loop is not None and self._open is not None
        self._loop.call_soon_threadsafe(self._open.set)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        try:
            while True:
                await self._open.wait()
                chunk = await reader.read(65536)
                if not chunk:
                    break
                await self._open.wait()  # read while open, held back when cut meanwhile
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._open is not None
        await self._open.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))


@contextmanager
def cuttable_proxy(upstream: int) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(upstream)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stopping: asyncio.Future[None] = loop.create_future()

    async def serve() -> None:
        proxy._loop, proxy._open = loop, asyncio.Event()
        proxy._open.set()
        server = await asyncio.start_server(proxy._handle, "127.0.0.1", 0)
        proxy.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await stopping

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="cuttable-proxy", daemon=True)
    thread.start()
    try:
        assert ready.wait(10), "the proxy did not start"
        yield proxy
    finally:
        loop.call_soon_threadsafe(stopping.set_result, None)
        thread.join(10)
