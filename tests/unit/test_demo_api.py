"""The demo partner API over real HTTP: capacity enforcement, reference data, reports."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from demo_systems.partner_api import ApiStats, DemoApiProcess, create_app
from demo_systems.reference import COUNTRIES, CURRENCIES, FIRST_MONTH, MONTHS
from local_server.processes import free_port, running
from slot_tools.asgi import run_in_thread
from support import listening

STATS_KEYS = {
    "capacity",
    "in_flight",
    "max_in_flight",
    "requests",
    "accepted",
    "rejected_429",
    "reports_received",
    "max_requests_per_second",
    "request_span_seconds",
}


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(capacity=10, storage_dir=tmp_path_factory.mktemp("partner_api"))
    with run_in_thread(app) as url:
        yield url


@pytest.fixture
def client(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=10) as c:
        c.post("/stats/reset").raise_for_status()
        yield c


def all_days() -> list[str]:
    year, month = (int(p) for p in FIRST_MONTH.split("-"))
    start = date(year, month, 1)
    end_year, end_month = year + (month - 1 + MONTHS) // 12, (month - 1 + MONTHS) % 12 + 1
    end = date(end_year, end_month, 1)
    return [(start + timedelta(d)).isoformat() for d in range((end - start).days)]


def test_health_and_stats_keys(client: httpx.Client) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    stats = client.get("/stats").json()
    assert set(stats) == STATS_KEYS
    assert stats["capacity"] == 10
    assert stats["requests"] == 0  # /health and /stats are not counted


def test_rate_stats_count_the_busiest_one_second_window() -> None:
    now = [0.0]
    stats = ApiStats(capacity=100, clock=lambda: now[0])
    for start in (0.0, 0.1, 0.5, 0.99, 1.0, 1.05, 1.2, 3.0):  # (0.05, 1.05] holds 0.1 .. 1.05: 5
        now[0] = start
        assert stats.try_admit()
        stats.release()
    snap = stats.snapshot()
    assert snap["max_requests_per_second"] == 5
    assert snap["request_span_seconds"] == 3.0
    stats.reset()
    assert stats.snapshot()["max_requests_per_second"] == 0
    assert stats.snapshot()["request_span_seconds"] == 0.0


def test_capacity_is_enforced_with_429(tmp_path: Path) -> None:
    capacity, extra = 3, 5
    app = create_app(capacity=capacity, storage_dir=tmp_path)
    release = threading.Event()
    entered = threading.Semaphore(0)

    @app.get("/v1/block")
    def block() -> dict[str, bool]:  # test-only: holds its capacity slot until released
        entered.release()
        return {"released": release.wait(10)}

    limits = httpx.Limits(max_connections=20)
    with run_in_thread(app) as url, httpx.Client(base_url=url, timeout=15, limits=limits) as c:
        with ThreadPoolExecutor(capacity + extra) as pool:
            futures = [pool.submit(c.get, "/v1/block") for _ in range(capacity + extra)]
            try:
                for _ in range(capacity):
                    assert entered.acquire(timeout=10), "a blocking request never reached the handler"
                # The refused ones come back while the admitted ones are still held.
                deadline = time.monotonic() + 10
                while sum(f.done() for f in futures) < extra and time.monotonic() < deadline:
                    time.sleep(0.01)
                refused = [f.result() for f in futures if f.done()]
                during = c.get("/stats").json()
            finally:
                release.set()
            done, _ = wait(futures, timeout=10)
        responses = [f.result() for f in done]
        after = c.get("/stats").json()

    assert len(refused) == extra
    for r in refused:
        assert r.status_code == 429
        assert r.headers["retry-after"] == "1"
        assert r.json() == {"detail": f"capacity {capacity} exceeded"}
    assert during["in_flight"] == capacity  # /stats still answers when the API is full
    assert len(responses) == capacity + extra
    assert sorted(r.status_code for r in responses) == [200] * capacity + [429] * extra
    assert all(r.json() == {"released": True} for r in responses if r.status_code == 200)
    assert after["rejected_429"] == extra
    assert after["accepted"] == capacity
    assert after["requests"] == capacity + extra
    assert after["max_in_flight"] == capacity
    assert after["in_flight"] == 0


def test_reference_covers_every_currency_day_once(client: httpx.Client) -> None:
    index = client.get("/v1/reference").json()["datasets"]
    pages = index["fx_rates"]["pages"]
    assert 20 <= pages <= 40
    seen: list[tuple[str, str]] = []
    for page in range(1, pages + 1):
        body = client.get("/v1/reference/fx_rates", params={"page": page}).json()
        assert (body["dataset"], body["page"], body["pages"]) == ("fx_rates", page, pages)
        for row in body["rows"]:
            assert set(row) == {"currency", "month", "day", "rate_to_eur"}
            assert row["day"].startswith(row["month"] + "-")
            assert row["rate_to_eur"] > 0
            if row["currency"] == "EUR":
                assert row["rate_to_eur"] == 1.0
            seen.append((row["currency"], row["day"]))
    expected = {(c, d) for c in CURRENCIES for d in all_days()}
    assert len(seen) == len(set(seen)), "a (currency, day) appears twice"
    assert set(seen) == expected


def test_reference_is_deterministic_and_countries_complete(client: httpx.Client, tmp_path: Path) -> None:
    with run_in_thread(create_app(capacity=2, storage_dir=tmp_path)) as other:
        again = httpx.get(f"{other}/v1/reference/fx_rates", params={"page": 7}, timeout=10).json()
    assert client.get("/v1/reference/fx_rates", params={"page": 7}).json() == again

    pages = client.get("/v1/reference").json()["datasets"]["countries"]["pages"]
    rows = [r for p in range(1, pages + 1) for r in client.get(f"/v1/reference/countries?page={p}").json()["rows"]]
    assert sorted(r["code"] for r in rows) == sorted(c.code for c in COUNTRIES)
    assert {r["currency"] for r in rows} == set(CURRENCIES)
    assert set(rows[0]) == {"code", "name", "region", "currency", "vat_rate"}


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/v1/reference/nope", "unknown dataset 'nope'"),
        ("/v1/reference/fx_rates?page=0", "out of range"),
        ("/v1/reference/fx_rates?page=999", "out of range"),
        ("/v1/reference/countries?page=3", "out of range"),
    ],
)
def test_reference_404_has_clear_detail(client: httpx.Client, url: str, needle: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert needle in response.json()["detail"]


def _report_files(storage: Path) -> list[str]:
    return sorted(p.name for p in storage.iterdir())


def test_report_round_trip_is_atomic_and_listed(tmp_path: Path) -> None:
    storage = tmp_path / "reports"
    body = {
        "title": "Revenue by country",
        "columns": ["country", "revenue"],
        "rows": [["DE", 1.5], ["FR", None]],
        "generated_at": "2025-01-01T00:00:00Z",
    }
    with run_in_thread(create_app(capacity=2, storage_dir=storage)) as url, httpx.Client(base_url=url) as c:
        first = c.post("/v1/reports/revenue_by_country", json=body)
        body2 = {**body, "rows": [["DE", 2.0]]}
        second = c.post("/v1/reports/revenue_by_country", json=body2)
        listing = c.get("/v1/reports").json()
        stats = c.get("/stats").json()

    assert first.status_code == 201
    assert first.json()["name"] == "revenue_by_country" and first.json()["rows"] == 2
    assert second.json()["rows"] == 1
    path = storage / "revenue_by_country.json"
    assert _report_files(storage) == ["revenue_by_country.json"]  # no temp file left behind
    assert json.loads(path.read_text()) == body2  # replaced, not appended
    assert hashlib.sha256(path.read_bytes()).hexdigest() == second.json()["sha256"]
    assert listing == {"reports": ["revenue_by_country"]}
    assert stats["reports_received"] == 2


@pytest.mark.parametrize("name", ["Bad-Name", "UPPER", "a" * 65, "dots.json", "sp ace"])
def test_bad_report_name_rejected(client: httpx.Client, name: str) -> None:
    body = {"title": "t", "columns": ["a"], "rows": [[1]], "generated_at": "now"}
    response = client.post(f"/v1/reports/{name}", json=body)
    assert response.status_code == 422
    assert "must match" in response.json()["detail"]
    assert name not in client.get("/v1/reports").json()["reports"]


def test_report_rows_must_match_columns(client: httpx.Client) -> None:
    body = {"title": "t", "columns": ["a", "b"], "rows": [[1, 2], [3]], "generated_at": "now"}
    response = client.post("/v1/reports/mismatch", json=body)
    assert response.status_code == 422
    assert "row 1 has 1 values, expected 2" in json.dumps(response.json())


def test_token_required_when_configured(tmp_path: Path) -> None:
    app = create_app(capacity=2, storage_dir=tmp_path, token="s3cret")
    with run_in_thread(app) as url, httpx.Client(base_url=url) as c:
        assert c.get("/v1/reference").status_code == 401
        wrong = c.get("/v1/reference", headers={"Authorization": "Bearer nope"})
        right = c.get("/v1/reference", headers={"Authorization": "Bearer s3cret"})
        health = c.get("/health")
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    assert right.status_code == 200
    assert health.status_code == 200


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_process_binds_loopback_only_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = DemoApiProcess(capacity=4, storage_dir=tmp_path, port=port, token="tok")
    with proc:
        pid = proc.pid
        assert pid is not None
        assert listening(port) == [f"0100007F:{port:04X}"]  # 127.0.0.1, nothing else
        stats = httpx.get(f"{proc.url}/stats", timeout=5).json()
        assert stats["capacity"] == 4
        assert httpx.get(f"{proc.url}/v1/reference", timeout=5).status_code == 401  # token via env
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"tok" not in cmdline
    assert not proc.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert listening(port) == []


def test_process_fails_clearly_when_port_taken(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        proc = DemoApiProcess(capacity=1, storage_dir=tmp_path, port=port)
        with pytest.raises(RuntimeError) as info:
            proc.start()
    message = str(info.value)
    assert str(port) in message and "ETL_DEMO_API_PORT" in message
    assert "\n" not in message
    assert proc.pid is None


def test_cli_rejects_capacity_zero() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demo_systems.partner_api", "--capacity", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "capacity" in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_child_api_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    """SIGKILL gives the parent no chance to stop its child: the child notices and stops, so
    the port is free for the next run."""
    port = free_port()
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from demo_systems.partner_api import DemoApiProcess\n"
            f"api = DemoApiProcess(capacity=1, storage_dir=Path({str(tmp_path)!r}), port={port})\n"
            "api.start(); api.wait_healthy()\n"
            "print(api.pid, flush=True)\n"
            "sys.stdin.read()  # until the test kills us\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert listening(port) == [f"0100007F:{port:04X}"]
    finally:
        parent.kill()
        parent.wait(timeout=10)

    deadline = time.monotonic() + 15
    try:
        while running(child):
            assert time.monotonic() < deadline, f"demo API {child} still running 15 s after its parent was killed"
            time.sleep(0.2)
    finally:
        if running(child):
            os.kill(child, signal.SIGTERM)  # ours (we started its parent): do not leave it behind
    assert listening(port) == []
