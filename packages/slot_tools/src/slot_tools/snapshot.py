"""One reading of every shared limit: who holds each slot and who waits for one.

Built from the server's own records (Prefect's REST API, read with httpx so ``slots``
answers without importing Prefect): the limit's counter (``active_slots``), the task runs
holding live leases on it, and the Pending task runs carrying its tag inside Running flow
runs. What is wrong with a reading is for :mod:`slot_tools.rules` to say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from common.prefect_rest import FINAL_STATES, FlowRunRec, PrefectRest, TaskRunRec
from common.resources import Registry, limit_name_for
from slot_tools.model import LimitView, RunRef, Snapshot


def _seconds_since(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max(0.0, (now - moment).total_seconds()), 2)


class _Resolver:
    """Looks up flow runs, flows and deployments once per snapshot."""

    def __init__(self, rest: PrefectRest) -> None:
        self.rest = rest
        self.flow_runs: dict[UUID, FlowRunRec] = {}
        self.flows: dict[UUID, str] = {}
        self.deployments: dict[UUID, str] = {}

    def load_parents(self, runs: list[TaskRunRec]) -> None:
        wanted = list({r.flow_run_id for r in runs if r.flow_run_id and r.flow_run_id not in self.flow_runs})
        if wanted:
            self.flow_runs.update(self.rest.flow_runs_by_id(wanted))
        flow_ids = list({fr.flow_id for fr in self.flow_runs.values() if fr.flow_id not in self.flows})
        if flow_ids:
            self.flows.update(self.rest.names("flows", flow_ids))
        dep_ids = list(
            {
                fr.deployment_id
                for fr in self.flow_runs.values()
                if fr.deployment_id and fr.deployment_id not in self.deployments
            }
        )
        if dep_ids:
            self.deployments.update(self.rest.names("deployments", dep_ids))

    def ref(self, task_run_id: UUID, run: TaskRunRec | None, since: datetime | None, now: datetime) -> RunRef:
        ref = RunRef(task_run_id=str(task_run_id), seconds=_seconds_since(since, now))
        if run is None:
            return ref
        ref.task_run = run.name
        ref.state = run.state_type
        if run.state_type in FINAL_STATES:
            ref.over_for = _seconds_since(run.end_time, now)
        fr = self.flow_runs.get(run.flow_run_id) if run.flow_run_id else None
        if fr is not None:
            ref.flow_run, ref.flow_run_id, ref.flow_run_state = fr.name, str(fr.id), fr.state_type
            ref.flow = self.flows.get(fr.flow_id)
            ref.deployment = self.deployments.get(fr.deployment_id) if fr.deployment_id else None
            if ref.over_for is None and fr.state_type in FINAL_STATES:
                ref.over_for = _seconds_since(fr.ended_at, now)
        return ref


def take_snapshot(registry: Registry, api_url: str) -> Snapshot:
    """One consistent-enough view of every limit the limits file declares (REST reads only)."""
    with PrefectRest(api_url) as rest:
        return _snapshot(rest, registry, api_url)


def _snapshot(rest: PrefectRest, registry: Registry, api_url: str) -> Snapshot:
    now = datetime.now(UTC)
    server = {g.name.removeprefix("tag:"): g for g in rest.global_limits() if g.name.startswith("tag:")}
    resolver = _Resolver(rest)
    views: list[LimitView] = []
    descriptions = {t: r.description for r in registry.resources.values() for t in r.limits()}
    for tag, file_slots in registry.tag_limits().items():
        gcl = server.get(tag)
        view = LimitView(
            tag=tag,
            limit=limit_name_for(tag),
            description=descriptions.get(tag, ""),
            file_slots=file_slots,
            server_slots=gcl.limit if gcl else None,
            active=gcl.active if gcl else None,
            used=gcl.active_slots if gcl else 0,
            limit_id=gcl.id if gcl else None,
        )
        views.append(view)
        running = rest.running_with_tag(tag) if gcl is not None else []
        holder_ids = rest.tag_holders(tag) if gcl is not None else []
        pending = rest.pending_with_tag(tag)
        holder_runs = rest.task_runs_by_id(holder_ids)
        upstream = rest.task_runs_by_id(list({u for r in pending for u in r.upstream}))
        resolver.load_parents([*holder_runs.values(), *pending])
        for hid in holder_ids:
            run = holder_runs.get(hid)
            ref = resolver.ref(hid, run, run.start_time if run else None, now)
            if run is not None and run.start_time is not None and (queued := run.expected_start_time or run.created):
                ref.waited = round(max(0.0, (run.start_time - queued).total_seconds()), 3)
            view.holders.append(ref)
        held = set(holder_ids)
        for run in pending:
            if run.id in held:
                continue  # acquired; its Running state has not reached the server yet
            if any(u in upstream and upstream[u].state_type != "COMPLETED" for u in run.upstream):
                view.blocked_upstream += 1  # waits for an upstream task, not for a slot
                continue
            view.waiters.append(resolver.ref(run.id, run, run.expected_start_time or run.created, now))
        # Running before the holders were read, yet no holder: either it ended meanwhile (its
        # release came after its final state), or it runs on without a lease. Read again to tell.
        suspects = [r.id for r in running if r.id not in held]
        if suspects:
            still = [r for r in rest.task_runs_by_id(suspects).values() if r.state_type == "RUNNING"]
            resolver.load_parents(still)
            refs = [resolver.ref(r.id, r, r.start_time, now) for r in still]
            view.unleased = [r for r in refs if r.flow_run_state not in FINAL_STATES]  # a dead run's record aside
        view.holders.sort(key=lambda r: -(r.seconds or 0))
        view.waiters.sort(key=lambda r: -(r.seconds or 0))
    # The counter again: counter and holders are read one after the other, so a slot taken
    # or freed meanwhile would make them disagree; the reading says so instead of hiding it.
    after = {g.name: g.active_slots for g in rest.global_limits()}
    for view in views:
        view.used_after = after.get(view.limit, 0) if view.server_slots is not None else view.used
    return Snapshot(taken_at=now.isoformat(), api_url=api_url, limits=views)
