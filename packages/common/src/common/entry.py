"""What every entry point does first: one server, a valid limits file, limits that hold.

Errors a user can fix come out as one line (``error: ...``) and exit status 2, never as a
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from common.api_client import PartnerApiError
from common.catalog import UnknownTableError
from common.db import DatabaseUnavailableError
from common.logs import get_logger
from common.resources import LimitsFileError, Registry
from common.server import ServerUnavailableError

log = get_logger("entry")


class LimitsCheckError(RuntimeError):
    """A factory tag has no active limit on the server (Prefect would run it unlimited)."""


USER_ERRORS = (
    LimitsFileError,
    LimitsCheckError,
    ServerUnavailableError,
    DatabaseUnavailableError,
    PartnerApiError,
    UnknownTableError,
)


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one clear line and exit status 2."""
    try:
        yield
    except USER_ERRORS as exc:
        fail(str(exc))


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
