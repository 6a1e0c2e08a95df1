"""Serving an ASGI app (the live board) with uvicorn on 127.0.0.1: in a background thread, or
in the foreground until Ctrl-C. The socket is bound first, so a port that is taken is one
clear error and ``port=0`` has no free-port race."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn


def _server(app: Any) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    )


@contextlib.contextmanager
def run_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0, name: str = "asgi"
) -> Iterator[str]:
    """Serve ``app`` in a background thread while the block runs; yields its base URL.
    OSError (from binding) when the port is taken."""
    sock = socket.create_server((host, port))
    bound_port = sock.getsockname()[1]
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=name, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"in-thread server on {host}:{bound_port} did not start within {timeout:.0f}s")
            time.sleep(0.02)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def run_in_foreground(app: Any, host: str, port: int) -> None:
    """Serve ``app`` in this thread until SIGINT/SIGTERM. OSError when the port is taken."""
    sock = socket.create_server((host, port))
    try:
        _server(app).run(sockets=[sock])
    finally:
        sock.close()
