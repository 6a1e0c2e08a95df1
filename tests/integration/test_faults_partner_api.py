"""The partner API down, slow, over capacity (429 with Retry-After) or failing (500), for real.

Each fault is served by the real demo API behind a fault-injecting middleware (see
fault_tools.py) and hit by a real `ingest --table orders --table regions` (orders needs the
partner's reference data, regions does not). Retries must honour Retry-After and stop after
a bound ((task retries + 1) x client attempts), the run must fail with ONE line naming the
call that failed and why, regions must still be published and orders keep its last good data.
Every case runs with one task retry (``TASK_RETRIES``, the file says 3): the bound is checked
all the same, in half the time the default's give-up takes.
"""

from __future__ import annotations

import socket
from pathlib import Path

import duckdb
import pytest

from common.api_client import PartnerApi
from common.resources import load_registry
from support import CliRun, Fault, FaultyPartnerApi, Stack, edited_limits, free_port, lake_checksums, linked_data_dir

pytestmark = pytest.mark.integration

INDEX = r"^GET /v1/reference$"
FX_PAGE_2 = r"^GET /v1/reference/fx_rates\?page=2$"
SLOW_TIMEOUT_S = 0.5  # the api timeout for the slow case; the injected handler takes 3 s
TASK_RETRIES = 1  # each case's [resources.api] retries

CASES = {
    # name: (faults, failed call named in the error, reason in the error)
    "down": (
        [],
        "fetch-reference-index",
        "unreachable: GET /v1/reference failed after 4 attempts (connection refused)",
    ),
    "slow": ([Fault(INDEX, "slow", 3)], "fetch-reference-index", f"timed out after {SLOW_TIMEOUT_S}s"),
    "429": ([Fault(INDEX, "429", 1)], "fetch-reference-index", "HTTP 429"),
    "500": ([Fault(FX_PAGE_2, "500")], "fetch-reference-page fx_rates page 2", "HTTP 500"),
}


def _attempt_bound(limits: Path) -> int:
    """Every HTTP attempt one call may make: task attempts x client attempts per task."""
    default_attempts = PartnerApi.__init__.__kwdefaults__["max_attempts"]  # type: ignore[index]
    return (load_registry(limits)["api"].retries + 1) * default_attempts


def _old_orders(stack: Stack, lake: Path) -> None:
    """A last good ``orders`` dataset that a new run would not reproduce (100 rows)."""
    lake.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(stack.data_dir / "demo" / "shop.duckdb"), read_only=True) as con:
        con.execute(f"COPY (SELECT * FROM orders ORDER BY 1 LIMIT 100) TO '{lake / 'orders.parquet'}' (FORMAT parquet)")


@pytest.fixture(scope="module")
def api_faults(stack: Stack, tmp_path_factory: pytest.TempPathFactory):
    """All four faults at once, each with its own partner API, data folder and ingest run."""
    from contextlib import ExitStack

    with ExitStack() as servers:
        runs: dict[str, tuple[CliRun, FaultyPartnerApi, Path, dict[str, tuple[int, int]]]] = {}
        for name, (faults, _, _) in CASES.items():
            root = tmp_path_factory.mktemp(f"api-{name}")
            data = linked_data_dir(stack, root)
            _old_orders(stack, data / "lake")
            api = FaultyPartnerApi(faults)
            env = {"ETL_DATA_DIR": str(data)}
            if name == "down":
                port = free_port()
                with socket.socket() as sock:
                    assert sock.connect_ex(("127.0.0.1", port)) != 0
                env["ETL_API_URL"] = f"http://127.0.0.1:{port}"
            else:
                servers.enter_context(api.serving(root / "partner"))
                env["ETL_API_URL"] = api.url
            # No wait between task attempts (the bound on attempts is what is checked), except for
            # 429, where the task's retry delay also keeps a new attempt after the Retry-After.
            api_entry: dict[str, float] = {"retries": TASK_RETRIES}
            if name != "429":
                api_entry["retry_delay_seconds"] = 0
            if name == "slow":
                api_entry["timeout_seconds"] = SLOW_TIMEOUT_S
            env["ETL_LIMITS_FILE"] = str(edited_limits(root / "limits.toml", "api", **api_entry))
            before = lake_checksums(data / "lake")
            run = CliRun.start(root / "out", "ingest", "--table", "orders", "--table", "regions", env=stack.env(**env))
            runs[name] = (run, api, data, before)
        for run, *_ in runs.values():
            run.finish(300)
        yield runs


@pytest.mark.parametrize("case", list(CASES))
def test_partner_fault_fails_the_run_naming_the_call_and_keeps_the_lake(api_faults, stack: Stack, case: str) -> None:
    run, api, data, before = api_faults[case]
    _, call, reason = CASES[case]
    faulted = [h for h in api.hits if h.faulted]
    print(f"\n{case}: exit {run.code} after {run.seconds:.1f} s, {len(faulted)} faulted requests: {run.error_lines}")
    assert run.code == 1, run.describe()
    assert len(run.error_lines) == 1, run.describe()
    line = run.error_lines[0]
    assert f"failed calls: {call}: PartnerApiError: " in line and reason in line, line
    assert "orders" in line.split("last good data kept (")[1].split(")")[0], line
    assert run.seconds < 150, f"{case}: the run took {run.seconds:.0f} s to give up"

    after = lake_checksums(data / "lake")
    assert after["orders"] == before["orders"], "orders lost its last good data"
    with duckdb.connect(str(stack.data_dir / "demo" / "shop.duckdb"), read_only=True) as con:
        regions = con.execute("SELECT count(*) FROM regions").fetchone()[0]  # type: ignore[index]
    assert after["regions"][0] == regions, "a partner fault kept regions (no partner data) from the lake"
    assert not any((data / "lake" / ".staging").glob("*")), "staging left behind"

    if case != "down":
        bound = _attempt_bound(data.parent / "limits.toml")
        assert len(faulted) == bound, f"{case}: {len(faulted)} attempts, bound {bound}"
    if case == "slow":
        assert f"raise timeout_seconds of [resources.api] in {data.parent / 'limits.toml'}" in line, line
    if case == "429":
        gaps = [b.at - a.at for a, b in zip(faulted, faulted[1:], strict=False)]
        print(f"429: shortest gap between attempts {min(gaps):.2f} s (Retry-After: 1)")
        assert min(gaps) >= 1.0, f"a retry came before Retry-After allowed it: {gaps}"
    if case == "500":
        assert "ref_fx_rates" in line and "ref_countries" not in line, line
        assert api.matching(r"^GET /v1/reference/countries") and after["ref_countries"][0] > 0
