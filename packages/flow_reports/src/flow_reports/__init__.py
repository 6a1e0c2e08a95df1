"""The reports flow package: its resource tasks come from common's factories."""

FLOW = "reports"  # the flow name; also names its per-flow cap in limits.toml
