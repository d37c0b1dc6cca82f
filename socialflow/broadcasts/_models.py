"""Tables of broadcasts: one message to a segment of contacts, and what became of each
recipient (the resumable record of the send)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = ["Broadcast", "BroadcastRecipient", "BroadcastStatus", "RecipientStatus"]


class BroadcastStatus(StrEnum):
    """Where a broadcast stands."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RecipientStatus(StrEnum):
    """What became of one recipient."""

    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


class Broadcast(Base):
    """A message to a segment of one connected account's contacts, now or at a time."""

    __tablename__ = "broadcast"
    __table_args__ = (Index("ix_broadcast_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column()
    # the connected account (instagram_account.id) the message goes out from
    account_id: Mapped[uuid.UUID] = mapped_column()
    name: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    quick_replies: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    buttons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    segment: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=BroadcastStatus.DRAFT)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    prefect_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # the last contact id whose page was handled: a resumed run starts after it
    cursor: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # contacts in the segment when the send started
    total: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(300), default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BroadcastRecipient(Base):
    """One contact of a broadcast: sent, skipped (and why) or failed."""

    __tablename__ = "broadcast_recipient"
    __table_args__ = (Index("ix_broadcast_recipient_status", "broadcast_id", "status", "reason"),)

    broadcast_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("broadcast.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    detail: Mapped[str | None] = mapped_column(String(300), default=None)
    ledger_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    at: Mapped[datetime] = mapped_column(default=utcnow)
