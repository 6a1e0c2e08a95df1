"""An optional rate for a resource, enforced by Prefect itself, end to end.

``rate_per_second`` in the limits file becomes the server-side rate limit ``rate:<resource>``
(limit ceil(rate), slots decaying at ``rate`` per second); every ``api`` task takes one of
its slots right before its request. The proof comes from the demo API's own clock.

How far the API's figures can go (Prefect's decay is a token bucket): the limit holds
B = ceil(rate) slots and the server frees them at most ``rate`` per second (it frees
floor(rate x seconds since the limit's last write), so never faster). So in any window of
T seconds at most B + rate x T requests take a slot, and N requests take at least
(N - B) / rate seconds from first to last. The API sees each request a few milliseconds
after its slot was taken; JITTER_S allows for that spread between requests.

The flow test paces at 2/s, not 4/s: on this 2-core box ingest without any rate starts at
most 7-8 requests in a second (the demo API's fixings cost CPU, and task start-up takes
time), which is within the 4 + 4 = 8 a 4/s limit allows, so a 4/s test could not fail.
At 2/s the bound is 2 + 2 = 4 per second.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import ROOT, Stack, edited_limits, run_cli

pytestmark = pytest.mark.integration

RATE = 2.0  # requests per second for the flow test (see above)
BURST = math.ceil(RATE)  # the limit: this many may start at once
JITTER_S = 0.25  # spread between taking a slot and the request reaching the API


@pytest.fixture
def restore_limits(stack: Stack, prefect_client) -> Iterator[None]:
    """Afterwards the server is back on the repository's limits, with no ``rate:api`` left
    to slow down or fail the other tests."""
    from prefect.exceptions import ObjectNotFound

    from common.resources import load_registry
    from slot_tools.limits_sync import plan

    yield
    restore = run_cli("limits", "sync", "--prune")
    assert restore.returncode == 0, restore.stdout + restore.stderr
    with pytest.raises(ObjectNotFound):
        prefect_client.read_global_concurrency_limit_by_name("rate:api")
    left = [c.describe() for c in plan(prefect_client, load_registry(ROOT / "limits.toml")) if c.action != "ok"]
    assert left == []


@pytest.mark.usefixtures("restore_limits")
def test_rate_limit_is_synced_checked_and_repaired(stack: Stack, prefect_client, tmp_path: Path) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    env = stack.env(ETL_LIMITS_FILE=str(edited_limits(tmp_path / "limits-4.toml", "api", rate_per_second=4)))
    check = run_cli("limits", "check", env=env)
    assert check.returncode == 2, check.stdout + check.stderr
    assert "rate limit rate:api is missing on the server" in check.stderr

    first = run_cli("limits", "sync", env=env)
    assert first.returncode == 0, first.stderr
    assert "done: rate:api: missing on the server; create with 4 per second with a burst of 4" in first.stdout
    gcl = prefect_client.read_global_concurrency_limit_by_name("rate:api")
    assert (gcl.limit, gcl.slot_decay_per_second, gcl.active) == (4, 4.0, True)
    assert prefect_client.read_global_concurrency_limit_by_name("tag:api").limit == 10  # untouched
    second = run_cli("limits", "sync", env=env)
    assert "nothing changed" in second.stdout, second.stdout

    prefect_client.update_global_concurrency_limit(
        "rate:api", GlobalConcurrencyLimitUpdate(slot_decay_per_second=1.0, active=False)
    )
    drift = run_cli("limits", "diff", env=env)
    assert drift.returncode == 1
    assert "rate:api: 1 per second with a burst of 4 on the server, the file says 4 per second" in drift.stdout
    repaired = run_cli("limits", "sync", env=env)
    assert "1 change(s) made" in repaired.stdout, repaired.stdout
    gcl = prefect_client.read_global_concurrency_limit_by_name("rate:api")
    assert (gcl.limit, gcl.slot_decay_per_second, gcl.active) == (4, 4.0, True)

    # Without the rate the limit is extra: a plain sync keeps it; --prune (restore_limits) deletes it.
    plain = run_cli("limits", "sync")
    assert "note: rate:api: on the server (4 per second with a burst of 4) but not in the file" in plain.stdout


@pytest.mark.usefixtures("restore_limits")
def test_ingest_requests_start_at_most_at_the_rate(stack: Stack, tmp_path: Path) -> None:
    env = stack.env(
        ETL_LIMITS_FILE=str(edited_limits(tmp_path / f"limits-{RATE:g}.toml", "api", rate_per_second=f"{RATE:g}"))
    )
    synced = run_cli("limits", "sync", env=env)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    httpx.post(f"{stack.demo_api_url}/stats/reset", timeout=5).raise_for_status()

    started = time.monotonic()
    run = run_cli("ingest", "--table", "orders", timeout=300, env=env)
    took = time.monotonic() - started
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    stats = httpx.get(f"{stack.demo_api_url}/stats", timeout=5).json()
    requests = stats["accepted"]
    figures = f"{stats} ingest took {took:.1f} s"
    assert requests >= 20, figures  # the index and ~26 reference pages
    assert stats["rejected_429"] == 0, figures
    assert stats["max_requests_per_second"] <= RATE + BURST, figures
    least_span = (requests - BURST) / RATE
    assert stats["request_span_seconds"] >= least_span - JITTER_S, figures
    assert took >= least_span, figures
    print(f"\nrate {RATE:g}/s, burst {BURST}: {figures}; least span {least_span:.2f} s")
