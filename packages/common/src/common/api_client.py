"""The HTTP client every flow uses for the partner API.

The Prefect ``api`` limit caps how many requests are in flight; this client handles what
is left: timeouts, a partner that says "not now" (429/503 with ``Retry-After``), brief
outages (connection errors, 500/502/504, retried with exponential backoff), and a clear
one-line error when it gives up. Other 4xx are the caller's bug: they fail at once.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

import httpx
import structlog
from pydantic import SecretStr

from common.errors import UserError

if TYPE_CHECKING:
    from common.settings import Settings

log = structlog.get_logger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
BACKOFF_STATUSES = frozenset({500, 502, 504})


class PartnerApiError(UserError, RuntimeError):
    """The partner API call failed for good; the message says what to do about it."""

    def __init__(self, message: str, *, method: str, path: str, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status
        self.attempts = attempts


def _json_default(value: Any) -> Any:
    """Encode what database rows commonly hold (dates, decimals) instead of failing."""
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (UUID, Path)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _server_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")
        return text[:200] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
    return text[:300]


def _transport_reason(exc: httpx.TransportError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return f"{type(exc).__name__}: {text}"


def _hint(status: int | None, reason: str, timeout_setting: str = "ETL_API_TIMEOUT_SECONDS") -> str:
    if status is None and "timed out" in reason:
        return f"the API is slow or stuck: check it, or raise {timeout_setting}"
    if status is None:
        return "start it or set ETL_API_URL"
    if status == 429:
        return "the API stayed over capacity: check that the `api` limit on the Prefect server matches it"
    if status in (401, 403):
        return "set ETL_API_TOKEN to a valid token"
    if status >= 500:
        return "the API keeps failing: check its logs, then re-run"
    return "the request was refused: fix it (not retried)"


class PartnerApi:
    """A small, retrying JSON client over one ``httpx.Client`` (thread-safe, reusable).

    ``attempts`` and ``retries`` count this instance's HTTP attempts and retries, and
    ``waits`` holds the pause chosen before each retry, so a task can log how hard the
    partner pushed back.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: SecretStr | str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 4,
        max_retry_wait: float = 30.0,
        backoff_base: float = 0.5,
        timeout_setting: str = "ETL_API_TIMEOUT_SECONDS",
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_retry_wait = max_retry_wait
        self.backoff_base = backoff_base
        self.timeout_setting = timeout_setting  # named in the error when a request times out
        self._token = SecretStr(token) if isinstance(token, str) else token
        headers = {"Accept": "application/json", "User-Agent": "shared-limits-etl/0.1"}
        if self._token is not None and self._token.get_secret_value():
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)
        self._lock = threading.Lock()
        self._interrupted = threading.Event()
        self._checks: list[Callable[[], None]] = []
        self._random = random.Random()
        self.attempts = 0
        self.retries = 0
        self.waits: list[float] = []  # the pause chosen before each retry, in seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> PartnerApi:
        return cls(settings.effective_api_url, token=settings.api_token, timeout=settings.api_timeout_seconds)

    def __repr__(self) -> str:
        token = "set" if self._token is not None else "none"
        return (
            f"PartnerApi(base_url={self.base_url!r}, token={token}, attempts={self.attempts}, retries={self.retries})"
        )

    def __enter__(self) -> PartnerApi:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def before_each_request(self, check: Callable[[], None]) -> None:
        """Run ``check`` before every HTTP attempt (it raises to stop the call)."""
        self._checks.append(check)

    def interrupt(self) -> None:
        """Stop from another thread: no new attempt starts, and the connections close."""
        self._interrupted.set()
        self._client.close()

    # --- requests ---------------------------------------------------------------------

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._request("GET", path, params=params)

    def post_json(self, path: str, body: Any) -> Any:
        content = json.dumps(body, default=_json_default, ensure_ascii=False).encode()
        return self._request("POST", path, content=content, headers={"Content-Type": "application/json"})

    def _backoff(self, attempt: int) -> float:
        base: float = min(self.max_retry_wait, self.backoff_base * 2 ** (attempt - 1))
        return base * self._random.uniform(1.0, 1.2)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        status: int | None = None
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            for check in self._checks:
                check()
            if self._interrupted.is_set():
                raise PartnerApiError(
                    f"partner API {method} {path}: interrupted",
                    method=method,
                    path=path,
                    status=None,
                    attempts=attempt - 1,
                )
            with self._lock:
                self.attempts += 1
            try:
                response = self._client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                status, reason = None, _transport_reason(exc, self.timeout)
                wait = self._backoff(attempt)
            else:
                if response.is_success:
                    return self._decode(method, path, response, attempt)
                status = response.status_code
                reason = f"HTTP {status}: {_server_detail(response)}"
                if status in RETRY_AFTER_STATUSES:
                    retry_after = _retry_after_seconds(response)
                    wait = (
                        self._backoff(attempt)
                        if retry_after is None
                        else min(retry_after, self.max_retry_wait) + self._random.uniform(0.0, 0.1)
                    )
                elif status not in BACKOFF_STATUSES:
                    raise PartnerApiError(
                        f"partner API {method} {path} failed ({reason}): {_hint(status, reason)}",
                        method=method,
                        path=path,
                        status=status,
                        attempts=attempt,
                    )
                else:
                    wait = self._backoff(attempt)
            if attempt == self.max_attempts:
                break
            with self._lock:
                self.retries += 1
                self.waits.append(wait)
            log.warning(
                "partner_api.retry",
                method=method,
                path=path,
                reason=reason,
                attempt=attempt,
                max_attempts=self.max_attempts,
                wait_s=round(wait, 2),
            )
            self._interrupted.wait(wait)

        unreachable = status is None and "timed out" not in reason
        where = f"partner API at {self.base_url} unreachable: " if unreachable else f"partner API at {self.base_url}: "
        raise PartnerApiError(
            f"{where}{method} {path} failed after {self.max_attempts} attempts ({reason}): "
            f"{_hint(status, reason, self.timeout_setting)}",
            method=method,
            path=path,
            status=status,
            attempts=self.max_attempts,
        )

    @staticmethod
    def _decode(method: str, path: str, response: httpx.Response, attempt: int) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise PartnerApiError(
                f"partner API {method} {path} returned HTTP {response.status_code} that is not JSON: "
                "check ETL_API_URL points at the partner API",
                method=method,
                path=path,
                status=response.status_code,
                attempts=attempt,
            ) from None

    # --- the partner's endpoints --------------------------------------------------------

    def fetch_reference_index(self) -> dict[str, Any]:
        """``{"datasets": {name: {"pages": n}}}``: what to fetch, one page per request."""
        return self.get_json("/v1/reference")  # type: ignore[no-any-return]

    def fetch_reference_page(self, dataset: str, page: int) -> dict[str, Any]:
        """One page (1-based): ``{"dataset", "page", "pages", "rows": [...]}``."""
        return self.get_json(f"/v1/reference/{dataset}", params={"page": page})  # type: ignore[no-any-return]

    def publish_report(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Store a finished report (``title, columns, rows, generated_at``) under ``name``;
        idempotent, so a retried publish just replaces it. Returns ``{name, rows, sha256}``."""
        return self.post_json(f"/v1/reports/{name}", payload)  # type: ignore[no-any-return]
