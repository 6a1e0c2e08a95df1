"""The demo partner API's own capacity: it refuses at once with 429 beyond ``capacity``
requests in flight, and counts what it admitted and refused (``GET /stats``).

Started with a capacity equal to the ``api`` limit, any breach of the Prefect limit shows
up as a 429 that tests can count.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

# ASGI plumbing types (kept local: starlette's aliases are not part of its public API).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UNCOUNTED_PATHS = frozenset({"/health", "/stats", "/stats/reset"})


class ApiStats:
    """Thread-safe counters: the middleware runs on the event loop, endpoints in threads.

    Besides capacity it measures the request rate clients achieved, so a test can check a
    rate limit: ``max_requests_per_second`` is the most accepted requests (those ``accepted``
    counts) that started within any one second, and ``request_span_seconds`` the time from
    the first accepted request's start to the last one's, both since the last reset.
    """

    WINDOW_SECONDS = 1.0

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._clock = clock
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self.accepted = 0
        self.rejected_429 = 0
        self.reports_received = 0
        self._recent: deque[float] = deque()  # accepted starts within the last window only
        self.max_requests_per_second = 0
        self._first_start: float | None = None
        self._last_start: float | None = None

    def try_admit(self) -> bool:
        """Count one request; admit it unless that would exceed the capacity."""
        with self._lock:
            self.requests += 1
            if self.in_flight >= self.capacity:
                self.rejected_429 += 1
                return False
            self.in_flight += 1
            self.accepted += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._count_start(self._clock())
            return True

    def _count_start(self, now: float) -> None:
        # The busiest 1-second window always ends at some start, so checking the window
        # (now - 1 s, now] at each start finds it, keeping only that window in memory.
        self._recent.append(now)
        while self._recent[0] <= now - self.WINDOW_SECONDS:
            self._recent.popleft()
        self.max_requests_per_second = max(self.max_requests_per_second, len(self._recent))
        if self._first_start is None:
            self._first_start = now
        self._last_start = now

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def report_received(self) -> None:
        with self._lock:
            self.reports_received += 1

    def reset(self) -> None:
        """Zero the counters; ``in_flight`` is a live gauge, so it is kept as it is."""
        with self._lock:
            self.requests = self.accepted = self.rejected_429 = self.reports_received = 0
            self.max_in_flight = self.in_flight
            self._recent.clear()
            self.max_requests_per_second = 0
            self._first_start = self._last_start = None

    def snapshot(self) -> dict[str, int | float]:
        with self._lock:
            first, last = self._first_start, self._last_start
            span = 0.0 if first is None or last is None else last - first
            return {
                "capacity": self.capacity,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "requests": self.requests,
                "accepted": self.accepted,
                "rejected_429": self.rejected_429,
                "reports_received": self.reports_received,
                "max_requests_per_second": self.max_requests_per_second,
                "request_span_seconds": round(span, 3),
            }


class CapacityMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): a request stays "in flight" until its response
    has been fully sent, and a refusal costs no thread and no body read."""

    def __init__(self, app: ASGIApp, stats: ApiStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        if not self.stats.try_admit():
            body = json.dumps({"detail": f"capacity {self.stats.capacity} exceeded"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", b"1"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.stats.release()
