"""Contacts of a workspace: list and filter, one with its timeline, tag and field changes,
bulk tagging, and the workspace's tag and field definitions."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

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
    ContactRead,
    ContactTagRead,
    ContactUpdate,
    TimelineItem,
    WindowRead,
)
from socialflow.contacts import (
    WINDOW,
    Contact,
    ContactEvent,
    ContactField,
    ContactFieldValue,
    ContactTag,
    ContactTagLink,
    FieldType,
    add_tags,
    check_tag_name,
    is_taken_over,
    remove_tags,
    set_field,
    window,
)
from socialflow.core.db import utcnow
from socialflow.core.errors import ConflictError, NotFoundError, UserError
from socialflow.instagram import InstagramAccount, OutboxMessage
from socialflow.orchestration import FlowExecution, WebhookEvent

__all__ = [
    "bulk_tags",
    "conditions",
    "create_field",
    "create_tag",
    "delete_field",
    "delete_tag",
    "get_contact",
    "get_row",
    "list_contacts",
    "list_fields",
    "list_tags",
    "reads",
    "update_contact",
    "update_field",
    "update_tag",
]

_TIMELINE = 200


def conditions(workspace_id: uuid.UUID, query: ContactFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a contact filter, inside ``workspace_id``."""
    where: list[ColumnElement[bool]] = [Contact.workspace_id == workspace_id]
    if query.q:
        where.append(
            or_(
                Contact.username.icontains(query.q, autoescape=True),
                Contact.name.icontains(query.q, autoescape=True),
            )
        )
    for name in query.tag or []:
        tagged = (
            select(ContactTagLink.contact_id)
            .join(ContactTag, ContactTag.id == ContactTagLink.tag_id)
            .where(ContactTag.workspace_id == workspace_id, ContactTag.name == name.strip())
        )
        where.append(Contact.id.in_(tagged))
    for item in query.field or []:
        key, _, text = item.partition("=")
        valued = (
            select(ContactFieldValue.contact_id)
            .join(ContactField, ContactField.id == ContactFieldValue.field_id)
            .where(
                ContactField.workspace_id == workspace_id,
                ContactField.key == key,
                ContactFieldValue.value_text == text,
            )
        )
        where.append(Contact.id.in_(valued))
    if query.source:
        where.append(Contact.source.in_(query.source))
    if query.account:
        where.append(Contact.account_id == query.account)
    if query.seen_after:
        where.append(Contact.last_seen_at >= query.seen_after)
    if query.seen_before:
        where.append(Contact.last_seen_at < query.seen_before)
    if query.window is not None:
        opened = Contact.last_inbound_at > utcnow() - WINDOW
        where.append(
            opened if query.window == "open" else or_(~opened, Contact.last_inbound_at.is_(None))
        )
    if query.opted_out is not None:
        where.append(Contact.opted_out.is_(query.opted_out))
    return where


async def reads(session: AsyncSession, contacts: list[Contact]) -> list[ContactRead]:
    """The contacts as the API shows them, with their tags and set fields (two queries)."""
    ids = [c.id for c in contacts]
    tags: dict[uuid.UUID, list[str]] = defaultdict(list)
    fields: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    if ids:
        tag_rows = await session.execute(
            select(ContactTagLink.contact_id, ContactTag.name)
            .join(ContactTag, ContactTag.id == ContactTagLink.tag_id)
            .where(ContactTagLink.contact_id.in_(ids))
            .order_by(ContactTag.name)
        )
        for cid, name in tag_rows.tuples():
            tags[cid].append(name)
        field_rows = await session.execute(
            select(ContactFieldValue.contact_id, ContactField.key, ContactFieldValue.value)
            .join(ContactField, ContactField.id == ContactFieldValue.field_id)
            .where(ContactFieldValue.contact_id.in_(ids))
        )
        for cid, key, value in field_rows.tuples():
            fields[cid][key] = value
    now = utcnow()
    found = []
    for c in contacts:
        state = window(c.last_inbound_at, now)
        found.append(
            ContactRead(
                id=c.id,
                account_id=c.account_id,
                igsid=c.igsid,
                username=c.username,
                name=c.name,
                profile_pic=c.profile_pic,
                source=c.source,
                first_seen_at=c.first_seen_at,
                last_seen_at=c.last_seen_at,
                last_inbound_at=c.last_inbound_at,
                window=WindowRead(open=state.open, expires_at=state.expires_at),
                opted_out=c.opted_out,
                tags=tags[c.id],
                fields=fields[c.id],
                taken_over=is_taken_over(c, now),
                takeover_until=c.takeover_until if is_taken_over(c, now) else None,
            )
        )
    return found


