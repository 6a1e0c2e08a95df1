"""The registry of deployments: one entry per flow package (add a flow package here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

FLOW_PACKAGES = ("flow_ingest", "flow_reports")


def deployment_names(packages: tuple[str, ...] = FLOW_PACKAGES) -> list[str]:
    """``<flow>/<deployment>`` names, as ``prefect deployment run`` takes them."""
    import importlib

    names = []
    for package in packages:
        flow = importlib.import_module(package).FLOW
        names.append(f"{flow}/{importlib.import_module(f'{package}.deploy').DEPLOYMENT_NAME}")
    return names


def build_deployments(packages: tuple[str, ...] = FLOW_PACKAGES) -> list["RunnerDeployment"]:
    """Import each flow package's deployment (imports Prefect: call after ``use_api``)."""
    import importlib

    return [importlib.import_module(f"{package}.deploy").deployment() for package in packages]
