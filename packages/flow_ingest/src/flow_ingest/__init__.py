"""The ingest flow package: its resource tasks come from common's factories."""

FLOW = "ingest"  # the flow name; also names its per-flow cap in limits.toml
