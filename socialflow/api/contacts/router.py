"""Contact endpoints: the people the workspace's accounts met, their tags and custom fields.

Viewers list and read contacts (with their timelines) and the definitions; editors change
tags and fields, tag in bulk and define tags and fields; admins export (CSV) and erase a
contact or delete a definition. Every id is looked up within the workspace of the path: another
workspace's contact, tag or field answers 404 like one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from socialflow.api.contacts import erase, export, service, takeover
from socialflow.api.contacts.schemas import (
    BulkTagRequest,
    BulkTagResult,
    ContactDetail,
    ContactFieldCreate,
    ContactFieldRead,
    ContactFieldUpdate,
    ContactFilter,
    ContactPage,
    ContactQuery,
    ContactTagCreate,
    ContactTagRead,
    ContactTagUpdate,
    ContactUpdate,
    EraseReport,
    LiveReply,
    LiveReplyResult,
    TakeoverRequest,
)
from socialflow.api.deps import (
    AdminMember,
    DatabaseDep,
    EditorMember,
    SessionDep,
    SettingsDep,
    ViewerMember,
)

__all__ = ["router"]

router = APIRouter(prefix="/workspaces/{workspace_id}", tags=["contacts"])

ContactId = Annotated[uuid.UUID, Path(description="Contact id.")]
TagId = Annotated[uuid.UUID, Path(description="Tag id.")]
FieldId = Annotated[uuid.UUID, Path(description="Field id.")]


@router.get("/contacts", name="list_contacts")
async def list_contacts(
    member: ViewerMember, session: SessionDep, query: Annotated[ContactQuery, Query()]
) -> ContactPage:
    """The workspace's contacts, most recently seen first, filtered by text, tags, field
    values, source, account, last seen, window and opt-out (viewer)."""
    return await service.list_contacts(member.workspace_id, query, session=session)


@router.get("/contacts/export", name="export_contacts")
async def export_contacts(
    member: AdminMember, db: DatabaseDep, query: Annotated[ContactFilter, Query()]
) -> StreamingResponse:
    """The contacts the filter matches as CSV, streamed; cells that a spreadsheet would run as
    a formula are prefixed with ' (admin)."""
    return StreamingResponse(
        export.export_csv(db, member.workspace_id, query),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
    )


@router.post("/contacts/bulk-tags", name="bulk_tag_contacts")
async def bulk_tag_contacts(
    body: BulkTagRequest, member: EditorMember, session: SessionDep
) -> BulkTagResult:
    """Add or remove tags on contacts given by ids or by a filter (editor)."""
    return await service.bulk_tags(member.workspace_id, body, session=session)


@router.get("/contacts/{contact_id}", name="get_contact")
async def get_contact(
    contact_id: ContactId, member: ViewerMember, session: SessionDep
) -> ContactDetail:
    """One contact with tags, fields, window and timeline: their events, the runs those
    started and the messages sent to them (viewer)."""
    return await service.get_contact(member.workspace_id, contact_id, session=session)


@router.patch("/contacts/{contact_id}", name="update_contact")
async def update_contact(
    contact_id: ContactId, body: ContactUpdate, member: EditorMember, session: SessionDep
) -> ContactDetail:
    """Add or remove tags, set or clear fields (checked by type), set the opt-out (editor)."""
    return await service.update_contact(member.workspace_id, contact_id, body, session=session)


@router.post("/contacts/{contact_id}/takeover", name="take_over_contact")
async def take_over_contact(
    contact_id: ContactId, body: TakeoverRequest, member: EditorMember, session: SessionDep
) -> ContactDetail:
    """A person takes the conversation over: flows skip this contact (the event log says
    human_takeover) for ``minutes`` or until released (editor)."""
    return await takeover.take_over_contact(member.workspace_id, contact_id, body, session=session)


