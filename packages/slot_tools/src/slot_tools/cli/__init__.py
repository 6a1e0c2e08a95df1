"""One Typer root for the operator commands: ``slots`` (inspect, history, repair) and
``limits`` (diff, sync, check). ``uv run slots ...`` and ``uv run limits ...`` run the two
groups directly; ``uv run slot-tools slots ...`` reaches the same commands through the root."""

from __future__ import annotations

import typer

from slot_tools.cli.limits import app as limits_app
from slot_tools.cli.slots import app as slots_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(slots_app, name="slots")
app.add_typer(limits_app, name="limits")


def main() -> None:
    app()


def slots_main() -> None:
    slots_app()


def limits_main() -> None:
    limits_app()
