"""Copies of the repository's ``limits.toml`` with some keys changed, for one test."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.cli import ROOT


def edited_limits(path: Path, resource: str, **values: Any) -> Path:
    """Write ``limits.toml`` to ``path`` with ``values`` set in ``[resources.<resource>]``
    (a key the entry lacks is added under its header); returns ``path``."""
    text = (ROOT / "limits.toml").read_text(encoding="utf-8")
    header = f"[resources.{resource}]"
    assert header in text, f"limits.toml has no {header}"
    head, _, rest = text.partition(header)
    body, nxt, tail = rest.partition("\n[")
    for key, value in values.items():
        body, count = re.subn(rf"(?m)^{re.escape(key)}\s*=.*$", f"{key} = {value}", body, count=1)
        if count == 0:
            body = f"\n{key} = {value}" + body
    path.write_text(head + header + body + nxt + tail, encoding="utf-8")
    return path


def capped_limits(path: Path) -> Path:
    """``limits.toml`` with ingest and reports each capped at 2 of the 3 ``database`` slots:
    while both flows have database work neither can hold all three, so both hold slots at
    once by construction (uncapped, who gets a freed slot is whichever process polls first,
    and two flows may share only for moments). Returns ``path``."""
    return edited_limits(path, "database", flows="{ ingest = 2, reports = 2 }")
