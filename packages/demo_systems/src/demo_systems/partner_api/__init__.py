"""The demo partner API: a real HTTP service that refuses with 429 above its capacity."""

from demo_systems.partner_api.app import create_app
from demo_systems.partner_api.capacity import ApiStats
from demo_systems.partner_api.process import DemoApiProcess

__all__ = ["ApiStats", "DemoApiProcess", "create_app"]
