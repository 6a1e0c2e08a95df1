"""Running one flow directly (``uv run ingest``, ``uv run reports``) against the shared server."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from common.entry import require_limits, user_errors
from common.logs import configure_logging
from common.resources import get_registry
from common.server import check_reachable, use_api
from common.settings import export_to_env, get_settings


def run_flow(label: str, target: str, parameters: dict[str, Any]) -> None:
    """Check server and limits, bring up demo parts if needed, run the flow, print its result."""
    configure_logging()
    with user_errors():
        settings = get_settings()
        export_to_env(settings)
        registry = get_registry()
        api_url = use_api()
        check_reachable(api_url)
        require_limits(registry)
        from common.demo_parts import demo_parts

        with demo_parts(settings, registry) as done:
            for line in done:
                print(line)
            module, _, attr = target.partition(":")
            flow = getattr(importlib.import_module(module), attr)
            state = flow(**parameters, return_state=True)
    if state.is_completed():
        print(json.dumps(state.result(), indent=2, default=str))
        return
    reason = (state.message or "no reason given").strip().splitlines()
    print(f"error: {label} run ended {state.name}: {reason[0] if reason else 'no reason given'}", file=sys.stderr)
    raise SystemExit(1)
