"""Every declared flow and its deployments, gathered in one place.

A flow package declares itself in its own ``pyproject.toml`` (the entry-point group of
:mod:`common.flow_packages`); nothing here names a flow. serve-all serves every declared flow,
``serve-flow NAME`` one, ``run-flow NAME`` runs one directly, and ``deploy-flows`` puts every
one on a work pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from common.errors import UserError
from common.flow_packages import declared_flows

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

SERVED = "local"  # the deployment name of a served flow: `<flow>/local`
POOL = "pool"  # the deployment name of a flow on a work pool: `<flow>/pool`


class UnknownFlowError(UserError):
    """A flow name no installed package declares."""


def flow_names() -> list[str]:
    """The declared flows, in name order."""
    names = list(declared_flows())
    if not names:
        raise UnknownFlowError("no flow package is installed: run `uv sync` in the repository")
    return names


def check_flows(names: list[str]) -> list[str]:
    """``names`` if every one is a declared flow; the error lists the declared ones."""
    known = declared_flows()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UnknownFlowError(f"unknown flow {unknown[0]!r}: declared flows: {', '.join(known) or 'none'}")
    return names


def deployment_names(flows: list[str] | None = None, deployment: str = SERVED) -> list[str]:
    """``<flow>/<deployment>`` names, as ``prefect deployment run`` takes them."""
    return [f"{name}/{deployment}" for name in check_flows(flows or flow_names())]


def load_flow(name: str) -> Any:
    """The flow object a package declares under ``name`` (imports it, and Prefect)."""
    flow = declared_flows()[check_flows([name])[0]].load()
    if getattr(flow, "name", None) != name:
        raise UnknownFlowError(
            f"the flow package declaring {name!r} points at {flow!r}, whose name is "
            f"{getattr(flow, 'name', None)!r}: give its @flow(name=...) the declared name"
        )
    return flow


def to_deployment(flow: Any, name: str, **options: Any) -> RunnerDeployment:
    """A module-path deployment of ``flow``: its runs import the installed package, whatever the
    working directory, so nothing is pulled at run time."""
    from prefect.types.entrypoint import EntrypointType

    return flow.to_deployment(  # type: ignore[no-any-return]
        name=name,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=(flow.description or flow.fn.__doc__ or "").strip().splitlines()[0],
        **options,
    )


def build_deployments(flows: list[str] | None = None) -> list[RunnerDeployment]:
    """The served deployment of each flow (imports Prefect: call after ``use_api``)."""
    return [to_deployment(load_flow(name), SERVED) for name in check_flows(flows or flow_names())]