@router.delete("/contacts/{contact_id}/takeover", name="release_contact")
async def release_contact(
    contact_id: ContactId, member: EditorMember, session: SessionDep
) -> ContactDetail:
    """Give the contact back to the flows (editor)."""
    return await takeover.release_contact(member.workspace_id, contact_id, session=session)


@router.post("/contacts/{contact_id}/messages", name="reply_to_contact")
async def reply_to_contact(
    contact_id: ContactId,
    body: LiveReply,
    member: EditorMember,
    settings: SettingsDep,
    db: DatabaseDep,
    session: SessionDep,
) -> LiveReplyResult:
    """Send the contact a DM from the app, through the send ledger and Meta's rules (within
    24 h of their last message, or 7 days with human_agent); the same client_id sends once
    (editor)."""
    return await takeover.reply(
        member.workspace_id, contact_id, body, settings=settings, db=db, session=session
    )


@router.delete("/contacts/{contact_id}", name="erase_contact")
async def erase_contact(
    contact_id: ContactId, member: AdminMember, session: SessionDep
) -> EraseReport:
    """Erase a contact: the contact, its tags and field values are deleted, and its personal
    data in stored events, runs and ledger texts replaced by [erased]; the answer says what
    was kept (admin)."""
    return await erase.erase_contact(member.workspace_id, contact_id, session=session)


@router.get("/contact-tags", name="list_contact_tags")
async def list_contact_tags(member: ViewerMember, session: SessionDep) -> list[ContactTagRead]:
    """The workspace's tags, each with how many contacts have it (viewer)."""
    return await service.list_tags(member.workspace_id, session=session)


@router.post("/contact-tags", status_code=201, name="create_contact_tag")
async def create_contact_tag(
    body: ContactTagCreate, member: EditorMember, session: SessionDep
) -> ContactTagRead:
    """Define a tag (editor)."""
    return await service.create_tag(member.workspace_id, body.name, session=session)


@router.patch("/contact-tags/{tag_id}", name="update_contact_tag")
async def update_contact_tag(
    tag_id: TagId, body: ContactTagUpdate, member: EditorMember, session: SessionDep
) -> ContactTagRead:
    """Rename a tag (editor)."""
    return await service.update_tag(member.workspace_id, tag_id, body.name, session=session)


@router.delete("/contact-tags/{tag_id}", status_code=204, name="delete_contact_tag")
async def delete_contact_tag(tag_id: TagId, member: AdminMember, session: SessionDep) -> Response:
    """Delete a tag and take it off every contact (admin)."""
    await service.delete_tag(member.workspace_id, tag_id, session=session)
    return Response(status_code=204)


@router.get("/contact-fields", name="list_contact_fields")
async def list_contact_fields(member: ViewerMember, session: SessionDep) -> list[ContactFieldRead]:
    """The workspace's custom fields (viewer)."""
    return await service.list_fields(member.workspace_id, session=session)


@router.post("/contact-fields", status_code=201, name="create_contact_field")
async def create_contact_field(
    body: ContactFieldCreate, member: EditorMember, session: SessionDep
) -> ContactFieldRead:
    """Define a typed custom field: text, number, date, boolean, email, phone, URL or choice
    (editor)."""
    return await service.create_field(member.workspace_id, body, session=session)


@router.patch("/contact-fields/{field_id}", name="update_contact_field")
async def update_contact_field(
    field_id: FieldId, body: ContactFieldUpdate, member: EditorMember, session: SessionDep
) -> ContactFieldRead:
    """Change a field's label or choices (editor)."""
    return await service.update_field(member.workspace_id, field_id, body, session=session)


@router.delete("/contact-fields/{field_id}", status_code=204, name="delete_contact_field")
async def delete_contact_field(
    field_id: FieldId, member: AdminMember, session: SessionDep
) -> Response:
    """Delete a field and every contact's value of it (admin)."""
    await service.delete_field(member.workspace_id, field_id, session=session)
    return Response(status_code=204)
