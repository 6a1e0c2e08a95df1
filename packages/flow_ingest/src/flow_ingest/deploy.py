"""The ingest deployment as data; `deployments` gathers it and serves it beside the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

from flow_ingest import FLOW

DEPLOYMENT_NAME = "local"


def deployment() -> "RunnerDeployment":
    """Module-path entrypoint: served runs import the installed package, whatever the cwd."""
    from prefect.deployments.runner import EntrypointType

    from flow_ingest.flows import ingest

    return ingest.to_deployment(
        name=DEPLOYMENT_NAME,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=(ingest.__doc__ or "").strip().splitlines()[0],
    )
