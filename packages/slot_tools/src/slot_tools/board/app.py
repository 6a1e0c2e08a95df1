"""The live slot board: one lane per slot, the holding task run coloured by flow, the waiters
per flow with how long they have waited, per-flow totals, anomalies and drift.

Built from the same reading (:func:`slot_tools.snapshot.take_snapshot`) and rulebook
(:mod:`slot_tools.rules`) as ``slots``, with the colours and look of the HTML history. The
page is self-contained (inline CSS and script, no external asset or URL) and holds its first
reading, so it renders at once; it then reads ``api/board`` about once a second. ``/metrics``
gives the same reading to Prometheus (:mod:`slot_tools.metrics`): the page, its data and a
scrape share one reading of the server (:class:`slot_tools.reading.Readings`).
"""

from __future__ import annotations

import hmac
import json
from collections import defaultdict
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from common.prefect_api import auth_headers
from slot_tools.metrics import CONTENT_TYPE, exposition, metrics_registry
from slot_tools.model import Snapshot
from slot_tools.reading import Readings
from slot_tools.render import as_dict
from slot_tools.repair import RepairAction
from slot_tools.timeline import CSS, flow_colours

DEFAULT_BOARD_PORT = 4280


def board_data(snapshot: Snapshot) -> dict[str, Any]:
    """``slots --json`` plus what the page draws: lanes per limit, waiters per flow, colours."""
    data = as_dict(snapshot)
    flows: set[str] = set()
    for view, out in zip(snapshot.limits, data["limits"], strict=True):
        waiting: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "longest_seconds": 0.0})
        for w in view.waiters:
            entry = waiting[w.flow or "?"]
            entry["count"] += 1
            entry["longest_seconds"] = max(entry["longest_seconds"], w.seconds or 0.0)
        out["waiting_by_flow"] = dict(sorted(waiting.items()))
        out["lanes"] = view.server_slots if view.server_slots is not None else view.file_slots
        out["consistent"] = view.consistent
        flows.update(h.flow or "?" for h in view.holders)
        flows.update(waiting)
    data["colours"] = flow_colours(flows)
    return data


def render_page(data: dict[str, Any]) -> str:
    """The page with its first reading inline (``</`` escaped: the JSON sits in a script tag)."""
    template = (files("slot_tools.board") / "page.html").read_text(encoding="utf-8")
    inline = json.dumps(data).replace("</", "<\\/")
    return template.replace("/*CSS*/", CSS).replace("/*DATA*/", inline)


def create_board(readings: Readings, repairs: Callable[[], list[RepairAction]] = list) -> FastAPI:
    """The board's app: ``/`` the page, ``/api/board`` the data, ``/metrics`` for Prometheus,
    all from the latest shared reading; ``repairs``: what this process's watchdog freed."""
    app = FastAPI(title="Shared slots: live board", docs_url=None, redoc_url=None, openapi_url=None)
    # Against a server with an auth string the board asks the browser for the same
    # credentials (HTTP basic auth): it shows what the server shows to whoever may read it.
    expected = auth_headers().get("Authorization", "")
    if expected.startswith("Basic "):

        @app.middleware("http")
        async def same_credentials(request: Request, call_next: Any) -> Response:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                return Response(
                    "the Prefect server's credentials are needed",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Basic realm="slot board"'},
                )
            return await call_next(request)  # type: ignore[no-any-return]

    metrics = metrics_registry(readings, repairs)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return render_page(board_data(readings.latest()))

    @app.get("/api/board")
    def data() -> dict[str, Any]:
        return board_data(readings.latest())

    @app.get("/metrics")
    def scrape() -> Response:
        return Response(exposition(metrics), media_type=CONTENT_TYPE)

    return app
