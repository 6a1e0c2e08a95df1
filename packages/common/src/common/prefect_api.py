"""One Prefect server for every process: find it, check it, point processes at it.

Shared limits only work when every process talks to the same server (without
``PREFECT_API_URL`` each process would start its own temporary server and each would have
its own limits). Entry points call :func:`connect` (or :func:`use_api`) before they import
Prefect, so they and every child process (served flow runs) reach the one server.
"""

from __future__ import annotations

import base64
import os

import httpx

from common.errors import UserError
from common.logs import prefect_logging_env

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


class ServerUnavailableError(UserError):
    """No usable Prefect server; the message is one line that says what to fix."""


def api_url_for(host: str, port: int) -> str:
    return f"http://{host}:{port}/api"


# The server serve-all starts by default; ``prefect.toml`` in the repository names the same
# one, so Prefect's own CLI and UI reach it from any terminal in the folder.
PROJECT_API_URL = api_url_for(DEFAULT_HOST, DEFAULT_PORT)


def default_api_url() -> str:
    """``PREFECT_API_URL`` if set, else the local server serve-all starts."""
    return os.environ.get("PREFECT_API_URL") or PROJECT_API_URL


def no_telemetry_env() -> dict[str, str]:
    """Opt every process we start out of Prefect's client telemetry (it reads ``DO_NOT_TRACK``
    when Prefect is imported) and the server's analytics: the box has no internet."""
    return {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def client_env(api_url: str) -> dict[str, str]:
    """Settings for every client process: the one server, our logs in the UI, fast polling."""
    return {
        "PREFECT_API_URL": api_url,
        **no_telemetry_env(),
        # A served deployment picks up a triggered run within about 2 s.
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        **prefect_logging_env(),
    }


AUTH_STRING_SETTING = "PREFECT_API_AUTH_STRING"  # a self-hosted server's "user:password"
API_KEY_SETTING = "PREFECT_API_KEY"  # Prefect Cloud


def auth_headers() -> dict[str, str]:
    """The credentials every request to the Prefect API carries, exactly as Prefect's own
    client sends them: an auth string as HTTP basic auth (it wins), else an API key as a
    bearer token. Read from the environment, never from a command line."""
    auth_string = os.environ.get(AUTH_STRING_SETTING)
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    api_key = os.environ.get(API_KEY_SETTING)
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def use_api(api_url: str | None = None) -> str:
    """Point this process and its children at one server; call before importing Prefect.

    If Prefect is already imported (tests, notebooks), its settings were read at import,
    so the caller should also wrap its work in :func:`prefect_settings`.
    """
    url = api_url or default_api_url()
    os.environ.update(client_env(url))
    return url


def prefect_settings(api_url: str):  # type: ignore[no-untyped-def]
    """A context manager applying :func:`client_env` to an already-imported Prefect."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: api_url})


def probe(api_url: str, timeout: float = 2.0) -> str:
    """'prefect' if a Prefect API answers at ``api_url``, 'free' if nothing listens, else 'other'."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.ConnectError:
        return "free"
    except httpx.HTTPError:
        return "other"
    if response.status_code == 200 and response.text.strip() == "true":
        return "prefect"
    return "other"


def not_ready(api_url: str, timeout: float = 5.0) -> str | None:
    """Why the Prefect API at ``api_url`` is not ready (``/api/ready`` checks its database,
    ``/api/health`` does not), or None when it is ready."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/ready", timeout=timeout)
    except httpx.HTTPError as exc:
        return f"/ready did not answer: {type(exc).__name__}"
    if response.status_code == 200:
        return None
    try:
        detail = response.json().get("message") or response.text
    except ValueError:
        detail = response.text
    return f"/ready answered {response.status_code}: {str(detail).strip()[:120]}"


def check_reachable(api_url: str, timeout: float = 5.0) -> None:
    """Fail within seconds, with one clear line, when the server is not there."""
    state = probe(api_url, timeout=timeout)
    if state == "free":
        raise ServerUnavailableError(
            f"no Prefect server at {api_url}: start one with `uv run serve-all`, "
            "or set PREFECT_API_URL to a running server"
        )
    if state == "other":
        raise ServerUnavailableError(f"{api_url} answers but is not a Prefect API: fix PREFECT_API_URL")


def connect(api_url: str | None = None) -> str:
    """Point this process at the server (``PREFECT_API_URL`` by default) and check that it
    answers; one clear line (:class:`ServerUnavailableError`) when it does not."""
    url = use_api(api_url)
    check_reachable(url)
    return url
