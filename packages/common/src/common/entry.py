"""What every entry point does first: one server, a valid limits file, limits that hold.

Errors a user can fix come out as one line (``error: ...``) and exit status 2, never as a
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from common.logs import get_logger
from common.resources import LimitsFileError, Registry
from common.server import ServerUnavailableError

log = get_logger("entry")


class LimitsCheckError(RuntimeError):
    """A factory tag has no active limit on the server (Prefect would run it unlimited)."""


# Errors a user can fix, by module. Modules not imported yet are not looked up: an error
# cannot come from a module that never loaded, and importing them (SQLAlchemy, pydantic
# settings) would cost the quick commands (`slots`) most of their run time.
_LAZY_USER_ERRORS = {
    "common.api_client": "PartnerApiError",
    "common.catalog": "UnknownTableError",
    "common.db": "DatabaseUnavailableError",
    "common.demo_parts": "DemoApiUnavailableError",
}


def user_error_types() -> tuple[type[BaseException], ...]:
    lazy = tuple(
        getattr(sys.modules[module], name) for module, name in _LAZY_USER_ERRORS.items() if module in sys.modules
    )
    return (LimitsFileError, LimitsCheckError, ServerUnavailableError, *lazy)


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one clear line and exit status 2."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, user_error_types()):
            fail(str(exc))
        raise


@contextmanager
def cli_session() -> Iterator[tuple[Registry, str]]:
    """The start-up every command shares: logging, a valid limits file (before anything
    touches the server), and a reachable server; user errors become one line."""
    from common.logs import configure_logging
    from common.resources import get_registry
    from common.server import check_reachable, use_api

    configure_logging()
    with user_errors():
        registry = get_registry()
        api_url = use_api()
        check_reachable(api_url)
        yield registry, api_url


def require_limits(registry: Registry) -> None:
    """Refuse to run when a tag the factories use has no active limit; warn on drift."""
    from prefect.client.orchestration import get_client

    from common.limits_sync import check

    with get_client(sync_client=True) as client:
        errors, warnings = check(client, registry)
    for warning in warnings:
        log.warning(warning)
    if errors:
        raise LimitsCheckError("; ".join(errors))
