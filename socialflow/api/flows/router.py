"""Flow endpoints: drafts, duplicates, export and import, publishing and versions.

Viewers read; editors create, edit, publish, pause, resume, roll back, delete, duplicate and
import. Every flow is looked up within the workspace of the path, so another workspace's flow
answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from socialflow.api.deps import EditorMember, RegistryDep, SessionDep, SettingsDep, ViewerMember
from socialflow.api.flows import service, versions
from socialflow.api.flows.dependencies import EditedFlow, ViewedFlow
from socialflow.api.flows.models import FlowStatus
from socialflow.api.flows.schemas import (
    FlowCreate,
    FlowExport,
    FlowPage,
    FlowPublish,
    FlowRead,
    FlowUpdate,
    FlowVersionPage,
    FlowVersionRead,
)

__all__ = ["router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/flows", tags=["flows"])

VersionNumber = Annotated[
    int, Path(ge=1, le=2_147_483_647, description="Version number (1, 2, …).")
]
Validate = Annotated[
    bool,
    Query(
        description=(
            "Refuse a graph with problems (422 listing every one). false saves a draft that is "
            "still being drawn; publishing always validates."
        )
    ),
]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=2_147_483_647, description="Items to skip.")]


@router.post("", status_code=201, name="create_flow")
async def create_flow(
    body: FlowCreate,
    member: EditorMember,
    registry: RegistryDep,
    session: SessionDep,
    validate: Validate = True,
) -> FlowRead:
    """Create a draft flow (editor); a blank canvas when no graph is given."""
    return await service.create(
        member.workspace_id,
        body,
        user_id=member.user.id,
        registry=registry,
        validate=validate,
        session=session,
    )


@router.get("", name="list_flows")
async def list_flows(
    member: ViewerMember,
    session: SessionDep,
    search: Annotated[
        str | None, Query(max_length=200, description="Part of the name, any case.")
    ] = None,
    status: Annotated[FlowStatus | None, Query(description="Only flows with this status.")] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> FlowPage:
    """The workspace's flows, most recently changed first."""
    return await service.list(
        member.workspace_id,
        search=search,
        status=status,
        limit=limit,
        offset=offset,
        session=session,
    )


@router.post("/import", status_code=201, name="import_flow")
async def import_flow(
    body: FlowExport, member: EditorMember, registry: RegistryDep, session: SessionDep
) -> FlowRead:
    """Create a draft flow from an exported one (editor); credentials map by name."""
    return await service.import_flow(
        member.workspace_id, body, user_id=member.user.id, registry=registry, session=session
    )


@router.get("/{flow_id}", name="get_flow")
async def get_flow(flow: ViewedFlow, registry: RegistryDep, session: SessionDep) -> FlowRead:
    """A flow with its draft graph, status, active version and the draft's problems."""
    return await service.get(flow, registry=registry, session=session)


@router.patch("/{flow_id}", name="update_flow")
async def update_flow(
    flow: EditedFlow,
    body: FlowUpdate,
    registry: RegistryDep,
    session: SessionDep,
    validate: Validate = True,
) -> FlowRead:
    """Change the name, description or draft graph (editor); versions are untouched."""
    return await service.update(flow, body, registry=registry, validate=validate, session=session)


@router.delete("/{flow_id}", status_code=204, name="delete_flow")
async def delete_flow(flow: EditedFlow, session: SessionDep) -> Response:
    """Delete a flow and its versions (editor); it stops running first."""
    await service.delete(flow, session=session)
    return Response(status_code=204)


@router.post("/{flow_id}/duplicate", status_code=201, name="duplicate_flow")
async def duplicate_flow(
    flow: EditedFlow, member: EditorMember, registry: RegistryDep, session: SessionDep
) -> FlowRead:
    """A draft copy of the flow's draft, named "<name> (copy)" (editor)."""
    return await service.duplicate(flow, user_id=member.user.id, registry=registry, session=session)


@router.get("/{flow_id}/export", name="export_flow")
async def export_flow(flow: ViewedFlow) -> FlowExport:
    """The flow's draft as a portable document; credentials are named, never included."""
    return service.export(flow)


@router.post("/{flow_id}/publish", status_code=201, name="publish_flow")
async def publish_flow(
    flow: EditedFlow,
    member: EditorMember,
    registry: RegistryDep,
    settings: SettingsDep,
    session: SessionDep,
    body: FlowPublish | None = None,
) -> FlowVersionRead:
    """Freeze the draft into a new version and make it the one that runs (editor)."""
    return await versions.publish(
        flow,
        body.note if body is not None else "",
        user_id=member.user.id,
        registry=registry,
        settings=settings,
        session=session,
    )


@router.post("/{flow_id}/pause", name="pause_flow")
async def pause_flow(flow: EditedFlow, registry: RegistryDep, session: SessionDep) -> FlowRead:
    """Stop a published flow from running (editor)."""
    return await versions.pause(flow, registry=registry, session=session)


@router.post("/{flow_id}/resume", name="resume_flow")
async def resume_flow(
    flow: EditedFlow, registry: RegistryDep, settings: SettingsDep, session: SessionDep
) -> FlowRead:
    """Run a paused flow's active version again (editor); 409 if never published."""
    return await versions.resume(flow, registry=registry, settings=settings, session=session)


@router.get("/{flow_id}/versions", name="list_flow_versions")
async def list_flow_versions(
    flow: ViewedFlow, session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> FlowVersionPage:
    """The flow's published versions, newest first."""
    return await versions.list(flow, limit=limit, offset=offset, session=session)


@router.get("/{flow_id}/versions/{number}", name="get_flow_version")
async def get_flow_version(
    flow: ViewedFlow, number: VersionNumber, session: SessionDep
) -> FlowVersionRead:
    """One published version with its frozen graph."""
    return await versions.get(flow, number, session=session)


@router.post("/{flow_id}/versions/{number}/activate", name="activate_flow_version")
async def activate_flow_version(
    flow: EditedFlow,
    number: VersionNumber,
    registry: RegistryDep,
    settings: SettingsDep,
    session: SessionDep,
) -> FlowRead:
    """Make an older version the one that runs again (rollback; editor)."""
    return await versions.activate(
        flow, number, registry=registry, settings=settings, session=session
    )
