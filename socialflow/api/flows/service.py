"""Flows and their drafts: create, list, get, update, delete, duplicate, export, import.

Publishing and versions are in ``socialflow.api.flows.versions``.

A draft may be saved while it is still incomplete: ``validate=False`` stores any graph that
parses as a ``GraphSpec``; with ``validate=True`` (the API's default) a graph with problems is
refused with every problem listed. Publishing always validates.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.flows import checks
from socialflow.api.flows.models import Flow, FlowStatus, FlowVersion
from socialflow.api.flows.schemas import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    NAME_MAX,
    FlowCreate,
    FlowExport,
    FlowPage,
    FlowRead,
    FlowSummary,
    FlowUpdate,
)
from socialflow.core.errors import NotFoundError
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import GraphSpec, deactivate_flow

__all__ = [
    "create",
    "delete",
    "duplicate",
    "export",
    "get",
    "get_row",
    "import_flow",
    "list",
    "read",
    "update",
]


async def get_row(workspace_id: uuid.UUID, flow_id: uuid.UUID, *, session: AsyncSession) -> Flow:
    """The ``flow`` row, only if it belongs to ``workspace_id``.

    Raises:
        NotFoundError: No such flow in this workspace; the same answer as for another
            workspace's flow, so ids leak nothing.
    """
    flow = await session.scalar(
        select(Flow).where(Flow.id == flow_id, Flow.workspace_id == workspace_id)
    )
    if flow is None:
        msg = f"flow {flow_id} not found"
        raise NotFoundError(msg, code="flow_not_found")
    return flow


async def read(flow: Flow, *, registry: NodeRegistry, session: AsyncSession) -> FlowRead:
    """A flow row as the API shows it, with its draft's problems."""
    graph = GraphSpec.model_validate(flow.draft)
    active_number: int | None = None
    active_graph = None
    if flow.active_version_id is not None:
        row = (
            await session.execute(
                select(FlowVersion.number, FlowVersion.graph).where(
                    FlowVersion.id == flow.active_version_id
                )
            )
        ).first()
        if row is not None:
            active_number, active_graph = row[0], row[1]
    problems = await checks.graph_problems(
        graph, flow.workspace_id, registry=registry, session=session
    )
    return FlowRead(
        **_summary(flow, active_number).model_dump(),
        graph=graph,
        problems=problems,
        unpublished_changes=active_graph is None or GraphSpec.model_validate(active_graph) != graph,
    )


async def create(
    workspace_id: uuid.UUID,
    body: FlowCreate,
    *,
    user_id: uuid.UUID,
    registry: NodeRegistry,
    validate: bool,
    session: AsyncSession,
) -> FlowRead:
    """Create a draft flow.

    Args:
        workspace_id: The workspace.
        body: Name, description and an optional graph (a blank canvas when omitted, which is
            never validated).
        user_id: Who creates it.
        registry: Node kinds, to validate the graph.
        validate: Refuse a given graph that has problems.
        session: The database session.

    Raises:
        ValidationError: ``validate`` and the graph has problems; every one is listed.
    """
    graph = body.graph or GraphSpec()
    if body.graph is not None and validate:
        await _check(graph, workspace_id, "the graph", registry=registry, session=session)
    flow = Flow(
        workspace_id=workspace_id,
        name=body.name,
        description=body.description,
        status=FlowStatus.DRAFT,
        draft=graph.model_dump(mode="json"),
        created_by=user_id,
    )
    session.add(flow)
    await session.commit()
    return await read(flow, registry=registry, session=session)


async def list(
    workspace_id: uuid.UUID,
    *,
    search: str | None,
    status: FlowStatus | None,
    limit: int,
    offset: int,
    session: AsyncSession,
) -> FlowPage:
    """One page of the workspace's flows, most recently changed first.

    Args:
        workspace_id: The workspace.
        search: Keep flows whose name contains this, ignoring case.
        status: Keep flows with this status.
        limit: Page size.
        offset: Flows to skip.
        session: The database session.
    """
    where = [Flow.workspace_id == workspace_id]
    if search:
        where.append(func.lower(Flow.name).contains(search.lower(), autoescape=True))
    if status is not None:
        where.append(Flow.status == status)
    total = await session.scalar(select(func.count()).select_from(Flow).where(*where))
    rows = await session.execute(
        select(Flow, FlowVersion.number)
        .outerjoin(FlowVersion, FlowVersion.id == Flow.active_version_id)
        .where(*where)
        .order_by(Flow.updated_at.desc(), Flow.id)
        .limit(limit)
        .offset(offset)
    )
    items = [_summary(flow, number) for flow, number in rows.tuples()]
    return FlowPage(items=items, total=total or 0, limit=limit, offset=offset)


