"""Errors a user can fix, and how every command reports them: one line, exit status 2.

Every such error derives from :class:`UserError`, wherever it is raised (a malformed limits
file, an unreachable server, an unknown table, a database that cannot be reached...), so a
command catches them all in one place without importing the modules that raise them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn


class UserError(Exception):
    """Something the user can fix; the message is one line that says what to fix."""


def fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one clear line and exit status 2."""
    try:
        yield
    except UserError as exc:
        fail(str(exc))
