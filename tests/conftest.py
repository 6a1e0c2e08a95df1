"""One real local Prefect server, one demo database and one demo API per test session (per
pytest-xdist worker: each worker is a session of its own, `pyproject.toml`'s addopts).

The environment is pinned here, at import, before any test module imports Prefect: every
process of the session (this one, served flow runs, CLI subprocesses) talks to the same
server, configured exactly as serve-all configures it (``local_server.prefect_server``).
This file only pins the environment, provides fixtures and prints, after the run, where the
slowest tests say their time went; helpers live in ``support``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import ROOT, Stack, free_port
from support.webhook import WebhookListener, webhook_listener

SESSION_DIR = Path(tempfile.mkdtemp(prefix="etl-tests-"))
SERVER_PORT = free_port()
API_PORT = free_port()
os.environ.update(
    {
        "ETL_PROJECT_DIR": str(ROOT),
        "ETL_DATA_DIR": str(SESSION_DIR / "data"),
        "ETL_DEMO_API_PORT": str(API_PORT),
        "ETL_BOARD_PORT": str(free_port()),  # the live board of every serve-all the tests start
        "PREFECT_HOME": str(SESSION_DIR / "client-home"),
        # The demo API's fx pages at a tenth of their CPU (0.05 s instead of 0.5 s a page): every
        # ingest run fetches 27 pages, and what a page costs the partner is not what tests check.
        "ETL_DEMO_API_TICKS_PER_DAY": "4000",
    }
)
for _var in ("ETL_DATABASE_URL", "ETL_API_URL", "ETL_API_TOKEN", "ETL_LIMITS_FILE"):
    os.environ.pop(_var, None)

from common.prefect_api import use_api  # noqa: E402

API_URL = use_api(f"http://127.0.0.1:{SERVER_PORT}/api")


@pytest.fixture(scope="session")
def seeded_shop(tmp_path_factory: pytest.TempPathFactory):
    """The demo shop at scale 1, seeded once per session (a SeedResult): the unit tests of the
    seed and of the SQL read it, and the session's data folder links it as its demo database."""
    from demo_systems.shop import seed_demo_database

    return seed_demo_database(tmp_path_factory.mktemp("shop") / "shop.duckdb", 1)


@pytest.fixture(scope="session")
def alerts_webhook() -> Iterator[WebhookListener]:
    """Where the session server's automation (limits.toml's) sends its notifications."""
    with webhook_listener() as listener:
        yield listener


@pytest.fixture(scope="session")
def stack(seeded_shop, alerts_webhook: WebhookListener) -> Iterator[Stack]:
    from prefect.client.orchestration import get_client

    from common.resources import API, get_registry
    from common.settings import get_settings
    from demo_systems.partner_api import DemoApiProcess
    from demo_systems.shop import ensure_demo_database
    from local_server.prefect_server import LocalPrefectServer
    from slot_tools import automations_sync
    from slot_tools.limits_sync import sync

    settings = get_settings()
    server = LocalPrefectServer(home=SESSION_DIR / "prefect", port=SERVER_PORT)
    assert server.start(), f"port {SERVER_PORT} already serves Prefect"
    api: DemoApiProcess | None = None
    try:
        server.wait_healthy(timeout=120)
        _notification_block(alerts_webhook.url)  # what limits.toml's automation names, as docs/alerts.md says
        with get_client(sync_client=True) as client:
            sync(client, get_registry())
            automations_sync.sync(client, get_registry())
        settings.demo_db_path.parent.mkdir(parents=True, exist_ok=True)
        if settings.demo_scale == seeded_shop.scale and not settings.demo_db_path.exists():
            os.link(seeded_shop.path, settings.demo_db_path)  # same content: the seed is deterministic
        ensure_demo_database(settings)
        api = DemoApiProcess(capacity=get_registry()[API].slots, port=API_PORT)
        api.start()
        api.wait_healthy(timeout=30)
        yield Stack(API_URL, server, settings.data_dir, api.url)
    finally:
        if api is not None:
            api.stop()
        server.stop()
        shutil.rmtree(SESSION_DIR, ignore_errors=True)


def _notification_block(url: str) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from common.resources import get_registry

    for spec in get_registry().automations.values():
        block = CustomWebhookNotificationBlock(
            name=spec.block_name,
            url=url,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            headers=None,
            cookies=None,
        )
        block.allow_private_urls = True  # the listener is on 127.0.0.1
        block.save(spec.block_name, overwrite=True)


@pytest.fixture(scope="session")
def demo_api_port() -> int:
    """The port of the session's demo partner API."""
    return API_PORT


@pytest.fixture(scope="session")
def prefect_client(stack: Stack):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client


@pytest.fixture(scope="session")
def rest(stack: Stack):
    """The project's REST reader on the session server (what `slots` and history read)."""
    from common.prefect_rest import PrefectRest

    with PrefectRest(stack.api_url) as reader:
        yield reader


def pytest_unconfigure(config) -> None:
    """Every process of the run made a session folder at import (the workers' stacks remove
    their own; pytest-xdist's controller starts none): none is left behind."""
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


def pytest_terminal_summary(terminalreporter) -> None:
    """The phases a test recorded (``record_property("phases", ...)``): a slow run in CI
    says which step waited, without ``-s``."""
    for outcome in ("passed", "failed"):
        for report in terminalreporter.getreports(outcome):
            for name, value in report.user_properties:
                if name == "phases":
                    terminalreporter.write_line(f"{report.nodeid} ({report.duration:.1f} s): {value}")