async def list_contacts(
    workspace_id: uuid.UUID, query: ContactQuery, *, session: AsyncSession
) -> ContactPage:
    """A page of the workspace's contacts, most recently seen first."""
    where = conditions(workspace_id, query)
    total = await session.scalar(select(func.count()).select_from(Contact).where(*where))
    rows = await session.scalars(
        select(Contact)
        .where(*where)
        .order_by(Contact.last_seen_at.desc(), Contact.id)
        .limit(query.limit)
        .offset(query.offset)
    )
    items = await reads(session, list(rows.all()))
    return ContactPage(items=items, total=int(total or 0), limit=query.limit, offset=query.offset)


async def get_row(session: AsyncSession, workspace_id: uuid.UUID, contact_id: uuid.UUID) -> Contact:
    """The contact, or ``contact_not_found`` (another workspace's contact is not found too)."""
    row = await session.get(Contact, contact_id)
    if row is None or row.workspace_id != workspace_id:
        msg = f"no contact {contact_id} in this workspace"
        raise NotFoundError(msg, code="contact_not_found")
    return row


async def get_contact(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, *, session: AsyncSession
) -> ContactDetail:
    """One contact with its timeline: its events, the runs they started, and the messages
    sent to them (newest first, at most 200 of each)."""
    row = await get_row(session, workspace_id, contact_id)
    [read] = await reads(session, [row])
    timeline = await _timeline(session, row)
    return ContactDetail(
        **read.model_dump(),
        profile_error=row.profile_error,
        profile_fetched_at=row.profile_fetched_at,
        timeline=timeline,
    )


def _text(payload: Any) -> str | None:
    if isinstance(payload, dict):
        for key in ("text", "message", "title"):
            value = payload.get(key)
            if isinstance(value, str):
                return value[:1000]
    return None


async def _timeline(session: AsyncSession, contact: Contact) -> list[TimelineItem]:
    events = list(
        (
            await session.scalars(
                select(WebhookEvent)
                .join(ContactEvent, ContactEvent.event_id == WebhookEvent.id)
                .where(ContactEvent.contact_id == contact.id)
                .order_by(WebhookEvent.received_at.desc())
                .limit(_TIMELINE)
            )
        ).all()
    )
    items = [
        TimelineItem(
            type="event",
            at=e.received_at,
            id=e.id,
            kind=e.kind,
            direction="in",
            text=_text(e.payload),
            status=e.status,
        )
        for e in events
    ]
    runs = list(
        (
            await session.scalars(
                select(FlowExecution)
                .where(
                    FlowExecution.workspace_id == contact.workspace_id,
                    FlowExecution.trigger_event_id.in_([e.id for e in events]),
                )
                .order_by(FlowExecution.created_at.desc())
                .limit(_TIMELINE)
            )
        ).all()
    )
    items += [
        TimelineItem(
            type="run",
            at=r.created_at,
            id=r.id,
            kind=r.flow_name,
            status=r.status,
            execution_id=r.id,
        )
        for r in runs
    ]
    for m in await _messages(session, contact, [r.id for r in runs]):
        items.append(
            TimelineItem(
                type="message",
                at=m.created_at,
                id=m.id,
                kind=m.action,
                direction="out",
                text=_text(m.payload),
                status=m.status,
                execution_id=m.execution_id,
            )
        )
    return sorted(items, key=lambda i: i.at, reverse=True)


async def _messages(
    session: AsyncSession, contact: Contact, execution_ids: list[uuid.UUID]
) -> list[OutboxMessage]:
    """Ledger entries of the contact: sent to their id by the account, or by the runs their
    events started (a private reply goes to a comment id, not to the person's)."""
    accounts = select(InstagramAccount.id).where(
        InstagramAccount.workspace_id == contact.workspace_id,
        InstagramAccount.ig_user_id == contact.account_id,
    )
    mine = and_(OutboxMessage.account_id.in_(accounts), OutboxMessage.target == contact.igsid)
    which = or_(mine, OutboxMessage.execution_id.in_(execution_ids)) if execution_ids else mine
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.workspace_id == contact.workspace_id, which)
        .order_by(OutboxMessage.created_at.desc())
        .limit(_TIMELINE)
    )
    return list(rows.all())


