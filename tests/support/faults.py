"""Faults injected for real: a faulty partner API is the real demo API
(``demo_systems.partner_api.create_app``) with one middleware in front that injects the fault
on chosen paths (429 with Retry-After, 500, a handler slower than the client's timeout, a
changed response format) and records every request it saw, so a test can count attempts and
measure the gaps between them.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response


@dataclass(frozen=True)
class Fault:
    """What to do to requests whose ``METHOD path?query`` matches ``pattern``."""

    pattern: str
    kind: str  # "429" | "500" | "slow" | "drop-column"
    value: Any = None  # Retry-After seconds, sleep seconds, or the column to drop


@dataclass
class Hit:
    request: str
    at: float
    faulted: bool


@dataclass
class FaultyPartnerApi:
    """The demo partner API behind a fault-injecting middleware, served in a thread."""

    faults: list[Fault]
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def matching(self, pattern: str) -> list[Hit]:
        return [h for h in self.hits if re.search(pattern, h.request)]

    @contextmanager
    def serving(self, storage: Path, capacity: int = 10) -> Iterator[FaultyPartnerApi]:
        from demo_systems.partner_api import create_app
        from slot_tools.asgi import run_in_thread

        app = create_app(capacity=capacity, storage_dir=storage)

        @app.middleware("http")
        async def inject(request: Request, call_next: Any) -> Response:
            query = f"?{request.url.query}" if request.url.query else ""
            line = f"{request.method} {request.url.path}{query}"
            fault = next((f for f in self.faults if re.search(f.pattern, line)), None)
            with self._lock:
                self.hits.append(Hit(line, time.monotonic(), fault is not None))
            if fault is None:
                return await call_next(request)
            if fault.kind == "429":
                return JSONResponse(
                    {"detail": "over capacity"}, status_code=429, headers={"Retry-After": str(fault.value)}
                )
            if fault.kind == "500":
                return JSONResponse({"detail": "internal error (injected)"}, status_code=500)
            if fault.kind == "slow":
                await asyncio.sleep(float(fault.value))
                return await call_next(request)
            if fault.kind == "drop-column":
                response = await call_next(request)
                body = b"".join([chunk async for chunk in response.body_iterator])
                data = json.loads(body)
                for row in data.get("rows", []):
                    row.pop(fault.value, None)
                return JSONResponse(data, status_code=response.status_code)
            raise ValueError(f"unknown fault kind {fault.kind!r}")

        with run_in_thread(app) as url:
            self.url = url
            yield self
