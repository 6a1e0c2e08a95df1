"""Adding a flow as docs/adding-a-flow.md says: a copy of the repository as a user clones it,
the example package `docs/examples/flow_audit` put under `packages/`, a cap in `limits.toml`,
and nothing else edited. The application finds the new flow from its declaration alone, and
its run shares the session server's `database` limit within its cap."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from uuid import UUID

import pytest

from support import ROOT, Stack, flow_run_id, run_cli

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "docs" / "examples" / "flow_audit"
CAP = "flows = { audit = 1 }"


def _clone(target: Path) -> Path:
    """The repository's tracked files, as a fresh clone holds them (no virtual environment)."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in tracked.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def _uv(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--no-default-groups", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def test_a_third_flow_is_one_package_and_shares_the_database_limit_within_its_cap(stack: Stack, tmp_path: Path) -> None:
    from common.prefect_rest import PrefectRest
    from slot_tools.history import peak_concurrency, read_intervals, wait_until_recorded

    repo = _clone(tmp_path / "repo")
    shutil.copytree(EXAMPLE, repo / "packages" / "flow_audit")
    limits = repo / "limits.toml"
    text = limits.read_text(encoding="utf-8")
    limits.write_text(text.replace("[resources.database]\n", f"[resources.database]\n{CAP}\n", 1), encoding="utf-8")
    env = stack.env(ETL_PROJECT_DIR=str(repo))
    env.pop("VIRTUAL_ENV", None)  # the copy's own environment, as a fresh terminal there gets

    try:
        # The application lists it from its declaration: the same registry serve-all serves.
        unknown = _uv(repo, env, "run-flow", "no-such-flow")
        assert unknown.returncode == 2 and "declared flows: audit, ingest, reports" in unknown.stderr, (
            unknown.stdout + unknown.stderr
        )
        synced = _uv(repo, env, "limits", "sync")
        assert synced.returncode == 0 and "tag:database:audit" in synced.stdout, synced.stdout + synced.stderr

        ran = _uv(repo, env, "run-flow", "audit")
        assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
        assert set(json.loads(ran.stdout[ran.stdout.index("{") :])) == {
            "order_totals",
            "item_counts",
            "returns_within_lines",
            "shipped_after_ordered",
            "verified_reviews",
        }, ran.stdout
        run_id = UUID(flow_run_id(ran.stderr))

        with PrefectRest(stack.api_url) as rest:
            assert wait_until_recorded(rest, [run_id])
            database = read_intervals(rest, ["database"], flow_run_ids=[run_id])
            capped = read_intervals(rest, ["database:audit"], flow_run_ids=[run_id])
        assert len(database) == 5 and {iv.flow for iv in database} == {"audit"}, database
        assert {iv.task_run_id for iv in capped} == {iv.task_run_id for iv in database}, "a check without its cap's tag"
        assert peak_concurrency(database)[0] == 1, "audit held more than its cap of the database"

        history = _uv(repo, env, "slots", "history", "--flow-run", str(run_id))
        assert history.returncode == 0 and "audit" in history.stdout, history.stdout + history.stderr
    finally:
        assert run_cli("limits", "sync", "--prune").returncode == 0  # the session's own limits again
