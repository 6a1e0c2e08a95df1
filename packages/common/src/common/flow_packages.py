"""The flows this environment can run: each flow package declares itself in its own
``pyproject.toml``, in the entry-point group ``shared_limits.flows``::

    [project.entry-points."shared_limits.flows"]
    audit = "flow_audit.flows:audit"

The name is the flow's name (its ``@flow(name=...)``, its cap in ``limits.toml``, its
deployments); the value is the flow object. Reading the declarations imports nothing: the
application imports a flow only to serve or run it.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

GROUP = "shared_limits.flows"


def declared_flows() -> dict[str, EntryPoint]:
    """Every declared flow by name, in name order."""
    return {ep.name: ep for ep in sorted(entry_points(group=GROUP), key=lambda ep: ep.name)}
