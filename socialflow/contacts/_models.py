"""Tables of contacts: the people each connected account meets, their tags and custom fields.

A contact is one person as one connected account of one workspace sees them: the key is
(workspace, account's ig_user_id, Instagram-scoped user id). Its id is derived from that key
(``contact_id``), so the dispatcher can link an event to its contact in the same statement
batch that creates the contact, without reading it back.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = [
    "Contact",
    "ContactEvent",
    "ContactField",
    "ContactFieldValue",
    "ContactSource",
    "ContactTag",
    "ContactTagLink",
    "FieldType",
    "contact_id",
]

_NAMESPACE = uuid.UUID("6f1d3c52-9a7e-4b0b-8a55-0c6e1f1c7a11")


def contact_id(workspace_id: uuid.UUID, account_id: str, igsid: str) -> uuid.UUID:
    """The id of the contact ``igsid`` of account ``account_id`` in ``workspace_id``."""
    return uuid.uuid5(_NAMESPACE, f"{workspace_id}:{account_id}:{igsid}")


class ContactSource(StrEnum):
    """How a person first reached the account."""

    COMMENT = "comment"
    LIVE_COMMENT = "live_comment"
    DM = "dm"
    STORY_REPLY = "story_reply"
    STORY_MENTION = "story_mention"
    POSTBACK = "postback"
    REFERRAL = "referral"
    AD = "ad"


class FieldType(StrEnum):
    """The types a custom field can have; each value is checked against its field's type."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    EMAIL = "email"
    PHONE = "phone"
    URL = "url"
    CHOICE = "choice"


class Contact(Base):
    """One person as one connected Instagram account of a workspace sees them."""

    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("workspace_id", "account_id", "igsid"),
        Index("ix_contact_workspace_last_seen", "workspace_id", "last_seen_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # the connected professional account (instagram_account.ig_user_id)
    account_id: Mapped[str] = mapped_column(String(64))
    # the person's Instagram-scoped id for that account
    igsid: Mapped[str] = mapped_column(String(64))
    username: Mapped[str | None] = mapped_column(String(100), default=None)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    profile_pic: Mapped[str | None] = mapped_column(Text, default=None)
    profile_fetched_at: Mapped[datetime | None] = mapped_column(default=None)
    profile_error: Mapped[str | None] = mapped_column(String(300), default=None)
    source: Mapped[str] = mapped_column(String(30))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the person's last message, postback or referral: opens Meta's 24-hour window
    last_inbound_at: Mapped[datetime | None] = mapped_column(default=None)
    opted_out: Mapped[bool] = mapped_column(default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(default=None)
    # a person of the workspace took the conversation over: flows skip this contact from
    # takeover_at until takeover_until (None: until released)
    takeover_at: Mapped[datetime | None] = mapped_column(default=None)
    takeover_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactTag(Base):
    """A tag a workspace defined."""

    __tablename__ = "contact_tag"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactTagLink(Base):
    """A tag on a contact."""

    __tablename__ = "contact_tag_link"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact_tag.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactField(Base):
    """A typed custom field a workspace defined (``key`` is how templates name it)."""

    __tablename__ = "contact_field"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    key: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    choices: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContactFieldValue(Base):
    """A contact's value of one custom field: the typed value, and its text for filtering."""

    __tablename__ = "contact_field_value"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    field_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact_field.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    value: Mapped[Any] = mapped_column(JSONType)
    value_text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ContactEvent(Base):
    """An inbox event a contact appeared in: the contact's timeline, and what erasing touches."""

    __tablename__ = "contact_event"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True
    )
    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
