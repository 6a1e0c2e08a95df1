"""PartnerApi against a real HTTP server: retries, Retry-After, fail-fast and clear errors."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from common.api_client import PartnerApi, PartnerApiError
from common.settings import Settings
from demo_systems.partner_api import create_app
from local_server.processes import free_port
from slot_tools.asgi import run_in_thread

TOKEN = "t0ken-value"


class Server:
    """The demo API plus misbehaving test-only routes, with a hit counter per route."""

    def __init__(self, url: str, app: FastAPI, storage: Path, hits: Counter[str], release: threading.Event) -> None:
        self.url, self.app, self.storage, self.hits, self.release = url, app, storage, hits, release


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    storage = tmp_path_factory.mktemp("partner_api")
    app = create_app(capacity=10, storage_dir=storage, token=TOKEN)
    hits: Counter[str] = Counter()
    release = threading.Event()

    @app.get("/test/once-429")
    def once_429(key: str) -> JSONResponse:
        hits[key] += 1
        if hits[key] == 1:
            return JSONResponse({"detail": "busy"}, status_code=429, headers={"Retry-After": "1"})
        return JSONResponse({"ok": True})

    @app.get("/test/long-retry-after")
    def long_retry_after(key: str) -> JSONResponse:
        hits[key] += 1
        if hits[key] == 1:
            return JSONResponse({"detail": "busy"}, status_code=503, headers={"Retry-After": "120"})
        return JSONResponse({"ok": True})

    @app.get("/test/always-500")
    def always_500(key: str) -> JSONResponse:
        hits[key] += 1
        return JSONResponse({"detail": "database exploded"}, status_code=500)

    @app.get("/test/always-429")
    def always_429(key: str) -> JSONResponse:
        hits[key] += 1
        return JSONResponse({"detail": "capacity 10 exceeded"}, status_code=429, headers={"Retry-After": "0"})

    @app.get("/test/hang")
    def hang(key: str) -> dict[str, bool]:
        hits[key] += 1
        return {"released": release.wait(10)}

    with run_in_thread(app) as url:
        try:
            yield Server(url, app, storage, hits, release)
        finally:
            release.set()


def client(server: Server, **kwargs: object) -> PartnerApi:
    return PartnerApi(server.url, token=SecretStr(TOKEN), **kwargs)  # type: ignore[arg-type]


def test_reference_and_publish_round_trip(server: Server) -> None:
    with client(server) as api:
        index = api.fetch_reference_index()
        page = api.fetch_reference_page("countries", 1)
        result = api.publish_report(
            "client_round_trip",
            {
                "title": "Round trip",
                "columns": ["day", "amount"],
                "rows": [[date(2024, 1, 2), Decimal("1.25")]],  # what DB rows hold
                "generated_at": "2025-01-01T00:00:00Z",
            },
        )
    assert set(index["datasets"]) == {"fx_rates", "countries"}
    assert page["page"] == 1 and page["rows"]
    assert result["name"] == "client_round_trip" and result["rows"] == 1
    stored = json.loads((server.storage / "client_round_trip.json").read_text())
    assert stored["rows"] == [["2024-01-02", 1.25]]
    assert api.retries == 0 and api.attempts == 3


def test_honours_retry_after(server: Server) -> None:
    with client(server) as api:
        started = time.monotonic()
        assert api.get_json("/test/once-429", params={"key": "ra"}) == {"ok": True}
        elapsed = time.monotonic() - started
    assert elapsed >= 1.0, f"retried after {elapsed:.2f}s, before Retry-After: 1"
    assert len(api.waits) == 1 and 1.0 <= api.waits[0] <= 1.1, api.waits  # Retry-After, not a backoff
    assert server.hits["ra"] == 2
    assert (api.attempts, api.retries) == (2, 1)


def test_retry_after_is_capped(server: Server) -> None:
    with client(server, max_retry_wait=0.2) as api:
        assert api.get_json("/test/long-retry-after", params={"key": "cap"}) == {"ok": True}
    assert api.retries == 1
    assert len(api.waits) == 1 and api.waits[0] <= 0.2 + 0.1, api.waits  # capped, not the header's value


def test_gives_up_after_max_attempts_on_500(server: Server) -> None:
    with client(server, max_attempts=3, backoff_base=0.05) as api, pytest.raises(PartnerApiError) as info:
        api.get_json("/test/always-500", params={"key": "500"})
    message = str(info.value)
    assert "GET /test/always-500" in message
    assert "after 3 attempts" in message and "HTTP 500" in message and "database exploded" in message
    assert "\n" not in message
    assert server.hits["500"] == 3
    assert (info.value.status, info.value.attempts) == (500, 3)
    assert api.retries == 2


def test_gives_up_on_persistent_429_with_a_hint(server: Server) -> None:
    with client(server, max_attempts=2) as api, pytest.raises(PartnerApiError) as info:
        api.get_json("/test/always-429", params={"key": "429"})
    assert "HTTP 429" in str(info.value) and "`api` limit" in str(info.value)
    assert server.hits["429"] == 2


def test_fails_fast_on_404_with_server_detail(server: Server) -> None:
    with client(server) as api:
        with pytest.raises(PartnerApiError) as info:
            api.fetch_reference_page("no_such_dataset", 1)
    assert api.waits == [], "a 404 was retried"
    assert "HTTP 404" in str(info.value) and "unknown dataset 'no_such_dataset'" in str(info.value)
    assert info.value.attempts == 1
    assert (api.attempts, api.retries) == (1, 0)


def test_fails_fast_on_422_bad_report_name(server: Server) -> None:
    with client(server) as api, pytest.raises(PartnerApiError) as info:
        api.publish_report("Bad-Name", {"title": "t", "columns": ["a"], "rows": [], "generated_at": "x"})
    assert "must match" in str(info.value) and api.attempts == 1


def test_missing_token_is_401_and_token_never_shown(server: Server) -> None:
    with PartnerApi(server.url) as anonymous, pytest.raises(PartnerApiError) as info:
        anonymous.fetch_reference_index()
    assert "HTTP 401" in str(info.value) and "ETL_API_TOKEN" in str(info.value)
    api = client(server, max_attempts=2, backoff_base=0.01)
    assert TOKEN not in repr(api) and "token=set" in repr(api)
    with pytest.raises(PartnerApiError) as info:
        api.get_json("/test/always-500", params={"key": "secret"})
    assert TOKEN not in str(info.value)
    api.close()


def test_timeout_is_retried_then_reported(server: Server) -> None:
    with client(server, timeout=0.3, max_attempts=2, backoff_base=0.05) as api, pytest.raises(PartnerApiError) as info:
        api.get_json("/test/hang", params={"key": "hang"})
    assert "timed out after 0.3s" in str(info.value) and "ETL_API_TIMEOUT_SECONDS" in str(info.value)
    assert server.hits["hang"] == 2


def test_closed_port_fails_after_bounded_backoffs() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with PartnerApi(url) as api, pytest.raises(PartnerApiError) as info:
        api.fetch_reference_index()
    message = str(info.value)
    # Bounded: three exponential backoffs (0.5, 1, 2 s, up to 20% jitter), never Retry-After waits.
    assert len(api.waits) == 3 and sum(api.waits) <= (0.5 + 1 + 2) * 1.2, api.waits
    assert message.startswith(f"partner API at {url} unreachable")
    assert "after 4 attempts (connection refused)" in message and "ETL_API_URL" in message
    assert info.value.status is None and api.retries == 3


def test_from_settings_uses_url_token_and_timeout(server: Server) -> None:
    settings = Settings(api_url=server.url + "/", api_token=SecretStr(TOKEN), api_timeout_seconds=3.5)
    with PartnerApi.from_settings(settings) as api:
        assert api.base_url == server.url and api.timeout == 3.5
        assert api.fetch_reference_index()["datasets"]["fx_rates"]["pages"] >= 1
