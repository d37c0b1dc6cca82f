"""Tables of conversation waits: runs parked until a contact answers, and the workspace's
global keywords, which never answer a wait."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = ["ConversationWait", "GlobalKeyword", "WaitStatus"]


class WaitStatus(StrEnum):
    """Where a wait is: ``waiting`` for the contact; then ``answered`` (a message or button
    tap resumed it), ``timed_out`` (its deadline resumed it) or ``cancelled`` (a global
    keyword, or the run was cancelled)."""

    WAITING = "waiting"
    ANSWERED = "answered"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class ConversationWait(Base):
    """One wait of a run for one contact's reply on one account.

    A run that waits again (a retry prompt) gets a new row; the latest row of an execution
    says how it resumes. ``outputs`` holds the outputs of the nodes completed before the wait,
    which the continuation reuses instead of running them again.
    """

    __tablename__ = "conversation_wait"
    __table_args__ = (
        # the dispatcher's lookup: the open wait of a contact on an account
        Index("ix_conversation_wait_contact", "account_id", "contact_id", "status"),
        # the timeout sweep: open waits by deadline
        Index("ix_conversation_wait_status_expires", "status", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_execution.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    flow_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    node_id: Mapped[str] = mapped_column(String(64))
    #: the connected account's ig_user_id and the contact's Instagram-scoped id
    account_id: Mapped[str] = mapped_column(String(100))
    contact_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default=WaitStatus.WAITING)
    expects: Mapped[str] = mapped_column(String(40), default="text")
    question: Mapped[str] = mapped_column(Text, default="")
    #: what the node put in its request, handed back to it with the reply
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: the reply (``socialflow.nodes.Reply``) once answered or timed out
    reply: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    #: the inbound event that answered or cancelled it
    event_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    expires_at: Mapped[datetime]
    window_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)


class GlobalKeyword(Base):
    """A word that, sent alone by a contact, goes to the workspace's flows even while a run
    waits for that contact's answer (and ends that wait), e.g. "stop"."""

    __tablename__ = "global_keyword"
    __table_args__ = (UniqueConstraint("workspace_id", "keyword"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    #: stored case-folded and trimmed; a message matches when it is the keyword alone
    keyword: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
