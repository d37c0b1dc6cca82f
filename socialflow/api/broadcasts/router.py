"""Broadcast endpoints: viewers list, read, preview and follow progress; editors compose,
send and cancel; admins delete. Every id is looked up within the workspace of the path, so
another workspace's broadcast or account answers 404."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from socialflow.api.broadcasts.schemas import (
    BroadcastCreate,
    BroadcastDetail,
    BroadcastPage,
    BroadcastRead,
    BroadcastSend,
    PreviewRequest,
    RecipientPage,
    RecipientRead,
)
from socialflow.api.deps import AdminMember, EditorMember, SessionDep, ViewerMember
from socialflow.broadcasts import BroadcastFields, Preview, broadcasts

__all__ = ["router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/broadcasts", tags=["broadcasts"])

BroadcastId = Annotated[uuid.UUID, Path(description="Broadcast id.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]
Reason = Annotated[
    str | None,
    Query(pattern=r"^[a-z_]{1,40}$", description="Only recipients with this reason or code."),
]


def _read(row: object) -> BroadcastRead:
    return BroadcastRead.model_validate(row, from_attributes=True)


@router.get("", name="list_broadcasts")
async def list_broadcasts(
    member: ViewerMember, session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> BroadcastPage:
    """The workspace's broadcasts, newest first."""
    rows, total = await broadcasts.list_broadcasts(
        session, member.workspace_id, limit=limit, offset=offset
    )
    return BroadcastPage(items=[_read(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("/preview", name="preview_broadcast")
async def preview_broadcast(
    body: PreviewRequest, member: ViewerMember, session: SessionDep
) -> Preview:
    """How many contacts of the segment a broadcast would reach now and, per reason, how many
    it would skip (opted out, never messaged, human-agent only, outside every window).
    Counted in one SQL query."""
    return await broadcasts.preview(session, member.workspace_id, body.account_id, body.segment)


@router.post("", status_code=201, name="create_broadcast")
async def create_broadcast(
    body: BroadcastCreate, member: EditorMember, session: SessionDep
) -> BroadcastRead:
    """Compose a broadcast (editor); a draft until it is sent."""
    fields = BroadcastFields.model_validate(body.model_dump())
    row = await broadcasts.create(session, member.workspace_id, fields, user_id=member.user.id)
    return _read(row)


@router.get("/{broadcast_id}", name="get_broadcast")
async def get_broadcast(
    member: ViewerMember, broadcast_id: BroadcastId, session: SessionDep
) -> BroadcastDetail:
    """A broadcast with its progress: sent, skipped per reason, failed (live while it runs)."""
    row = await broadcasts.get(session, member.workspace_id, broadcast_id)
    progress = await broadcasts.progress(session, row)
    return BroadcastDetail(**_read(row).model_dump(), progress=progress)


@router.post("/{broadcast_id}/send", name="send_broadcast")
async def send_broadcast(
    body: BroadcastSend, member: EditorMember, broadcast_id: BroadcastId, session: SessionDep
) -> BroadcastRead:
    """Send a draft now or at ``at`` (editor): one Prefect run, scheduled at that time."""
    row = await broadcasts.get(session, member.workspace_id, broadcast_id)
    return _read(await broadcasts.send(session, row, body.at))


@router.post("/{broadcast_id}/cancel", name="cancel_broadcast")
async def cancel_broadcast(
    member: EditorMember, broadcast_id: BroadcastId, session: SessionDep
) -> BroadcastRead:
    """Stop a scheduled or sending broadcast (editor); what was sent stays sent."""
    row = await broadcasts.get(session, member.workspace_id, broadcast_id)
    return _read(await broadcasts.cancel(session, row))


@router.get("/{broadcast_id}/recipients", name="list_broadcast_recipients")
async def list_recipients(
    member: ViewerMember,
    broadcast_id: BroadcastId,
    session: SessionDep,
    status: Annotated[
        Literal["sent", "skipped", "failed"] | None, Query(description="Only this outcome.")
    ] = None,
    reason: Reason = None,
    after: Annotated[uuid.UUID | None, Query(description="Continue after this contact.")] = None,
    limit: Limit = 100,
) -> RecipientPage:
    """What became of each recipient handled so far, by contact id."""
    row = await broadcasts.get(session, member.workspace_id, broadcast_id)
    found = await broadcasts.recipients(
        session, row, status=status, reason=reason, after=after, limit=limit
    )
    items = [RecipientRead.model_validate(r) for r in found]
    return RecipientPage(
        items=items, next_after=items[-1].contact_id if len(items) == limit else None
    )


@router.delete("/{broadcast_id}", status_code=204, name="delete_broadcast")
async def delete_broadcast(
    member: AdminMember, broadcast_id: BroadcastId, session: SessionDep
) -> Response:
    """Delete a broadcast that is not scheduled or sending (admin)."""
    row = await broadcasts.get(session, member.workspace_id, broadcast_id)
    await broadcasts.delete(session, row)
    return Response(status_code=204)
