"""The embedded defaults: the demo database and the demo partner API, when no real ones are set.

serve-all and the direct flow runs both call :func:`demo_parts`, so a fresh machine needs
nothing but ``uv run serve-all``. A part that is configured (``ETL_DATABASE_URL``,
``ETL_API_URL``) is never touched; a demo API already answering on its port is reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from common.errors import UserError
from common.logs import get_logger
from common.resources import API, Registry
from common.settings import Settings

log = get_logger("demo")


class DemoApiUnavailableError(UserError):
    """The embedded demo API could not start; the message is one line that says what to fix."""


@dataclass
class DemoParts:
    """What :func:`demo_parts` did (one line each) and the demo API process it started, if any."""

    done: list[str] = field(default_factory=list)
    api: Any = None  # demo_systems.partner_api.process.DemoApiProcess


@contextmanager
def demo_parts(settings: Settings, registry: Registry) -> Iterator[DemoParts]:
    """Seed the demo database if missing and run the demo API if needed; yields what it did."""
    from demo_systems.partner_api.process import DemoApiProcess, answers
    from demo_systems.shop.build import ensure_demo_database

    done: list[str] = []
    if settings.uses_demo_database:
        existed = settings.demo_db_path.exists()
        ensure_demo_database(settings)
        done.append(f"demo database {'found' if existed else 'seeded'} at {settings.demo_db_path}")
    api: DemoApiProcess | None = None
    if settings.uses_demo_api:
        if answers(settings.effective_api_url):
            done.append(f"demo API already running at {settings.effective_api_url}")
        else:
            token = settings.api_token.get_secret_value() if settings.api_token else None
            api = DemoApiProcess(capacity=registry[API].slots, port=settings.demo_api_port, token=token)
            try:
                api.start()
                api.wait_healthy(timeout=30)
            except RuntimeError as exc:  # port taken, child died or hung: one line, no stray child
                api.stop()
                raise DemoApiUnavailableError(str(exc)) from None
            done.append(f"demo API started at {api.url} (capacity {registry[API].slots}, pid {api.pid})")
    try:
        yield DemoParts(done, api)
    finally:
        if api is not None:
            api.stop()
