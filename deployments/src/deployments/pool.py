"""``uv run deploy-flows --pool NAME``: every declared flow as a deployment on a work pool.

The production path beside ``serve``: workers on any number of machines run the flows, each
flow run bound by the same server-side limits. The deployments come from the flows' own
declarations (:mod:`deployments.registry`), so a new flow package needs no deployment file:
each ``<flow>/pool`` deployment has a module path as its entrypoint (``flow_ingest.flows.ingest``)
and nothing to pull at run time, so a worker imports the installed workspace (``uv sync`` on
every runner machine) whatever its working directory.

The pipeline that deploys owns the limits: ``uv run limits sync`` first, then this. Runners
never change limits: ``uv run limits check && uv run prefect worker start --pool NAME``.
"""

from __future__ import annotations

import typer

from common.errors import user_errors
from common.logs import configure_logging
from common.prefect_api import connect
from deployments.registry import POOL, check_flows, flow_names, load_flow, to_deployment

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def deploy_flows(
    pool: str = typer.Option(
        ..., "--pool", help="The work pool (create it once: `uv run prefect work-pool create NAME --type process`)."
    ),
    flow: list[str] = typer.Option([], "--flow", help="Only these declared flows (repeatable); default every one."),
) -> None:
    """Create or update the `<flow>/pool` deployment of every declared flow on the work pool."""
    configure_logging()
    with user_errors():
        names = check_flows(flow) if flow else flow_names()
        connect()  # before Prefect is imported with the flows: the one server, or one clear line
        for name in names:
            deployment_id = to_deployment(load_flow(name), POOL, work_pool_name=pool).apply()
            print(f"deployed {name}/{POOL} on work pool {pool!r} (id {deployment_id})")


def main() -> None:
    """Console script ``deploy-flows``."""
    app()
