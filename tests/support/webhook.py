"""An HTTP listener on 127.0.0.1 standing in for a team's chat or pager webhook: it records what
Prefect's notification block posts to it, so a test can read what an automation sent."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookListener:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append(json.loads(body or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def wait_for(self, found: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        """The first message ``found`` accepts, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            match = next((m for m in list(self.received) if found(m)), None)
            if match is not None:
                return match
            assert time.monotonic() < deadline, f"no such notification after {timeout:.0f} s: {self.received}"
            time.sleep(0.25)


@contextmanager
def webhook_listener() -> Iterator[WebhookListener]:
    listener = WebhookListener()
    thread = threading.Thread(target=listener.server.serve_forever, name="webhook-listener", daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        listener.server.shutdown()
        listener.server.server_close()
        thread.join(timeout=10)


def block_command(url: str) -> str:
    """The command docs/alerts.md prints to create the notification block limits.toml names,
    pointed at ``url`` (a private address, so allowed explicitly)."""
    return f"uv run limits webhook shared-slot-alerts --url {url} --allow-private-urls"


def events_named(api_url: str, prefix: str, since: str) -> list[dict[str, Any]]:
    """The events whose name starts with ``prefix`` that the server stored since ``since``."""
    import httpx

    # 50 is the largest page the server hands out; later pages are links
    body = {"filter": {"event": {"prefix": [prefix]}, "occurred": {"since": since}}, "limit": 50}
    page = httpx.post(f"{api_url}/events/filter", json=body, timeout=10).raise_for_status().json()
    events: list[dict[str, Any]] = page["events"]
    while page.get("next_page"):
        page = httpx.get(page["next_page"], timeout=10).raise_for_status().json()
        events += page["events"]
    return events
