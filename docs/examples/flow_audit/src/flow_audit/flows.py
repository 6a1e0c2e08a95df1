"""The audit flow: five read-only checks of the shop's data, each one query on the shared
database, so audit takes its turn on the `database` limit beside ingest and reports."""

from __future__ import annotations

from importlib.resources import files

from prefect import flow

from common import Connection, flow_tasks, run_scope

FLOW = "audit"  # the flow's name: its deployments, its cap in limits.toml
CHECKS = ("order_totals", "item_counts", "returns_within_lines", "shipped_after_ordered", "verified_reviews")
tasks = flow_tasks(FLOW)


@tasks.database(name="run-check", task_run_name="run-check-{check}")
def run_check(connection: Connection, check: str) -> int:
    """The number of rows that break one rule (one query, on one `database` slot)."""
    sql = (files("flow_audit") / "sql" / f"{check}.sql").read_text(encoding="utf-8")
    return int(connection.exec_driver_sql(sql).scalar_one())


@flow(name=FLOW)
def audit() -> dict[str, int]:
    """Run every check at once (the limit queues them); returns the rows breaking each rule."""
    with run_scope(FLOW) as run:
        calls = {check: run.submit(f"run-check {check}", run_check, check) for check in CHECKS}
        return run.results(calls, noun="checks")  # waits for all; one failure line if any failed
