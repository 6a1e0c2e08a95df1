"""The embedded demo partner API: reference data in, finished reports out.

It stands in for a fragile partner system and ENFORCES ITS OWN CAPACITY: a request that
would put more than ``capacity`` requests in flight is refused at once with 429. Started
with a capacity equal to the ``api`` limit, any breach of the Prefect limit therefore
shows up as a 429 that ``GET /stats`` counts (and tests can assert on).

Run it with ``uv run demo-api --capacity 10`` or from code with :class:`DemoApiProcess`.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

import duckdb
import httpx
import typer
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.reaper import wait_for_parent_exit
from common.reference import COUNTRIES, CURRENCIES, FIRST_MONTH, MONTHS

# ASGI plumbing types (kept local: starlette's aliases are not part of its public API).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REPORT_NAME_PATTERN = "^[a-z0-9_]{1,64}$"
_REPORT_NAME_RE = re.compile(REPORT_NAME_PATTERN)
UNCOUNTED_PATHS = frozenset({"/health", "/stats", "/stats/reset"})
COUNTRIES_PAGE_SIZE = 10
TOKEN_ENV_VAR = "ETL_DEMO_API_TOKEN"  # the CLI's token source: keeps it out of argv / ps

# Plausible EUR value of one unit of each currency; unknown currencies get a hashed base.
_BASE_RATE_TO_EUR: dict[str, float] = {
    "EUR": 1.0,
    "USD": 0.92,
    "GBP": 1.17,
    "CHF": 1.04,
    "SEK": 0.088,
    "NOK": 0.086,
    "DKK": 0.134,
    "PLN": 0.23,
    "CZK": 0.040,
    "CAD": 0.68,
    "JPY": 0.0062,
}


# --- capacity enforcement ---------------------------------------------------------------


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


# --- reference data ---------------------------------------------------------------------


def _months() -> list[tuple[int, int]]:
    year, month = (int(part) for part in FIRST_MONTH.split("-"))
    return [(year + (month - 1 + i) // 12, (month - 1 + i) % 12 + 1) for i in range(MONTHS)]


def _base_rate(currency: str) -> float:
    if currency in _BASE_RATE_TO_EUR:
        return _BASE_RATE_TO_EUR[currency]
    digest = hashlib.sha256(currency.encode()).digest()
    return 0.01 + int.from_bytes(digest[:4], "big") / 2**32  # deterministic, in (0.01, 1.01)


def _fx_columns() -> dict[str, list[Any]]:
    """Daily rates: a seeded, mean-reverting random walk per currency (same on every run)."""
    days: list[tuple[int, date]] = []  # (page, day): one page per month
    for page, (year, month) in enumerate(_months(), start=1):
        first = date(year, month, 1)
        days.extend((page, first + timedelta(d)) for d in range(calendar.monthrange(year, month)[1]))
    cols: dict[str, list[Any]] = {"page": [], "currency": [], "month": [], "day": [], "rate": []}
    for currency in CURRENCIES:
        rng = random.Random(f"fx:{currency}")  # str seeds hash with sha512: stable across runs
        base = _base_rate(currency)
        drift = 0.0
        for page, day in days:
            if currency == "EUR":
                rate = 1.0
            else:
                drift = 0.98 * drift + rng.gauss(0.0, 0.004)
                rate = float(f"{base * (1.0 + drift):.6g}")
            cols["page"].append(page)
            cols["currency"].append(currency)
            cols["month"].append(day.strftime("%Y-%m"))
            cols["day"].append(day)
            cols["rate"].append(rate)
    return cols


@dataclass(frozen=True)
class _Dataset:
    table: str
    select: str
    order_by: str
    pages: int


def _build_reference_db() -> tuple[duckdb.DuckDBPyConnection, dict[str, _Dataset]]:
    """Load the reference data into an in-memory DuckDB once, so every page request is a
    real query (DuckDB releases the GIL while it runs)."""
    con = duckdb.connect(":memory:")
    fx = _fx_columns()
    con.execute(
        "CREATE TABLE fx_rates AS SELECT unnest($page) AS page, unnest($currency) AS currency,"
        " unnest($month) AS month, unnest($day)::DATE AS day, unnest($rate)::DOUBLE AS rate_to_eur",
        fx,
    )
    countries = list(COUNTRIES)
    con.execute(
        "CREATE TABLE countries AS SELECT unnest($page) AS page, unnest($code) AS code,"
        " unnest($name) AS name, unnest($region) AS region, unnest($currency) AS currency,"
        " unnest($vat)::DOUBLE AS vat_rate",
        {
            "page": [i // COUNTRIES_PAGE_SIZE + 1 for i in range(len(countries))],
            "code": [c.code for c in countries],
            "name": [c.name for c in countries],
            "region": [c.region for c in countries],
            "currency": [c.currency for c in countries],
            "vat": [c.vat_rate for c in countries],
        },
    )
    datasets = {
        "fx_rates": _Dataset(
            "fx_rates",
            "currency, month, strftime(day, '%Y-%m-%d') AS day, rate_to_eur",
            "currency, day",
            MONTHS,
        ),
        "countries": _Dataset(
            "countries",
            "code, name, region, currency, vat_rate",
            "code",
            max(1, -(-len(countries) // COUNTRIES_PAGE_SIZE)),
        ),
    }
    return con, datasets


# --- reports ----------------------------------------------------------------------------


class ReportIn(BaseModel):
    """A finished report as the reports flow publishes it."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    columns: list[str] = Field(min_length=1)
    rows: list[list[Any]]
    generated_at: str = Field(min_length=1)

    @model_validator(mode="after")
    def _rows_match_columns(self) -> ReportIn:
        width = len(self.columns)
        for index, row in enumerate(self.rows):
            if len(row) != width:
                raise ValueError(f"row {index} has {len(row)} values, expected {width} (one per column)")
        return self


