"""A small read-only client for the few Prefect REST endpoints the limits check, the slot
inspector and the history read; one pager for all of them.

Why not Prefect's own client: importing Prefect takes 2-3 s, more than the whole answer
should (`uv run slots` aims at well under a second). These are Prefect's public REST
endpoints (the ones its client calls), read with httpx, which Prefect itself ships.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx

PAGE = 200
# Run states after which nothing more happens (and no slot should still be held).
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CRASHED", "CANCELLED"})


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


@dataclass(frozen=True)
class TaskRunRec:
    id: UUID
    name: str
    state_type: str | None
    flow_run_id: UUID | None
    start_time: datetime | None
    end_time: datetime | None
    expected_start_time: datetime | None
    created: datetime | None
    upstream: frozenset[UUID] = field(default_factory=frozenset)
    state_message: str | None = None
    state_name: str | None = None

    @property
    def settled(self) -> bool:
        """Over, or never to run (Pending as NotReady: a task it needs did not complete)."""
        return self.state_type in FINAL_STATES or self.state_name == "NotReady"

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TaskRunRec:
        upstream = frozenset(
            UUID(item["id"])
            for inputs in (d.get("task_inputs") or {}).values()
            for item in inputs
            if item.get("input_type") == "task_run"
        )
        return cls(
            UUID(d["id"]),
            d["name"],
            d.get("state_type"),
            _uuid(d.get("flow_run_id")),
            _dt(d.get("start_time")),
            _dt(d.get("end_time")),
            _dt(d.get("expected_start_time")),
            _dt(d.get("created")),
            upstream,
            (d.get("state") or {}).get("message"),
            (d.get("state") or {}).get("name"),
        )


@dataclass(frozen=True)
class FlowRunRec:
    id: UUID
    name: str
    flow_id: UUID
    deployment_id: UUID | None
    state_type: str | None
    end_time: datetime | None = None
    state_timestamp: datetime | None = None

    @property
    def ended_at(self) -> datetime | None:
        """When the run ended, or (a crashed run has no end time) when it was marked over."""
        return self.end_time or self.state_timestamp

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FlowRunRec:
        return cls(
            UUID(d["id"]),
            d["name"],
            UUID(d["flow_id"]),
            _uuid(d.get("deployment_id")),
            d.get("state_type"),
            _dt(d.get("end_time")),
            _dt((d.get("state") or {}).get("timestamp")),
        )


@dataclass(frozen=True)
class LimitRec:
    """A global concurrency limit (a tag limit is named ``tag:<tag>``)."""

    name: str
    limit: int
    active: bool
    active_slots: int
    slot_decay_per_second: float = 0.0
    id: str = ""


class PrefectRest:
    """Read-only calls; the caller closes it (context manager)."""

    def __init__(self, api_url: str, timeout: float = 10.0) -> None:
        from common.prefect_api import auth_headers

        self.api_url = api_url
        self.http = httpx.Client(
            base_url=api_url.rstrip("/") + "/",
            timeout=timeout,
            headers=auth_headers(),
            event_hooks={"response": [self._refused]},
        )

    def _refused(self, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            from common.prefect_api import ServerUnavailableError

            raise ServerUnavailableError(
                f"the Prefect server at {self.api_url} refused the request (HTTP {response.status_code}): "
                "set PREFECT_API_AUTH_STRING (its auth string) or PREFECT_API_KEY"
            )

    def __enter__(self) -> PrefectRest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def _paged(self, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every record the filter matches, a page at a time, each once. On a live server a
        record created meanwhile ahead of the offset (task runs sort newest id first, and
        their ids grow with time) pushes the rest back: the next page starts with records
        already read, which would count a held slot twice; they are dropped by id."""
        out: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            page = self._post(path, {**body, "limit": PAGE, "offset": offset})
            offset += len(page)
            for record in page:
                out.setdefault(record["id"], record)
            if len(page) < PAGE:
                return list(out.values())

    def _paged_by_start(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every task run the filter matches, a page at a time from the last expected start
        read (``expected_start_time >= cursor``, oldest first) instead of by offset: on a
        100,000-run history a page then costs the server 0.08 s, not up to 0.19 s as the
        offset grows. Records read twice at a cursor are dropped by id. Where that cannot
        work (a page whose runs all share one expected start, or fewer runs read than the
        server counted: runs without an expected start), it pages by offset. A read of one
        page (most reads) holds every match and costs no count."""
        expected: int | None = None
        out: dict[str, dict[str, Any]] = {}
        cursor: str | None = None
        while True:
            task_runs = dict(body.get("task_runs") or {})
            if cursor is not None:
                task_runs["expected_start_time"] = {"after_": cursor}
            page = self._post(
                "task_runs/filter", {**body, "task_runs": task_runs, "sort": "EXPECTED_START_TIME_ASC", "limit": PAGE}
            )
            for record in page:
                out.setdefault(record["id"], record)
            if len(page) < PAGE:
                break
            first, last = page[0]["expected_start_time"], page[-1]["expected_start_time"]
            if last is None or first == last:  # a cursor cannot get past this page
                return self._paged("task_runs/filter", body)
            if expected is None:  # more than one page: counted once, to know every match was read
                expected = int(self._post("task_runs/count", body))
            cursor = last
        return list(out.values()) if expected is None or len(out) >= expected else self._paged("task_runs/filter", body)

    def global_limits(self) -> list[LimitRec]:
        return [
            LimitRec(
                g["name"], g["limit"], g["active"], g["active_slots"], g.get("slot_decay_per_second") or 0.0, g["id"]
            )
            for g in self._paged("v2/concurrency_limits/filter", {})
        ]

    def tag_holders(self, tag: str) -> list[UUID]:
        """Task runs holding a live lease on ``tag:<tag>`` (empty if there is no such limit)."""
        response = self.http.get(f"concurrency_limits/tag/{tag}")
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [UUID(i) for i in response.json()["active_slots"]]

    def tag_usage(self, tag: str) -> tuple[int, int]:
        """(the counter of the limit on ``tag``, its live lease holders): both 0 means every
        slot is free; a counter above the holders is a leak. LookupError if there is no limit."""
        from common.resources import limit_name_for

        name = limit_name_for(tag)
        used = next((g.active_slots for g in self.global_limits() if g.name == name), None)
        if used is None:
            raise LookupError(f"no limit {name} on the server")
        return used, len(self.tag_holders(tag))

    def _by_ids(self, kind: str, ids: list[UUID]) -> Iterator[dict[str, Any]]:
        """``POST /<kind>/filter`` by id, a page of ids at a time."""
        for start in range(0, len(ids), PAGE):
            chunk = [str(i) for i in ids[start : start + PAGE]]
            yield from self._post(f"{kind}/filter", {kind: {"id": {"any_": chunk}}, "limit": PAGE})

    def task_runs_by_id(self, ids: list[UUID]) -> dict[UUID, TaskRunRec]:
        return {UUID(d["id"]): TaskRunRec.from_json(d) for d in self._by_ids("task_runs", ids)}

    def pending_with_tag(self, tag: str) -> list[TaskRunRec]:
        """Pending task runs carrying ``tag`` inside Running flow runs: the candidates for waiters."""
        body = {
            "flow_runs": {"state": {"type": {"any_": ["RUNNING"]}}},
            "task_runs": {"tags": {"all_": [tag]}, "state": {"type": {"any_": ["PENDING"]}}},
        }
        return [TaskRunRec.from_json(d) for d in self._paged("task_runs/filter", body)]

    def running_with_tag(self, tag: str) -> list[TaskRunRec]:
        """Task runs in the Running state that carry ``tag``."""
        body = {"task_runs": {"tags": {"all_": [tag]}, "state": {"type": {"any_": ["RUNNING"]}}}}
        return [TaskRunRec.from_json(d) for d in self._paged("task_runs/filter", body)]

    @staticmethod
    def _started_filter(
        tag: str, since: datetime | None, until: datetime | None = None, flow_run_ids: list[UUID] | None = None
    ) -> dict[str, Any]:
        """Task runs carrying ``tag`` that started at or after ``since`` and at or before ``until``."""
        start: dict[str, Any] = {"is_null_": False}
        if since is not None:
            start["after_"] = since.isoformat()
        if until is not None:
            start["before_"] = until.isoformat()
        body: dict[str, Any] = {"task_runs": {"tags": {"all_": [tag]}, "start_time": start}}
        if flow_run_ids:
            body["flow_runs"] = {"id": {"any_": [str(i) for i in flow_run_ids]}}
        return body

    def started_with_tag(
        self, tag: str, since: datetime | None = None, flow_run_ids: list[UUID] | None = None
    ) -> list[TaskRunRec]:
        """Task runs carrying ``tag`` that have started (since ``since``; in ``flow_run_ids``)."""
        body = self._started_filter(tag, since, flow_run_ids=flow_run_ids)
        return [TaskRunRec.from_json(d) for d in self._paged_by_start(body)]

    def count_started(self, tag: str, since: datetime, until: datetime) -> int:
        """How many task runs carrying ``tag`` started in [since, until] (the server counts)."""
        return int(self._post("task_runs/count", self._started_filter(tag, since, until)))

    def task_runs_of(self, flow_run_ids: list[UUID]) -> list[TaskRunRec]:
        """Every task run of the flow runs."""
        body = {"flow_runs": {"id": {"any_": [str(i) for i in flow_run_ids]}}}
        return [TaskRunRec.from_json(d) for d in self._paged("task_runs/filter", body)]

    def flow_runs_by_id(self, ids: list[UUID]) -> dict[UUID, FlowRunRec]:
        return {UUID(d["id"]): FlowRunRec.from_json(d) for d in self._by_ids("flow_runs", ids)}

    def names(self, kind: str, ids: list[UUID]) -> dict[UUID, str]:
        """Names of flows (``kind='flows'``) or deployments (``kind='deployments'``)."""
        return {UUID(d["id"]): d["name"] for d in self._by_ids(kind, ids)}
