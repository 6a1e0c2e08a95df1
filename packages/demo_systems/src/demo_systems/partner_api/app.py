"""The demo partner API app: reference data in, finished reports out.

It stands in for a fragile partner system and enforces its own capacity
(:mod:`demo_systems.partner_api.capacity`). Run it with ``uv run demo-api --capacity 10`` or
from code with :class:`demo_systems.partner_api.process.DemoApiProcess`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from demo_systems.partner_api.capacity import ApiStats, CapacityMiddleware
from demo_systems.partner_api.data import _FIXINGS_SQL, TICKS_PER_DAY, build_reference_db

REPORT_NAME_PATTERN = "^[a-z0-9_]{1,64}$"
_REPORT_NAME_RE = re.compile(REPORT_NAME_PATTERN)


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


def create_app(capacity: int, storage_dir: Path, token: str | None = None, ticks_per_day: int | None = None) -> FastAPI:
    """Build the demo partner API; ``token`` (if set) is required on ``/v1/*``. The work behind
    each fx page is ``ticks_per_day``, else the setting ``ETL_DEMO_API_TICKS_PER_DAY``, else
    :data:`TICKS_PER_DAY`."""
    if ticks_per_day is None:
        from common.settings import get_settings

        ticks_per_day = get_settings().demo_api_ticks_per_day
    if ticks_per_day is None:
        ticks_per_day = TICKS_PER_DAY
    if capacity < 1:
        raise ValueError(f"capacity must be >= 1, got {capacity}")
    storage_dir = Path(storage_dir)
    storage_dir.mkdir(parents=True, exist_ok=True)
    stats = ApiStats(capacity)
    con, datasets = build_reference_db()
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