def _write_atomically(path: Path, data: bytes) -> None:
    """Write aside then rename: readers never see a half-written report."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# --- the app ----------------------------------------------------------------------------


# The partner publishes each day's rate as a fixing: the volume-weighted mean of that day's
# intraday quotes, computed from its tick data when asked (like a real rates service, a page
# of fixings costs it real work: about half a second on one core here).
TICKS_PER_DAY = 40_000

_FIXINGS_SQL = """
    WITH ticks AS (
        SELECT d.currency, d.month, d.day, d.rate_to_eur AS anchor,
               CASE WHEN d.currency = 'EUR' THEN 0.0
                    ELSE (CAST(hash(d.currency, d.day, t.i) % 20001 AS BIGINT) - 10000) / 2e6 END AS deviation,
               1 + hash(d.day, t.i, d.currency) % 100 AS volume
        FROM fx_rates d, range(?) t(i)
        WHERE d.page = ?
    )
    SELECT currency, month, strftime(day, '%Y-%m-%d') AS day,
           round(sum(anchor * (1 + deviation) * volume) / sum(volume), 6) AS rate_to_eur
    FROM ticks
    GROUP BY currency, month, day
    ORDER BY currency, day
"""


def create_app(
    capacity: int, storage_dir: Path, token: str | None = None, ticks_per_day: int = TICKS_PER_DAY
) -> FastAPI:
    """Build the demo partner API; ``token`` (if set) is required on ``/v1/*``."""
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    storage_dir = Path(storage_dir)
    storage_dir.mkdir(parents=True, exist_ok=True)
    stats = ApiStats(capacity)
    con, datasets = _build_reference_db()
    con.execute("SET threads = 1")  # one request, one core: concurrent requests share the box

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        con.close()

    app = FastAPI(title="Demo partner API", version="1", lifespan=lifespan)
    app.state.stats = stats
    app.add_middleware(CapacityMiddleware, stats=stats)

    expected = f"Bearer {token}".encode() if token else None

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if expected is None:
            return
        if authorization is None or not hmac.compare_digest(authorization.encode(), expected):
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stats")
    def get_stats() -> dict[str, int | float]:
        return stats.snapshot()

    @app.post("/stats/reset")
    def reset_stats() -> dict[str, int | float]:
        stats.reset()
        return stats.snapshot()

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_token)])

    @v1.get("/reference")
    def reference_index() -> dict[str, Any]:
        return {"datasets": {name: {"pages": ds.pages} for name, ds in datasets.items()}}

    @v1.get("/reference/{dataset}")
    def reference_page(dataset: str, page: Annotated[int, Query()] = 1) -> dict[str, Any]:
        ds = datasets.get(dataset)
        if ds is None:
            raise HTTPException(404, f"unknown dataset {dataset!r}; known: {', '.join(sorted(datasets))}")
        if not 1 <= page <= ds.pages:
            raise HTTPException(404, f"page {page} out of range 1..{ds.pages} for dataset {dataset!r}")
        cursor = con.cursor()  # one connection per request: DuckDB connections are not shared
        try:
            if dataset == "fx_rates" and ticks_per_day > 0:
                result = cursor.execute(_FIXINGS_SQL, [ticks_per_day, page])
            else:
                result = cursor.execute(
                    f"SELECT {ds.select} FROM {ds.table} WHERE page = ? ORDER BY {ds.order_by}", [page]
                )
            names = [column[0] for column in result.description]
            rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cursor.close()
        return {"dataset": dataset, "page": page, "pages": ds.pages, "rows": rows}

    @v1.post("/reports/{name}", status_code=201)
    def publish_report(name: str, report: ReportIn) -> dict[str, Any]:
        if not _REPORT_NAME_RE.fullmatch(name):
            raise HTTPException(422, f"report name {name!r} must match {REPORT_NAME_PATTERN}")
        data = json.dumps(report.model_dump(), ensure_ascii=False, separators=(",", ":")).encode()
        _write_atomically(storage_dir / f"{name}.json", data)
        stats.report_received()
        return {"name": name, "rows": len(report.rows), "sha256": hashlib.sha256(data).hexdigest()}

    @v1.get("/reports")
    def list_reports() -> dict[str, list[str]]:
        return {"reports": sorted(path.stem for path in storage_dir.glob("*.json"))}

    app.include_router(v1)
    return app


# --- running it -------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (not listen) the way uvicorn does, so a port check and the server agree."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def port_is_free(host: str, port: int) -> bool:
    try:
        bind_socket(host, port).close()
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (for tests and ad-hoc runs)."""
    with bind_socket(host, 0) as sock:
        return int(sock.getsockname()[1])


def _port_taken_message(host: str, port: int, reason: str) -> str:
    return (
        f"demo API cannot bind {host}:{port} ({reason}): stop whatever holds port {port} "
        "or set ETL_DEMO_API_PORT (or --port) to a free port"
    )


@contextlib.contextmanager
def run_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields its base URL. The socket is
    bound before the thread starts, so ``port=0`` has no free-port race."""
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="demo-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"in-thread API on {host}:{bound_port} did not start within {timeout:.0f}s")
            time.sleep(0.02)
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


def _exit_with_parent(server: uvicorn.Server, parent_pid: int) -> None:
    """Stop ``server`` once ``parent_pid`` is gone: a parent killed with SIGKILL cannot stop
    its child, and an orphaned API would hold the port and the next run would refuse it."""

    def watch() -> None:
        if wait_for_parent_exit(parent_pid, stop=lambda: bool(server.should_exit)):
            server.should_exit = True

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def serve(
    host: str, port: int, capacity: int, storage_dir: Path, token: str | None = None, parent_pid: int | None = None
) -> None:
    """Run the API in this process until SIGINT/SIGTERM (or until ``parent_pid`` dies)."""
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        typer.echo(_port_taken_message(host, port, exc.strerror or str(exc)), err=True)
        raise typer.Exit(2) from None
    app = create_app(capacity, storage_dir, token=token)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    if parent_pid is not None:
        _exit_with_parent(server, parent_pid)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _cli(
    capacity: Annotated[int, typer.Option(min=1, help="Requests in flight before it answers 429 (= the api limit).")],
    host: Annotated[str, typer.Option(help="Interface to bind; keep the default to stay local.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help="Port; default ETL_DEMO_API_PORT (8765).")] = None,
    storage_dir: Annotated[
        Path | None, typer.Option(help="Where published reports go; default <data>/partner_api.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar=TOKEN_ENV_VAR, show_default=False, show_envvar=True, help="Require this bearer token on /v1/*."
        ),
    ] = None,
    parent_pid: Annotated[
        int | None, typer.Option(hidden=True, help="Exit when this process (the one that started us) dies.")
    ] = None,
) -> None:
    """Serve the demo partner API (it refuses with 429 above its capacity)."""
    from common.settings import get_settings

    settings = get_settings()
    serve(
        host,
        port if port is not None else settings.demo_api_port,
        capacity,
        storage_dir if storage_dir is not None else settings.data_dir / "partner_api",  # type: ignore[operator]
        token=token or None,
        parent_pid=parent_pid,
    )


def main() -> None:
    typer.run(_cli)


# --- as a child process -----------------------------------------------------------------


class DemoApiProcess:
    """The demo API as a child process of serve-all or of a test, tracked by its PID only.

    The token goes to the child through the environment, never the command line.
    """

    def __init__(
        self,
        capacity: int,
        storage_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        token: str | None = None,
    ) -> None:
        from common.settings import get_settings

        settings = get_settings()
        self.capacity = capacity
        default_dir = settings.data_dir / "partner_api"  # type: ignore[operator]
        self.storage_dir = Path(storage_dir) if storage_dir is not None else default_dir
        self.host = host
        self.port = port if port is not None else settings.demo_api_port
        self._token = token
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None

    def __repr__(self) -> str:
        return f"DemoApiProcess(url={self.url!r}, capacity={self.capacity}, pid={self.pid})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Spawn the child; fails with one line if the port is already taken."""
        if self.running:
            return
        try:
            bind_socket(self.host, self.port).close()
        except OSError as exc:
            raise RuntimeError(_port_taken_message(self.host, self.port, exc.strerror or str(exc))) from None
        env = dict(os.environ)
        env.pop(TOKEN_ENV_VAR, None)
        if self._token:
            env[TOKEN_ENV_VAR] = self._token
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [
                sys.executable, "-m", "common.demo_api",
                "--host", self.host,
                "--port", str(self.port),
                "--capacity", str(self.capacity),
                "--storage-dir", str(self.storage_dir),
                "--parent-pid", str(os.getpid()),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stderr,
            stderr=self._stderr,
        )

    def _last_output_line(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = [line.strip() for line in self._stderr.read().decode(errors="replace").splitlines()]
        lines = [line for line in lines if line]
        return lines[-1] if lines else ""

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Poll ``/health`` until it answers; raise one clear line if the child died or hung."""
        if self._proc is None:
            raise RuntimeError("demo API was not started: call start() first")
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    detail = self._last_output_line() or "no output"
                    raise RuntimeError(
                        f"demo API on {self.url} exited with code {code} before it was healthy: {detail}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health").status_code == 200 and self._proc.poll() is None:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"demo API on {self.url} (pid {self._proc.pid}) not healthy after {timeout:.0f}s; "
                        f"last output: {self._last_output_line() or 'none'}"
                    )
                time.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``: only this child's PID, nothing else."""
        proc = self._proc
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        finally:
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def __enter__(self) -> DemoApiProcess:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    main()
