"""The ingest deployment as data; `deployments` gathers it and serves it beside the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEPLOYMENT_NAME = "local"


def deployment() -> "RunnerDeployment":
    from common import served_deployment
    from flow_ingest.flows import ingest

    return served_deployment(ingest, DEPLOYMENT_NAME)
