"""Limits as code against the real server: sync is idempotent, a bad file changes nothing,
and a factory tag with no limit makes every entry point refuse to start (fail closed)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest

from common.resources import get_registry
from support import ROOT, Stack, run_cli

pytestmark = pytest.mark.integration


def test_sync_twice_second_run_changes_nothing(stack: Stack) -> None:
    first = run_cli("limits", "sync")
    assert first.returncode == 0, first.stderr
    second = run_cli("limits", "sync")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    diff = run_cli("limits", "diff")
    assert diff.returncode == 0, diff.stdout


def test_sync_restores_a_limit_changed_behind_its_back(stack: Stack, prefect_client) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    prefect_client.update_global_concurrency_limit("tag:database", GlobalConcurrencyLimitUpdate(limit=7))
    diff = run_cli("limits", "diff")
    assert diff.returncode == 1 and "7 slots on the server, the file says 3" in diff.stdout
    check = run_cli("limits", "check")
    assert check.returncode == 0 and "warning:" in check.stdout  # drift still bounds the tag
    slots = run_cli("slots", "--check")
    assert slots.returncode == 1 and "server has 7 slots, limits file says 3" in slots.stdout, slots.stdout
    sync = run_cli("limits", "sync")
    assert "1 change(s) made" in sync.stdout
    assert prefect_client.read_global_concurrency_limit_by_name("tag:database").limit == 3


def test_malformed_limits_file_is_refused_and_changes_nothing(stack: Stack, prefect_client, tmp_path: Path) -> None:
    bad = tmp_path / "limits.toml"
    bad.write_text((ROOT / "limits.toml").read_text().replace("slots = 3", "slots = 0"))
    before = {g.name: (g.limit, g.active) for g in prefect_client.read_global_concurrency_limits()}
    result = run_cli("limits", "sync", env=stack.env(ETL_LIMITS_FILE=str(bad)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {bad}: [resources.database] slots must be at least 1, got 0"]
    after = {g.name: (g.limit, g.active) for g in prefect_client.read_global_concurrency_limits()}
    assert after == before


@pytest.mark.parametrize("fault", ["missing", "inactive"])
def test_a_tag_without_an_active_limit_makes_every_entry_point_refuse_naming_it(
    stack: Stack, prefect_client, fault: str
) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    if fault == "missing":
        prefect_client.delete_global_concurrency_limit_by_name("tag:api")
        says = "tag 'api' has no limit on the server, so Prefect would run it unlimited"
    else:
        prefect_client.update_global_concurrency_limit("tag:api", GlobalConcurrencyLimitUpdate(active=False))
        says = "limit tag:api is inactive, so Prefect would run tag 'api' unlimited"
    try:
        check = run_cli("limits", "check")
        assert check.returncode == 2 and says in check.stderr, check.stdout + check.stderr
        for command in ("ingest", "reports"):
            run = run_cli(command, timeout=120)
            assert run.returncode == 2, run.stdout + run.stderr
            assert says in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
        for serve_command in ("serve-all", "serve-ingest"):
            serve = run_cli(serve_command, "--no-sync", timeout=120)
            assert serve.returncode == 2 and says in serve.stderr, serve.stdout + serve.stderr
            assert "being served" not in serve.stdout
        inspect = run_cli("slots", "--check")
        assert inspect.returncode == 1 and "tag:api" in inspect.stdout, inspect.stdout
    finally:
        assert run_cli("limits", "sync").returncode == 0
    restored = prefect_client.read_global_concurrency_limit_by_name("tag:api")
    assert restored.limit == get_registry()["api"].slots and restored.active


def test_prune_deletes_only_limits_an_earlier_sync_created(stack: Stack, prefect_client, tmp_path: Path) -> None:
    """A limit someone else made survives ``--prune``; one this project made and the file no
    longer declares goes, and the managed names on the server follow."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.variables import Variable

    prefect_client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="tag:someone-else", limit=1))
    extra = tmp_path / "limits.toml"
    extra.write_text((ROOT / "limits.toml").read_text() + "\n[resources.scratch]\nslots = 2\n")
    try:
        assert run_cli("limits", "sync", env=stack.env(ETL_LIMITS_FILE=str(extra))).returncode == 0
        assert "scratch" in cast(list[str], Variable.get("etl_managed_limits"))
        pruned = run_cli("limits", "sync", "--prune")
        assert pruned.returncode == 0, pruned.stdout + pruned.stderr
        assert "done: tag:scratch: managed by this project but no longer in the file; delete" in pruned.stdout
        assert "note: tag:someone-else: on the server (1 slots) but not in the file; left alone" in pruned.stdout
        names = {g.name for g in prefect_client.read_global_concurrency_limits()}
        assert "tag:scratch" not in names and "tag:someone-else" in names
        assert "scratch" not in cast(list[str], Variable.get("etl_managed_limits"))
    finally:
        prefect_client.delete_global_concurrency_limit_by_name("tag:someone-else")


def test_unreachable_server_fails_within_seconds(stack: Stack) -> None:
    import time

    started = time.monotonic()
    result = run_cli("slots", env=stack.env(PREFECT_API_URL="http://127.0.0.1:9/api"), timeout=60)
    assert result.returncode == 2
    assert "no Prefect server at http://127.0.0.1:9/api" in result.stderr
    assert time.monotonic() - started < 30
