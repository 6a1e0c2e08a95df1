"""Shared helpers of the fault tests (tests/test_faults_*.py): real faults, no mocks.

A faulty partner API is the real demo API (``common.demo_api.create_app``) with one
middleware in front that injects the fault on chosen paths (429 with Retry-After, 500, a
handler slower than the client's timeout, a changed response format) and records every
request it saw, so a test can count attempts and measure the gaps between them. Flow runs
are real CLI processes against the session server, started together where a module
needs several, so the slow parts (imports, retries) overlap.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from conftest import ROOT, Stack, script


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
    def serving(self, storage: Path, capacity: int = 10) -> Iterator["FaultyPartnerApi"]:
        from common.demo_api import create_app, run_in_thread

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
                return JSONResponse({"detail": "over capacity"}, status_code=429,
                                    headers={"Retry-After": str(fault.value)})
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


def linked_data_dir(stack: Stack, root: Path, *, with_database: bool = True) -> Path:
    """A private data folder (its own lake and reports); the demo database hard-linked in
    (DuckDB opens it read-only), so no test pays for seeding it again."""
    data = root / "data"
    (data / "demo").mkdir(parents=True)
    if with_database:
        os.link(stack.data_dir / "demo" / "shop.duckdb", data / "demo" / "shop.duckdb")
    return data


def limits_file(root: Path, **api: Any) -> Path:
    """A copy of limits.toml with some ``[resources.api]`` keys changed (client-side only:
    the slots stay those of the server, so nothing drifts)."""
    text = (ROOT / "limits.toml").read_text()
    head, _, api_part = text.partition("[resources.api]")
    for key, value in api.items():
        api_part, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", api_part)
        assert count == 1, f"limits.toml has no api key {key}"
    path = root / "limits.toml"
    path.write_text(head + "[resources.api]" + api_part)
    return path


@dataclass
class CliRun:
    """A CLI process started now; :meth:`finish` waits and returns what the user saw."""

    args: tuple[str, ...]
    proc: subprocess.Popen[bytes]
    out_path: Path
    err_path: Path
    started: float
    seconds: float = 0.0
    stdout: str = ""
    stderr: str = ""

    @classmethod
    def start(cls, folder: Path, *args: str, env: dict[str, str]) -> "CliRun":
        folder.mkdir(parents=True, exist_ok=True)
        out, err = folder / "stdout.txt", folder / "stderr.txt"
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen([script(args[0]), *args[1:]], stdout=o, stderr=e, env=env, cwd=ROOT,
                                    stdin=subprocess.DEVNULL)
        run = cls(args, proc, out, err, time.monotonic())
        threading.Thread(target=run._clock, daemon=True).start()
        return run

    def _clock(self) -> None:
        """Note when the process ended (runs started together are finished one by one)."""
        self.proc.wait()
        self.seconds = time.monotonic() - self.started

    def finish(self, timeout: float = 240) -> "CliRun":
        try:
            self.proc.wait(timeout=max(1.0, timeout - (time.monotonic() - self.started)))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{' '.join(self.args)} still running after {timeout:.0f} s") from None
        deadline = time.monotonic() + 5
        while not self.seconds and time.monotonic() < deadline:
            time.sleep(0.01)
        self.stdout = self.out_path.read_text(errors="replace")
        self.stderr = self.err_path.read_text(errors="replace")
        return self

    @property
    def code(self) -> int:
        return int(self.proc.returncode)

    @property
    def error_lines(self) -> list[str]:
        """The lines a user reads as the outcome: ``error: ...`` on stderr."""
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def describe(self) -> str:
        return f"{' '.join(self.args)} -> {self.code}\n{self.stdout[-1500:]}\n{self.stderr[-3000:]}"


def checksums(lake: Path) -> dict[str, tuple[int, int]]:
    """Rows and a content hash of every published dataset (reading it whole: a half-written
    Parquet file would fail here)."""
    out = {}
    for path in sorted(lake.glob("*.parquet")):
        row = duckdb.execute(
            "SELECT count(*), coalesce(sum(hash(t)), 0) FROM read_parquet(?) t", [str(path)]
        ).fetchone()
        out[path.stem] = (int(row[0]), int(row[1]))  # type: ignore[index]
    return out


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*")) if p.is_file()}


def flow_run_id(stderr: str) -> str:
    """The flow run a CLI run created, from the link Prefect logs."""
    match = re.search(r"/runs/flow-run/([0-9a-f-]{36})", stderr)
    assert match, "no flow run link in the output"
    return match.group(1)


def server_text(client: Any, run: str) -> str:
    """Everything the server keeps about a flow run that a user can read: its logs, its
    state and parameters, and its task runs' states."""
    from uuid import UUID

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId

    run_id = UUID(run)
    texts = [client.read_flow_run(run_id).model_dump_json()]
    texts += [t.model_dump_json() for t in client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])), limit=200)]
    offset = 0
    while True:
        page = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])),
                                limit=200, offset=offset)
        texts += [entry.message for entry in page]
        if len(page) < 200:
            return "\n".join(texts)
        offset += 200
