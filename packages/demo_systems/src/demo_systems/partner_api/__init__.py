"""The demo partner API: a real HTTP service that refuses with 429 above its capacity."""

from demo_systems.partner_api.app import create_app
from demo_systems.partner_api.capacity import ApiStats
from demo_systems.partner_api.process import DemoApiProcess
from local_server.asgi import run_in_thread

__all__ = ["ApiStats", "DemoApiProcess", "create_app", "run_in_thread"]
