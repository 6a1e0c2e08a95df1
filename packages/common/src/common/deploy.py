"""How every flow package turns its flow into a served deployment (one place, one way)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


def served_deployment(flow: Any, name: str) -> "RunnerDeployment":
    """A module-path deployment: served runs import the installed package, whatever the cwd."""
    from prefect.deployments.runner import EntrypointType

    return flow.to_deployment(
        name=name,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=(flow.description or flow.fn.__doc__ or "").strip().splitlines()[0],
    )
