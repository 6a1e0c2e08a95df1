"""``uv run limits``: the limits file against the server (diff, sync, check).

Change a limit without changing code: edit ``limits.toml`` and run ``uv run limits sync``.
Waiting tasks ask the server again every fraction of a second, so the new value applies to
them at once, with no restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from common.errors import user_errors
from common.limits_check import LimitsCheckError
from common.resources import Registry
from slot_tools.cli.session import session

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


@contextmanager
def _session() -> Iterator[tuple[SyncPrefectClient, Registry]]:
    """Valid limits file first (a bad file changes nothing), then the server."""
    with session() as (registry, _):
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            yield client, registry


@app.command()
def diff(as_json: bool = typer.Option(False, "--json")) -> None:
    """What differs between the limits file and the server; exit 1 if anything does."""
    from slot_tools.limits_sync import plan

    with _session() as (client, registry):
        changes = plan(client, registry)
    if as_json:
        print(json.dumps([c.as_dict() for c in changes], indent=2))
    else:
        for change in changes:
            print(("  " if change.action == "ok" else "~ ") + change.describe())
    if any(c.action != "ok" for c in changes):
        raise SystemExit(1)


@app.command()
def sync(
    prune: bool = typer.Option(
        False, "--prune", help="Also delete limits this project created that the file no longer declares."
    ),
) -> None:
    """Make the server match the limits file (idempotent)."""
    from slot_tools.limits_sync import sync as do_sync

    with _session() as (client, registry):
        changes = do_sync(client, registry, prune=prune)
    changed = [c for c in changes if c.changes_server]
    for change in changes:
        if change.changes_server or change.action == "extra":
            print(("done: " if change.changes_server else "note: ") + change.describe())
    print(f"{len(changed)} change(s) made" if changed else "server already matches the limits file; nothing changed")


@app.command()
def check() -> None:
    """Exit 1, naming the tag, if a tag the task factories use has no active limit."""
    from common.limits_check import check as do_check
    from common.prefect_rest import PrefectRest

    with session() as (registry, api_url), PrefectRest(api_url) as rest:
        errors, warnings = do_check(rest, registry)
    for warning in warnings:
        print(f"warning: {warning}")
    if errors:
        with user_errors():
            raise LimitsCheckError("; ".join(errors))
    print(f"ok: every factory tag has an active limit ({', '.join(sorted(registry.tag_limits()))})")
