"""Security basics, checked on the real processes: the demo API listens on loopback only, and
the partner token never shows, not in a run's output, not in the server's logs of the run,
not in `slots`, not on a process command line; a wrong token is one clear line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import (
    CliRun,
    Stack,
    command_lines,
    flow_run_id,
    free_port,
    linked_data_dir,
    listening,
    run_cli,
    server_text,
)

pytestmark = pytest.mark.integration

TOKEN = "tok-SECRET-123"


def test_demo_api_listens_on_loopback_only(stack: Stack, demo_api_port: int) -> None:
    assert listening(demo_api_port) == [f"0100007F:{demo_api_port:04X}"], listening(demo_api_port)


@pytest.fixture(scope="module")
def token_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A demo API of its own that requires the token (separate port and storage)."""
    from common.resources import get_registry
    from demo_systems.partner_api import DemoApiProcess

    api = DemoApiProcess(
        capacity=get_registry()["api"].slots,
        port=free_port(),
        token=TOKEN,
        storage_dir=tmp_path_factory.mktemp("token-partner"),
    )
    api.start()
    try:
        api.wait_healthy(timeout=30)
        yield api
    finally:
        api.stop()


def test_token_never_shows_and_a_wrong_token_is_one_line(
    stack: Stack, prefect_client, token_api, tmp_path: Path
) -> None:
    runs = {}
    for name, token in (("right", TOKEN), ("wrong", "tok-WRONG-456")):
        data = linked_data_dir(stack, tmp_path / name)
        env = stack.env(
            ETL_DATA_DIR=str(data), ETL_DEMO_API_PORT=str(token_api.port), ETL_API_TOKEN=token, ETL_LOG_LEVEL="DEBUG"
        )
        runs[name] = CliRun.start(tmp_path / name / "out", "ingest", "--table", "orders", "--table", "regions", env=env)

    # `slots` while the runs hold slots (or as soon as they do), then plain and as JSON.
    seen: list[str] = []
    held = False
    deadline = time.monotonic() + 120
    while not held and runs["right"].proc.poll() is None and time.monotonic() < deadline:
        snapshot = run_cli("slots", "--json")
        seen.append(snapshot.stdout + snapshot.stderr)
        held = any(v["holders"] for v in json.loads(snapshot.stdout)["limits"])
    assert held, "`slots` never showed a holder while the token-bearing run ran: nothing was checked"
    slots = run_cli("slots")
    seen.append(slots.stdout + slots.stderr)
    assert all(TOKEN.encode() not in c for c in command_lines()), "the token is on a process command line"

    right, wrong = runs["right"].finish(300), runs["wrong"].finish(300)
    print(
        f"\nright token: exit {right.code} after {right.seconds:.1f} s; "
        f"wrong token: exit {wrong.code}: {wrong.error_lines}"
    )
    assert right.code == 0, right.describe()  # the token was sent and accepted
    assert wrong.code == 1 and len(wrong.error_lines) == 1, wrong.describe()
    assert "HTTP 401" in wrong.error_lines[0] and "set ETL_API_TOKEN to a valid token" in wrong.error_lines[0]

    for run in (right, wrong):
        assert TOKEN not in run.stdout + run.stderr and "tok-WRONG-456" not in run.stdout + run.stderr
        server_side = server_text(prefect_client, flow_run_id(run.stderr))
        assert server_side and TOKEN not in server_side and "tok-WRONG-456" not in server_side
    assert seen and not any(TOKEN in text for text in seen), "the token showed in `slots`"
