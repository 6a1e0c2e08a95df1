"""``python -m demo_systems.partner_api``: the demo partner API (same as ``uv run demo-api``)."""

from demo_systems.partner_api.process import main

main()