async def update_contact(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, body: ContactUpdate, *, session: AsyncSession
) -> ContactDetail:
    """Apply tag, field and opt-out changes, all or none.

    Raises:
        NotFoundError: No such contact in the workspace.
        UserError: A tag name, field key or value is not allowed (the message names it).
    """
    row = await get_row(session, workspace_id, contact_id)
    if body.add_tags:
        await add_tags(session, workspace_id, [row.id], body.add_tags)
    if body.remove_tags:
        await remove_tags(session, workspace_id, [row.id], body.remove_tags)
    for key, value in body.fields.items():
        await set_field(session, workspace_id, row.id, key, value)
    if body.opted_out is not None and body.opted_out != row.opted_out:
        row.opted_out = body.opted_out
        row.opted_out_at = utcnow() if body.opted_out else None
    await session.commit()
    return await get_contact(workspace_id, contact_id, session=session)


async def bulk_tags(
    workspace_id: uuid.UUID, body: BulkTagRequest, *, session: AsyncSession
) -> BulkTagResult:
    """Tag or untag the contacts ``body`` names, in the database (never loaded in memory)."""
    where = (
        [Contact.workspace_id == workspace_id, Contact.id.in_(body.ids)]
        if body.ids is not None
        else conditions(workspace_id, body.filter or ContactFilter())
    )
    matched = int(
        await session.scalar(select(func.count()).select_from(Contact).where(*where)) or 0
    )
    names = sorted({check_tag_name(t, field="tags") for t in body.tags})
    if body.action == "add":
        await add_tags(session, workspace_id, [], names)
        tag_ids = await session.scalars(
            select(ContactTag.id).where(
                ContactTag.workspace_id == workspace_id, ContactTag.name.in_(names)
            )
        )
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for tag_id in tag_ids.all():
            chosen = select(Contact.id, _literal(tag_id), _now()).where(*where, true())
            await session.execute(
                insert(ContactTagLink)
                .from_select(["contact_id", "tag_id", "created_at"], chosen)
                .on_conflict_do_nothing(index_elements=["contact_id", "tag_id"])
            )
    else:
        tag_ids_query = select(ContactTag.id).where(
            ContactTag.workspace_id == workspace_id, ContactTag.name.in_(names)
        )
        await session.execute(
            delete(ContactTagLink).where(
                ContactTagLink.tag_id.in_(tag_ids_query),
                ContactTagLink.contact_id.in_(select(Contact.id).where(*where)),
            )
        )
    await session.commit()
    return BulkTagResult(matched=matched, tags=names)


def _literal(value: uuid.UUID) -> Any:
    from sqlalchemy import literal

    return literal(value, ContactTagLink.__table__.c.tag_id.type)


def _now() -> Any:
    from sqlalchemy import literal

    return literal(utcnow(), ContactTagLink.__table__.c.created_at.type)


# tag and field definitions


async def list_tags(workspace_id: uuid.UUID, *, session: AsyncSession) -> list[ContactTagRead]:
    """The workspace's tags by name, each with how many contacts have it."""
    rows = await session.execute(
        select(ContactTag, func.count(ContactTagLink.contact_id))
        .outerjoin(ContactTagLink, ContactTagLink.tag_id == ContactTag.id)
        .where(ContactTag.workspace_id == workspace_id)
        .group_by(ContactTag.id)
        .order_by(ContactTag.name)
    )
    return [
        ContactTagRead(id=t.id, name=t.name, contacts=n, created_at=t.created_at)
        for t, n in rows.tuples()
    ]


async def _tag(session: AsyncSession, workspace_id: uuid.UUID, tag_id: uuid.UUID) -> ContactTag:
    row = await session.get(ContactTag, tag_id)
    if row is None or row.workspace_id != workspace_id:
        msg = f"no tag {tag_id} in this workspace"
        raise NotFoundError(msg, code="contact_tag_not_found")
    return row