async def get(flow: Flow, *, registry: NodeRegistry, session: AsyncSession) -> FlowRead:
    """A flow with its draft graph."""
    return await read(flow, registry=registry, session=session)


async def update(
    flow: Flow,
    body: FlowUpdate,
    *,
    registry: NodeRegistry,
    validate: bool,
    session: AsyncSession,
) -> FlowRead:
    """Change a flow's name, description or draft graph; published versions are untouched.

    Raises:
        ValidationError: ``validate`` and the new graph has problems; every one is listed.
    """
    if body.graph is not None:
        if validate:
            await _check(
                body.graph, flow.workspace_id, "the graph", registry=registry, session=session
            )
        flow.draft = body.graph.model_dump(mode="json")
    if body.name is not None:
        flow.name = body.name
    if body.description is not None:
        flow.description = body.description
    await session.commit()
    return await read(flow, registry=registry, session=session)


async def delete(flow: Flow, *, session: AsyncSession) -> None:
    """Delete a flow and its versions; a published flow stops running first."""
    await session.refresh(flow, with_for_update=True)
    if flow.active_version_id is not None:
        await deactivate_flow(
            flow_id=flow.id, workspace_id=flow.workspace_id, session=session, remove=True
        )
        # flow and flow_version point at each other; cut this key before the cascade
        flow.active_version_id = None
        await session.flush()
    await session.delete(flow)
    await session.commit()


async def duplicate(
    source: Flow, *, user_id: uuid.UUID, registry: NodeRegistry, session: AsyncSession
) -> FlowRead:
    """A new draft flow with a copy of the draft, named "<name> (copy)", with no versions."""
    suffix = " (copy)"
    copy = Flow(
        workspace_id=source.workspace_id,
        name=source.name[: NAME_MAX - len(suffix)] + suffix,
        description=source.description,
        status=FlowStatus.DRAFT,
        draft=GraphSpec.model_validate(source.draft).model_dump(mode="json"),
        created_by=user_id,
    )
    session.add(copy)
    await session.commit()
    return await read(copy, registry=registry, session=session)


def export(flow: Flow) -> FlowExport:
    """The flow's draft as a portable document, naming the credentials it refers to."""
    graph = GraphSpec.model_validate(flow.draft)
    names = sorted({ref.name for ref in checks.credential_references(graph)})
    return FlowExport(
        format=EXPORT_FORMAT,
        version=EXPORT_VERSION,
        name=flow.name,
        description=flow.description,
        graph=graph,
        credentials=names,
    )


async def import_flow(
    workspace_id: uuid.UUID,
    document: FlowExport,
    *,
    user_id: uuid.UUID,
    registry: NodeRegistry,
    session: AsyncSession,
) -> FlowRead:
    """Create a draft flow from an exported document.

    The graph is validated again against this installation's node kinds, and each credential
    name it uses must exist in this workspace (credentials map by name).

    Raises:
        ValidationError: Every problem of the graph, missing credentials included, each with
            its node id and field.
    """
    await _check(
        document.graph, workspace_id, "the imported graph", registry=registry, session=session
    )
    flow = Flow(
        workspace_id=workspace_id,
        name=document.name,
        description=document.description,
        status=FlowStatus.DRAFT,
        draft=document.graph.model_dump(mode="json"),
        created_by=user_id,
    )
    session.add(flow)
    await session.commit()
    return await read(flow, registry=registry, session=session)


async def _check(
    graph: GraphSpec,
    workspace_id: uuid.UUID,
    what: str,
    *,
    registry: NodeRegistry,
    session: AsyncSession,
) -> None:
    problems = await checks.graph_problems(graph, workspace_id, registry=registry, session=session)
    if problems:
        raise checks.refusal(problems, what)


def _summary(flow: Flow, active_number: int | None) -> FlowSummary:
    return FlowSummary(
        id=flow.id,
        workspace_id=flow.workspace_id,
        name=flow.name,
        description=flow.description,
        status=FlowStatus(flow.status),
        active_version=active_number,
        created_at=flow.created_at,
        updated_at=flow.updated_at,
    )
