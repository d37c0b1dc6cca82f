"""Reading and changing contacts: tags and fields by name, and the view templates see.

``ContactWriter`` is what the API and a run share: add or remove tags by name (a tag a flow
names that the workspace has not defined yet is created, as a person typing it would),
set a custom field by key with its value checked against the field's type. ``RunContact`` is
one run's contact: the ``contact`` of its templates, kept current as its nodes change it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import and_, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.contacts._fields import FieldValueError, check_value, value_text, window
from socialflow.contacts._models import (
    Contact,
    ContactField,
    ContactFieldValue,
    ContactTag,
    ContactTagLink,
    contact_id,
)
from socialflow.contacts._upsert import EventRef, sighting
from socialflow.core.db import Database, utcnow
from socialflow.core.errors import UserError

__all__ = [
    "TAG_NAME",
    "RunContact",
    "add_tags",
    "check_field",
    "check_tag_name",
    "contact_view",
    "remove_tags",
    "set_field",
]

#: what a tag may be called: letters, digits, spaces and ``_ - . :``, 1 to 60 characters
TAG_NAME = re.compile(r"^[\w][\w .:-]{0,59}$")
_MAX_TAGS_AT_ONCE = 50


def check_tag_name(name: str, *, field: str = "tag") -> str:
    """``name`` stripped, or a ``UserError`` saying what a tag name may be."""
    clean = name.strip()
    if not TAG_NAME.match(clean):
        msg = (
            f"field {field!r}: tag {clean[:60]!r} is not allowed; a tag is 1 to 60 letters, "
            "digits, spaces or _ - . : and starts with a letter or digit"
        )
        raise UserError(msg, code="contact_tag_invalid")
    return clean


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def _tag_ids(
    session: AsyncSession, workspace_id: uuid.UUID, names: list[str], *, create: bool
) -> dict[str, uuid.UUID]:
    if create and names:
        insert = _insert(session)
        now = utcnow()
        new = [
            {"id": uuid.uuid4(), "workspace_id": workspace_id, "name": n, "created_at": now}
            for n in names
        ]
        await session.execute(
            insert(ContactTag)
            .values(new)
            .on_conflict_do_nothing(index_elements=["workspace_id", "name"])
        )
    rows = await session.execute(
        select(ContactTag.name, ContactTag.id).where(
            ContactTag.workspace_id == workspace_id, ContactTag.name.in_(names)
        )
    )
    return dict(rows.tuples().all())


def _names(names: Iterable[str]) -> list[str]:
    clean = sorted({check_tag_name(n) for n in names})
    if len(clean) > _MAX_TAGS_AT_ONCE:
        msg = f"field 'tags': at most {_MAX_TAGS_AT_ONCE} tags at once, got {len(clean)}"
        raise UserError(msg, code="contact_tag_invalid")
    return clean


async def add_tags(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    contact_ids: list[uuid.UUID],
    names: Iterable[str],
) -> list[str]:
    """Tag contacts (creating tags not defined yet); tagging twice changes nothing.

    Returns:
        The tag names, cleaned.
    """
    clean = _names(names)
    ids = await _tag_ids(session, workspace_id, clean, create=True)
    links = [
        {"contact_id": c, "tag_id": t, "created_at": utcnow()}
        for c in contact_ids
        for t in ids.values()
    ]
    if links:
        insert = _insert(session)
        await session.execute(
            insert(ContactTagLink)
            .values(links)
            .on_conflict_do_nothing(index_elements=["contact_id", "tag_id"])
        )
    return clean


async def remove_tags(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    contact_ids: list[uuid.UUID],
    names: Iterable[str],
) -> list[str]:
    """Untag contacts; a tag they do not have, or that does not exist, changes nothing."""
    clean = _names(names)
    ids = await _tag_ids(session, workspace_id, clean, create=False)
    if ids and contact_ids:
        await session.execute(
            delete(ContactTagLink).where(
                ContactTagLink.contact_id.in_(contact_ids),
                ContactTagLink.tag_id.in_(list(ids.values())),
            )
        )
    return clean


async def check_field(
    session: AsyncSession, workspace_id: uuid.UUID, key: str, value: Any
) -> tuple[ContactField, Any]:
    """The field ``key`` of the workspace and ``value`` in its canonical form (None: clear).

    Raises:
        UserError: No field ``key`` is defined (``contact_field_unknown``), or the value does
            not fit the field's type (``contact_field_invalid``, naming field and type).
    """
    field = await session.scalar(
        select(ContactField).where(
            ContactField.workspace_id == workspace_id, ContactField.key == key
        )
    )
    if field is None:
        msg = f"no contact field {key[:40]!r} is defined in this workspace"
        raise UserError(msg, code="contact_field_unknown")
    if value is None or (isinstance(value, str) and not value.strip()):
        return field, None
    try:
        return field, check_value(field.type, value, field.choices)
    except FieldValueError as exc:
        msg = f"contact field {key!r} ({field.type}): {exc}"
        raise UserError(msg, code="contact_field_invalid") from exc


async def set_field(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    key: str,
    value: Any,
) -> Any:
    """Set (or clear, with None or empty text) one custom field of a contact.

    Returns:
        The value stored, in its canonical form (None when cleared).

    Raises:
        UserError: As ``check_field``.
    """
    field, clean = await check_field(session, workspace_id, key, value)
    if clean is None:
        await session.execute(
            delete(ContactFieldValue).where(
                ContactFieldValue.contact_id == contact_id,
                ContactFieldValue.field_id == field.id,
            )
        )
        return None
    insert = _insert(session)
    statement = insert(ContactFieldValue).values(
        contact_id=contact_id,
        field_id=field.id,
        value=clean,
        value_text=value_text(clean),
        updated_at=utcnow(),
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["contact_id", "field_id"],
            set_={
                "value": statement.excluded.value,
                "value_text": statement.excluded.value_text,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )
    return clean


async def contact_view(session: AsyncSession, contact: Contact) -> dict[str, Any]:
    """The contact as templates see it: profile, times, ``tags``, ``fields`` by key and the
    24-hour ``window`` (``open``, ``expires_at``)."""
    tags = await session.scalars(
        select(ContactTag.name)
        .join(ContactTagLink, ContactTagLink.tag_id == ContactTag.id)
        .where(ContactTagLink.contact_id == contact.id)
        .order_by(ContactTag.name)
    )
    # every field the workspace defines: one the contact has no value for reads as None
    fields = await session.execute(
        select(ContactField.key, ContactFieldValue.value)
        .outerjoin(
            ContactFieldValue,
            and_(
                ContactFieldValue.field_id == ContactField.id,
                ContactFieldValue.contact_id == contact.id,
            ),
        )
        .where(ContactField.workspace_id == contact.workspace_id)
    )
    state = window(contact.last_inbound_at, utcnow())
    return {
        "id": str(contact.id),
        "igsid": contact.igsid,
        "account_id": contact.account_id,
        "username": contact.username,
        "name": contact.name,
        "profile_pic": contact.profile_pic,
        "source": contact.source,
        "first_seen_at": contact.first_seen_at.isoformat(),
        "last_seen_at": contact.last_seen_at.isoformat(),
        "last_inbound_at": contact.last_inbound_at.isoformat() if contact.last_inbound_at else None,
        "opted_out": contact.opted_out,
        "tags": list(tags.all()),
        "fields": dict(fields.tuples().all()),
        "window": {
            "open": state.open,
            "expires_at": state.expires_at.isoformat() if state.expires_at else None,
        },
    }


class RunContact:
    """The contact of one run: its template view, and tag and field changes by its nodes.

    In a sandboxed run (an editor's test) changes are applied to the view only: nothing is
    written, as nothing is sent.

    Args:
        db: The application database.
        workspace_id: The run's workspace.
        row_id: The contact's id (None when the contact is not stored: a test run's sample).
        view: The view as loaded.
        sandbox: Whether writes stay in the view.
    """

    def __init__(
        self,
        db: Database,
        workspace_id: uuid.UUID,
        row_id: uuid.UUID | None,
        view: dict[str, Any],
        *,
        sandbox: bool,
    ) -> None:
        self.db = db
        self.workspace_id = workspace_id
        self.row_id = row_id
        self.view = view
        self.sandbox = sandbox

    @classmethod
    async def load(
        cls,
        db: Database,
        workspace_id: uuid.UUID,
        trigger: Mapping[str, Any],
        *,
        sandbox: bool,
    ) -> RunContact | None:
        """The contact of the person who caused ``trigger`` (an Instagram event payload), or
        None when the trigger names nobody."""
        account = trigger.get("account_id")
        if not isinstance(account, str) or not account:
            return None
        seen = sighting(EventRef(uuid.uuid4(), account, trigger))
        if seen is None:
            return None
        cid = contact_id(workspace_id, account, seen.igsid)
        async with db.sessionmaker() as session:
            row = await session.get(Contact, cid)
            if row is not None and row.workspace_id == workspace_id:
                return cls(db, workspace_id, cid, await contact_view(session, row), sandbox=sandbox)
            keys = await session.scalars(
                select(ContactField.key).where(ContactField.workspace_id == workspace_id)
            )
            fields: dict[str, Any] = dict.fromkeys(keys.all())
        now = seen.at.isoformat()
        state = window(seen.at if seen.inbound else None, utcnow())
        view: dict[str, Any] = {
            "id": None,
            "igsid": seen.igsid,
            "account_id": account,
            "username": seen.username,
            "name": None,
            "profile_pic": None,
            "source": seen.source.value,
            "first_seen_at": now,
            "last_seen_at": now,
            "last_inbound_at": now if seen.inbound else None,
            "opted_out": False,
            "tags": [],
            "fields": fields,
            "window": {
                "open": state.open,
                "expires_at": state.expires_at.isoformat() if state.expires_at else None,
            },
        }
        return cls(db, workspace_id, None, view, sandbox=sandbox)

    def _stored(self) -> uuid.UUID:
        if self.row_id is None:
            msg = "this run's contact is not stored (a sample event), so it cannot be changed"
            raise UserError(msg, code="contact_missing")
        return self.row_id

    async def add_tags(self, names: list[str]) -> list[str]:
        """Tag the contact; returns the tags added (cleaned)."""
        if self.sandbox:
            clean = _names(names)
        else:
            async with self.db.sessionmaker() as session:
                clean = await add_tags(session, self.workspace_id, [self._stored()], names)
                await session.commit()
        self.view = {**self.view, "tags": sorted({*self.view["tags"], *clean})}
        return clean

    async def remove_tags(self, names: list[str]) -> list[str]:
        """Untag the contact; returns the tags removed (cleaned)."""
        if self.sandbox:
            clean = _names(names)
        else:
            async with self.db.sessionmaker() as session:
                clean = await remove_tags(session, self.workspace_id, [self._stored()], names)
                await session.commit()
        self.view = {**self.view, "tags": [t for t in self.view["tags"] if t not in clean]}
        return clean

    async def set_field(self, key: str, value: Any) -> Any:
        """Set one custom field; returns the value stored (checked against the field's type)."""
        async with self.db.sessionmaker() as session:
            if self.sandbox:
                stored = (await check_field(session, self.workspace_id, key, value))[1]
            else:
                stored = await set_field(session, self.workspace_id, self._stored(), key, value)
                await session.commit()
        self.view = {**self.view, "fields": {**self.view["fields"], key: stored}}
        return stored
