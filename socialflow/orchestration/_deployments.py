"""Prefect deployments of published flows, and the work pool they run from.

Every published flow has one deployment (named after the flow, in the ``socialflow`` work
pool). Its default parameters carry the active version's frozen graph, so a run started from
the Prefect UI (with the defaults or edited parameters) executes that version; a schedule
trigger becomes the deployment's schedule (cron or interval, with its timezone). Runs of
events are created from the same deployment by the worker that claimed them only with
``engine.event_runs_in_deployment`` (see ``start_graph_run``): Prefect's server spends about
twice the CPU on a deployment's run, so by default they are tagged runs of the flow.
Socialflow's workers execute all of them in-process; ``socialflow worker --isolate`` runs each
in a process of its own instead.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.utilities.callables import parameter_schema

from socialflow.orchestration._runner import execute_graph, flow_for, prefect_name

__all__ = [
    "ENTRYPOINT",
    "WORK_POOL",
    "delete_deployment",
    "ensure_work_pool",
    "set_deployment_paused",
    "upsert_deployment",
]

WORK_POOL = "socialflow"
ENTRYPOINT = "socialflow.orchestration._runner:execute_graph"


async def ensure_work_pool(name: str = WORK_POOL) -> None:
    """Create the work pool scheduled runs are queued in, once."""
    async with get_client() as client:
        try:
            await client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:
            pass


def _schedule(config: dict[str, Any]) -> CronSchedule | IntervalSchedule:
    timezone = config.get("timezone") or "UTC"
    if config.get("cron"):
        return CronSchedule(cron=config["cron"], timezone=timezone)
    return IntervalSchedule(
        interval=timedelta(seconds=int(config["interval_seconds"])), timezone=timezone
    )


def deployment_name(flow_name: str, flow_id: uuid.UUID) -> str:
    """The deployment's name: the flow's in a form Prefect accepts (``prefect_name``: the
    characters Prefect refuses become look-alikes), made unique by the start of the flow's id."""
    return f"{prefect_name(flow_name)} [{str(flow_id)[:8]}]"


async def upsert_deployment(
    *,
    flow_id: uuid.UUID,
    flow_name: str,
    workspace_id: uuid.UUID,
    version_id: uuid.UUID,
    version_number: int,
    graph_json: str,
    trigger_kind: str,
    schedule: dict[str, Any] | None,
    existing: uuid.UUID | None,
) -> uuid.UUID:
    """Create or update the flow's deployment so that it runs this version.

    Args:
        schedule: The schedule trigger's config (cron or interval, timezone), or ``None`` for
            a flow started by events: its deployment has no schedule.
        existing: The flow's deployment so far. A flow renamed since is a new Prefect flow
            name, hence a new deployment; the old one is deleted.

    Returns:
        The deployment id (the same one on every call for the same flow and name).
    """
    await ensure_work_pool()
    prefect_flow = flow_for(flow_name)
    # no version tag: Prefect adds a deployment's tags to every run created from it, and
    # runs of older versions (re-runs, events queued before a publish) carry their own
    tags = ["socialflow", f"workspace:{workspace_id}", f"flow:{flow_id}", f"trigger:{trigger_kind}"]
    meta = {
        "flow_name": flow_name,
        "workspace_id": str(workspace_id),
        "flow_id": str(flow_id),
        "flow_version_id": str(version_id),
        "version": version_number,
    }
    name = deployment_name(flow_name, flow_id)
    schedules = (
        []
        if schedule is None
        else [DeploymentScheduleCreate(schedule=_schedule(schedule), active=True)]
    )
    async with get_client() as client:
        prefect_flow_id = await client.create_flow_from_name(prefect_flow.name)
        stale: uuid.UUID | None = None
        if existing is not None:
            try:
                previous = await client.read_deployment(existing)
            except ObjectNotFound:
                previous = None
            if previous is not None and previous.flow_id != prefect_flow_id:
                stale = existing  # renamed: the new name gets its own deployment
            elif previous is not None:
                # schedules are replaced, not merged: drop the old ones first
                for old in previous.schedules or []:
                    await client.delete_deployment_schedule(existing, old.id)
        deployment_id = await client.create_deployment(
            flow_id=prefect_flow_id,
            name=name,
            version=str(version_number),
            parameters={"graph": graph_json, "trigger": {}, "meta": meta},
            parameter_openapi_schema=_PARAMETER_SCHEMA,
            tags=tags,
            work_pool_name=WORK_POOL,
            entrypoint=ENTRYPOINT,
            schedules=schedules,
            paused=False,
            enforce_parameter_schema=False,
            description=f"Socialflow flow {flow_id}, version {version_number}",
        )
        if stale is not None and stale != deployment_id:
            try:
                await client.delete_deployment(stale)
            except ObjectNotFound:
                pass
    return deployment_id


#: the parameters form the Prefect UI shows for a custom run: graph, trigger payload, meta
_PARAMETER_SCHEMA = parameter_schema(execute_graph.fn).model_dump_for_openapi()


async def set_deployment_paused(deployment_id: uuid.UUID, *, paused: bool) -> None:
    """Pause or resume a deployment's schedules; a missing deployment is fine."""
    async with get_client() as client:
        try:
            if paused:
                await client.pause_deployment(deployment_id)
            else:
                await client.resume_deployment(deployment_id)
        except ObjectNotFound:
            pass


async def delete_deployment(deployment_id: uuid.UUID) -> None:
    """Delete a deployment; a missing one is fine."""
    async with get_client() as client:
        try:
            await client.delete_deployment(deployment_id)
        except ObjectNotFound:
            pass
