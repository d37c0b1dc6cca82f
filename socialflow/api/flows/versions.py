"""Published versions of a flow: publish, list, get, activate (rollback), pause, resume.

A version is frozen when it is published: its graph, number and note never change. The flow
points at its active version; Prefect learns of every change through
``orchestration.activate_version`` and ``orchestration.deactivate_flow``, called before the
transaction commits so that a failure there leaves the flow as it was.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.flows import checks, service
from socialflow.api.flows.models import Flow, FlowStatus, FlowVersion
from socialflow.api.flows.schemas import (
    FlowRead,
    FlowVersionPage,
    FlowVersionRead,
    FlowVersionSummary,
)
from socialflow.core.errors import ConflictError, NotFoundError
from socialflow.core.settings import Settings
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import GraphSpec, activate_version, deactivate_flow

__all__ = ["activate", "get", "list", "pause", "publish", "resume"]


async def publish(
    flow: Flow,
    note: str,
    *,
    user_id: uuid.UUID,
    registry: NodeRegistry,
    settings: Settings,
    session: AsyncSession,
) -> FlowVersionRead:
    """Freeze the draft into the next version, make it active and set the flow active.

    Args:
        flow: The flow.
        note: What changed, for the history.
        user_id: Who publishes.
        registry: Node kinds, to validate and compile the draft.
        settings: The app's settings (the engine seals the flow's webhook secret with them).
        session: The database session.

    Raises:
        ValidationError: The draft has problems (every one listed); no version is created.
        ConflictError: Someone else published this flow at the same moment.
    """
    await _lock(flow, session)
    graph = GraphSpec.model_validate(flow.draft)
    problems = await checks.graph_problems(
        graph, flow.workspace_id, registry=registry, session=session
    )
    if problems:
        raise checks.refusal(problems, "the draft")
    latest = await session.scalar(
        select(func.max(FlowVersion.number)).where(FlowVersion.flow_id == flow.id)
    )
    version = FlowVersion(
        flow_id=flow.id,
        number=(latest or 0) + 1,
        graph=graph.model_dump(mode="json"),
        note=note,
        published_by=user_id,
    )
    session.add(version)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        msg = f"flow {flow.id} was published by someone else at the same moment; try again"
        raise ConflictError(msg, code="publish_conflict") from exc
    await _activate(flow, version, graph, registry=registry, settings=settings, session=session)
    await session.commit()
    return _read(version, active=True)


async def list(flow: Flow, *, limit: int, offset: int, session: AsyncSession) -> FlowVersionPage:
    """One page of a flow's versions, newest first."""
    total = await session.scalar(
        select(func.count()).select_from(FlowVersion).where(FlowVersion.flow_id == flow.id)
    )
    rows = await session.scalars(
        select(FlowVersion)
        .where(FlowVersion.flow_id == flow.id)
        .order_by(FlowVersion.number.desc())
        .limit(limit)
        .offset(offset)
    )
    items = [_summary(v, active=v.id == flow.active_version_id) for v in rows]
    return FlowVersionPage(items=items, total=total or 0, limit=limit, offset=offset)


async def get(flow: Flow, number: int, *, session: AsyncSession) -> FlowVersionRead:
    """One version with its graph.

    Raises:
        NotFoundError: The flow has no such version.
    """
    version = await _version(flow, number, session)
    return _read(version, active=version.id == flow.active_version_id)


async def activate(
    flow: Flow, number: int, *, registry: NodeRegistry, settings: Settings, session: AsyncSession
) -> FlowRead:
    """Make a published version the active one again (rollback); no new version is created.

    The flow becomes active, also when it was paused. The draft is left as it is.

    Raises:
        NotFoundError: The flow has no such version.
        ValidationError: The version no longer compiles (a node kind it uses was removed).
    """
    await _lock(flow, session)
    version = await _version(flow, number, session)
    graph = GraphSpec.model_validate(version.graph)
    await _activate(flow, version, graph, registry=registry, settings=settings, session=session)
    await session.commit()
    return await service.read(flow, registry=registry, session=session)


async def pause(flow: Flow, *, registry: NodeRegistry, session: AsyncSession) -> FlowRead:
    """Stop a published flow from running; its active version is kept. Pausing twice is fine.

    Raises:
        ConflictError: The flow was never published.
    """
    await _lock(flow, session)
    _published(flow)
    if flow.status != FlowStatus.PAUSED:
        await deactivate_flow(flow_id=flow.id, workspace_id=flow.workspace_id, session=session)
        flow.status = FlowStatus.PAUSED
        await session.commit()
    return await service.read(flow, registry=registry, session=session)


async def resume(
    flow: Flow, *, registry: NodeRegistry, settings: Settings, session: AsyncSession
) -> FlowRead:
    """Run a paused flow's active version again. Resuming an active flow is fine.

    Raises:
        ConflictError: The flow was never published.
        ValidationError: The active version no longer compiles.
    """
    await _lock(flow, session)
    active_id = _published(flow)
    if flow.status != FlowStatus.ACTIVE:
        version = await session.get(FlowVersion, active_id)
        if version is None:  # pragma: no cover - the foreign key forbids it
            msg = f"flow {flow.id} has lost its active version"
            raise ConflictError(msg, code="flow_not_published")
        graph = GraphSpec.model_validate(version.graph)
        await _activate(flow, version, graph, registry=registry, settings=settings, session=session)
        await session.commit()
    return await service.read(flow, registry=registry, session=session)


async def _lock(flow: Flow, session: AsyncSession) -> None:
    # reload under a row lock (PostgreSQL) so concurrent publish, rollback and pause of one
    # flow take turns and each sees the other's result
    await session.refresh(flow, with_for_update=True)


async def _activate(
    flow: Flow,
    version: FlowVersion,
    graph: GraphSpec,
    *,
    registry: NodeRegistry,
    settings: Settings,
    session: AsyncSession,
) -> None:
    deployment_id = await activate_version(
        flow_id=flow.id,
        flow_name=flow.name,
        version_id=version.id,
        version_number=version.number,
        graph=graph,
        workspace_id=flow.workspace_id,
        registry=registry,
        settings=settings,
        session=session,
    )
    # where the version is deployed is bookkeeping, not part of the frozen version
    if deployment_id != version.prefect_deployment_id:
        version.prefect_deployment_id = deployment_id
    flow.active_version_id = version.id
    flow.status = FlowStatus.ACTIVE


def _published(flow: Flow) -> uuid.UUID:
    if flow.active_version_id is None:
        msg = f"flow {flow.id} has never been published: publish it first"
        raise ConflictError(msg, code="flow_not_published")
    return flow.active_version_id


async def _version(flow: Flow, number: int, session: AsyncSession) -> FlowVersion:
    version = await session.scalar(
        select(FlowVersion).where(FlowVersion.flow_id == flow.id, FlowVersion.number == number)
    )
    if version is None:
        msg = f"flow {flow.id} has no version {number}"
        raise NotFoundError(msg, code="flow_version_not_found")
    return version


def _summary(version: FlowVersion, *, active: bool) -> FlowVersionSummary:
    return FlowVersionSummary(
        id=version.id,
        flow_id=version.flow_id,
        number=version.number,
        note=version.note,
        published_by=version.published_by,
        published_at=version.published_at,
        active=active,
    )


def _read(version: FlowVersion, *, active: bool) -> FlowVersionRead:
    return FlowVersionRead(
        **_summary(version, active=active).model_dump(),
        graph=GraphSpec.model_validate(version.graph),
    )
