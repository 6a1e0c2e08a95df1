"""``uv run limits``: the limits file against the server (diff, sync, check).

Change a limit without changing code: edit ``limits.toml`` and run ``uv run limits sync``.
Waiting tasks ask the server again every fraction of a second, so the new value applies to
them at once, with no restart. The automations the file declares are synced the same way.
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

    from common.limits_check import LimitChange
    from slot_tools.automations_sync import AutomationChange

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
    """What differs between the limits file and the server (limits and automations); exit 1 if
    anything does."""
    from slot_tools import automations_sync
    from slot_tools.limits_sync import plan

    with _session() as (client, registry), user_errors():
        changes: list[LimitChange | AutomationChange] = [
            *plan(client, registry),
            *automations_sync.plan(client, registry),
        ]
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
        False,
        "--prune",
        help="Also delete limits and automations this project created that the file no longer declares.",
    ),
) -> None:
    """Make the server match the limits file, its limits and its automations (idempotent)."""
    from slot_tools import automations_sync
    from slot_tools.limits_sync import sync as do_sync

    with _session() as (client, registry), user_errors():
        changes: list[LimitChange | AutomationChange] = [
            *do_sync(client, registry, prune=prune),
            *automations_sync.sync(client, registry, prune=prune),
        ]
    changed = [c for c in changes if c.changes_server]
    for change in changes:
        if change.changes_server or change.action in ("extra", "no-block"):
            print(("done: " if change.changes_server else "note: ") + change.describe())
    waiting = any(c.action == "no-block" for c in changes)
    if changed:
        print(f"{len(changed)} change(s) made")
    else:
        print("nothing changed" if waiting else "server already matches the limits file; nothing changed")


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


@app.command()
def webhook(
    name: str = typer.Argument(..., help='The block\'s name: what `notify = "custom-webhook/NAME"` names.'),
    url: str = typer.Option(..., "--url", help="Where to POST each notification (JSON with subject and body)."),
    allow_private_urls: bool = typer.Option(
        False, "--allow-private-urls", help="Allow a private or loopback address (a listener on this machine)."
    ),
) -> None:
    """Create or update the Prefect custom-webhook notification block an automation names."""
    from pydantic import ValidationError

    from common.errors import UserError

    with session() as (_registry, api_url), user_errors():
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        try:
            block = CustomWebhookNotificationBlock(
                name=name,
                url=url,
                json_data={"subject": "{{subject}}", "body": "{{body}}"},
                headers=None,
                cookies=None,
                allow_private_urls=allow_private_urls,
            )
        except ValidationError as exc:
            raise UserError(f"--url {url!r}: {exc.errors()[0]['msg']}") from None
        block.save(name, overwrite=True)
    print(f"notification block custom-webhook/{name} posts to {url}; now `uv run limits sync`")
