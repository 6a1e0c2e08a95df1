"""The reports deployment as data; `deployments` gathers it and serves it beside the others."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEPLOYMENT_NAME = "local"


def deployment() -> "RunnerDeployment":
    from common import served_deployment
    from flow_reports.flows import reports

    return served_deployment(reports, DEPLOYMENT_NAME)
