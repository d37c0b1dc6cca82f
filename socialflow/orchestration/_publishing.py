"""The seam between publishing in the builder and running on Prefect: activate and deactivate.

The API calls these two functions and nothing else when a flow is published, rolled back,
paused, resumed or deleted; the Prefect side (deployments, schedules) lives behind them.
"""

from __future__ import annotations

import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from prefect.exceptions import PrefectHTTPStatusError
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.errors import TransientError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.nodes import NodeRegistry
from socialflow.orchestration._deployments import (
    delete_deployment,
    set_deployment_paused,
    upsert_deployment,
)
from socialflow.orchestration._graph import GraphSpec, compile_graph
from socialflow.orchestration._inbox_models import FlowTrigger
from socialflow.orchestration._triggers import deactivate_trigger, upsert_trigger

__all__ = ["activate_version", "deactivate_flow"]

_log = get_logger(__name__)
T = TypeVar("T")


async def activate_version(
    *,
    flow_id: uuid.UUID,
    flow_name: str,
    version_id: uuid.UUID,
    version_number: int,
    graph: GraphSpec,
    workspace_id: uuid.UUID,
    registry: NodeRegistry,
    settings: Settings,
    session: AsyncSession,
) -> uuid.UUID:
    """Make a published version the one that runs for its flow.

    Called when a version is published, when an older version is made active again (rollback)
    and when a paused flow resumes. It stores the version's graph snapshot and makes it the
    flow's active trigger for the dispatcher (with the flow's webhook secret, kept across
    versions). The flow's Prefect deployment (named after the flow, tagged with workspace and
    flow) is created or updated to run the version: with the schedule trigger's schedule, or
    without a schedule for flows started by events, whose runs the workers create from it.
    Calling it twice for the same version leaves one trigger and one deployment.

    ``session`` is the caller's transaction: rows written through it commit together with the
    flow's new state, and the caller commits only after this returns, so a failure here leaves
    the flow as it was. (A deployment created just before a failing commit is corrected by the
    next activation, which updates it in place.)

    Args:
        flow_id: The flow.
        flow_name: The flow's name, for the deployment's name.
        version_id: The ``flow_version`` row to run.
        version_number: Its number within the flow (1, 2, …).
        graph: The version's frozen graph.
        workspace_id: The flow's workspace.
        registry: Node kinds to compile the graph against.
        settings: Settings; the webhook secret is sealed with its master key.
        session: The caller's open transaction; this function never commits it.

    Returns:
        The flow's Prefect deployment id.

    Raises:
        ValidationError: The graph does not compile, with every problem.
    """
    compiled = compile_graph(graph, registry)
    graph_json = graph.model_dump_json(exclude_defaults=True)
    previous = await session.get(FlowTrigger, flow_id)
    kind = compiled.trigger.spec.kind
    deployment_id = await _on_prefect(
        "publishing",
        upsert_deployment(
            flow_id=flow_id,
            flow_name=flow_name,
            workspace_id=workspace_id,
            version_id=version_id,
            version_number=version_number,
            graph_json=graph_json,
            trigger_kind=kind,
            schedule=compiled.trigger.config.model_dump() if kind == "trigger.schedule" else None,
            existing=previous.deployment_id if previous is not None else None,
        ),
    )
    await upsert_trigger(
        session,
        settings=settings,
        flow_id=flow_id,
        workspace_id=workspace_id,
        flow_name=flow_name,
        version_id=version_id,
        version_number=version_number,
        graph=compiled,
        graph_json=graph_json,
        deployment_id=deployment_id,
    )
    _log.info(
        "flow version activated",
        workspace_id=str(workspace_id),
        flow_id=str(flow_id),
        version=version_number,
        deployment_id=str(deployment_id),
    )
    return deployment_id


async def deactivate_flow(
    *,
    flow_id: uuid.UUID,
    workspace_id: uuid.UUID,
    session: AsyncSession,
    remove: bool = False,
) -> None:
    """Stop a flow from running: no new runs from events or schedules.

    Called when a flow is paused (``remove=False``: its deployment stays with its schedule
    paused, so resuming is cheap) and when it is deleted (``remove=True``: its deployment is
    deleted). Runs already started finish. Idempotent; fine for a flow with no deployment.

    Args:
        flow_id: The flow.
        workspace_id: The flow's workspace.
        session: The caller's open transaction; this function never commits it.
        remove: Delete the flow's deployment instead of pausing it.
    """
    trigger = await session.get(FlowTrigger, flow_id)
    if trigger is not None and trigger.deployment_id is not None:
        if remove:
            await _on_prefect("deleting", delete_deployment(trigger.deployment_id))
            trigger.deployment_id = None
        else:
            await _on_prefect("pausing", set_deployment_paused(trigger.deployment_id, paused=True))
    await deactivate_trigger(session, flow_id, removed=remove)
    _log.info(
        "flow deactivated", workspace_id=str(workspace_id), flow_id=str(flow_id), removed=remove
    )


async def _on_prefect(action: str, call: Coroutine[Any, Any, T]) -> T:
    """Await a call to Prefect's API; an unreachable or failing API is a retryable refusal
    (503 from the API) and leaves the flow as it was, since the caller has not committed."""
    try:
        return await call
    except (httpx.HTTPError, OSError, PrefectHTTPStatusError) as exc:
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value() or "(PREFECT_API_URL is not set)"
        msg = (
            f"{action} the flow needs Prefect's API at {url}, which did not answer "
            f"({type(exc).__name__}); nothing was changed, try again"
        )
        raise TransientError(msg, code="prefect_unavailable") from exc
