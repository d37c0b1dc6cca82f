"""Prefect deployments of scheduled flows, and the work pool they run from.

A flow started by a schedule trigger gets one deployment (named after the flow, in the
``socialflow`` work pool) whose schedule is the trigger's cron or interval; its parameters
carry the frozen graph, so each scheduled run executes the version that was active when it was
published. Socialflow's workers pick these runs up and execute them in-process; a standard
Prefect process worker on the same pool can run them in a process of their own instead.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate, WorkPoolCreate
from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from socialflow.orchestration._runner import flow_for

__all__ = [
    "ENTRYPOINT",
    "WORK_POOL",
    "delete_deployment",
    "ensure_work_pool",
    "set_deployment_paused",
    "upsert_schedule_deployment",
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


async def upsert_schedule_deployment(
    *,
    flow_id: uuid.UUID,
    flow_name: str,
    workspace_id: uuid.UUID,
    version_id: uuid.UUID,
    version_number: int,
    graph_json: str,
    schedule: dict[str, Any],
    existing: uuid.UUID | None,
) -> uuid.UUID:
    """Create or update the flow's deployment so that its schedule runs this version.

    Returns:
        The deployment id (the same one on every call for the same flow).
    """
    await ensure_work_pool()
    prefect_flow = flow_for(flow_name)
    tags = [
        "socialflow",
        f"workspace:{workspace_id}",
        f"flow:{flow_id}",
        f"version:{version_number}",
        "trigger:trigger.schedule",
    ]
    meta = {
        "flow_name": flow_name,
        "workspace_id": str(workspace_id),
        "flow_id": str(flow_id),
        "flow_version_id": str(version_id),
        "version": version_number,
    }
    async with get_client() as client:
        prefect_flow_id = await client.create_flow_from_name(prefect_flow.name)
        if existing is not None:
            # schedules are replaced, not merged: drop the old ones first
            try:
                for old in (await client.read_deployment(existing)).schedules or []:
                    await client.delete_deployment_schedule(existing, old.id)
            except ObjectNotFound:
                pass
        deployment_id = await client.create_deployment(
            flow_id=prefect_flow_id,
            name=f"{flow_name} [{str(flow_id)[:8]}]",
            version=str(version_number),
            parameters={"graph": graph_json, "trigger": {}, "meta": meta},
            tags=tags,
            work_pool_name=WORK_POOL,
            entrypoint=ENTRYPOINT,
            schedules=[DeploymentScheduleCreate(schedule=_schedule(schedule), active=True)],
            paused=False,
            enforce_parameter_schema=False,
            description=f"Socialflow flow {flow_id}, version {version_number}",
        )
    return deployment_id


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