async def create_tag(
    workspace_id: uuid.UUID, name: str, *, session: AsyncSession
) -> ContactTagRead:
    """Define a tag. Raises ``ConflictError`` when the name is taken."""
    row = ContactTag(workspace_id=workspace_id, name=check_tag_name(name, field="name"))
    session.add(row)
    await _commit_unique(session, f"a tag named {row.name!r} exists already")
    return ContactTagRead(id=row.id, name=row.name, contacts=0, created_at=row.created_at)


async def update_tag(
    workspace_id: uuid.UUID, tag_id: uuid.UUID, name: str, *, session: AsyncSession
) -> ContactTagRead:
    """Rename a tag; flows that add it by the old name will create it again."""
    row = await _tag(session, workspace_id, tag_id)
    row.name = check_tag_name(name, field="name")
    await _commit_unique(session, f"a tag named {row.name!r} exists already")
    count = await session.scalar(
        select(func.count()).select_from(ContactTagLink).where(ContactTagLink.tag_id == row.id)
    )
    return ContactTagRead(
        id=row.id, name=row.name, contacts=int(count or 0), created_at=row.created_at
    )


async def delete_tag(workspace_id: uuid.UUID, tag_id: uuid.UUID, *, session: AsyncSession) -> None:
    """Delete a tag and remove it from every contact."""
    row = await _tag(session, workspace_id, tag_id)
    await session.execute(delete(ContactTagLink).where(ContactTagLink.tag_id == row.id))
    await session.delete(row)
    await session.commit()


async def _commit_unique(session: AsyncSession, message: str) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ConflictError(message, code="contact_definition_exists") from exc


def _field_read(row: ContactField) -> ContactFieldRead:
    return ContactFieldRead(
        id=row.id,
        key=row.key,
        label=row.label,
        type=row.type,
        choices=list(row.choices or []),
        created_at=row.created_at,
    )


async def list_fields(workspace_id: uuid.UUID, *, session: AsyncSession) -> list[ContactFieldRead]:
    """The workspace's custom fields by key."""
    rows = await session.scalars(
        select(ContactField)
        .where(ContactField.workspace_id == workspace_id)
        .order_by(ContactField.key)
    )
    return [_field_read(r) for r in rows.all()]


async def create_field(
    workspace_id: uuid.UUID, body: ContactFieldCreate, *, session: AsyncSession
) -> ContactFieldRead:
    """Define a custom field. Raises ``ConflictError`` when the key is taken."""
    row = ContactField(
        workspace_id=workspace_id,
        key=body.key,
        label=body.label.strip(),
        type=body.type.value,
        choices=[c.strip() for c in body.choices],
    )
    session.add(row)
    await _commit_unique(session, f"a field with key {body.key!r} exists already")
    return _field_read(row)


async def _field(
    session: AsyncSession, workspace_id: uuid.UUID, field_id: uuid.UUID
) -> ContactField:
    row = await session.get(ContactField, field_id)
    if row is None or row.workspace_id != workspace_id:
        msg = f"no contact field {field_id} in this workspace"
        raise NotFoundError(msg, code="contact_field_not_found")
    return row


async def update_field(
    workspace_id: uuid.UUID, field_id: uuid.UUID, body: ContactFieldUpdate, *, session: AsyncSession
) -> ContactFieldRead:
    """Change a field's label or choices; values already stored are kept as they are."""
    row = await _field(session, workspace_id, field_id)
    if body.label is not None:
        row.label = body.label.strip()
    if body.choices is not None:
        if row.type != FieldType.CHOICE:
            msg = f"field 'choices': only choice fields have choices, {row.key!r} is {row.type}"
            raise UserError(msg, code="contact_field_invalid")
        choices = [c.strip() for c in body.choices]
        if (
            not choices
            or any(not c or len(c) > 100 for c in choices)
            or len(set(choices)) != len(choices)
        ):
            msg = "field 'choices': 1 to 100 different choices of 1 to 100 characters"
            raise UserError(msg, code="contact_field_invalid")
        row.choices = choices
    await session.commit()
    return _field_read(row)


async def delete_field(
    workspace_id: uuid.UUID, field_id: uuid.UUID, *, session: AsyncSession
) -> None:
    """Delete a field and every contact's value of it."""
    row = await _field(session, workspace_id, field_id)
    await session.execute(delete(ContactFieldValue).where(ContactFieldValue.field_id == row.id))
    await session.delete(row)
    await session.commit()
