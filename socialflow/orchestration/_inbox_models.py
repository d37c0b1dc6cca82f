"""Tables of the execution path: the durable event inbox and the active-flow index.

``webhook_event`` holds every accepted trigger event before its caller gets an answer; its
unique ``dedupe_key`` makes a redelivered event a no-op. ``flow_trigger`` is the engine's own
view of which published version of each flow is active and what starts it, written when a
version is activated, so the dispatcher never reads the API's tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = ["EventOutcome", "EventStatus", "FlowTrigger", "WebhookEvent"]


class EventStatus(StrEnum):
    """Where an inbox event is."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    IGNORED = "ignored"
    FAILED = "failed"


class WebhookEvent(Base):
    """One accepted trigger event, stored before it is answered."""

    __tablename__ = "webhook_event"
    __table_args__ = (
        Index("ix_webhook_event_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_event_conversation_key_status", "conversation_key", "status"),
        Index("ix_webhook_event_received_at", "received_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    source: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(100))
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    flow_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    account_id: Mapped[str | None] = mapped_column(String(100), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    raw_body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    headers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(default=None)
    # events of one conversation run in (conversation_at, conversation_seq, id) order: when the
    # event happened, then its position in the body it came in; copied to its executions
    conversation_key: Mapped[str | None] = mapped_column(String(200), default=None)
    conversation_at: Mapped[datetime | None] = mapped_column(default=None)
    conversation_seq: Mapped[int | None] = mapped_column(default=None)


class FlowTrigger(Base):
    """The active version of a flow, as the dispatcher and workers need it."""

    __tablename__ = "flow_trigger"

    flow_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    flow_name: Mapped[str] = mapped_column(String(200))
    version_id: Mapped[uuid.UUID]
    version_number: Mapped[int]
    trigger_kind: Mapped[str] = mapped_column(String(200), index=True)
    trigger_config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    graph: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    # set when the flow is deleted (``active`` is off for a paused flow too)
    removed: Mapped[bool] = mapped_column(default=False)
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    secret_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    secret_key_id: Mapped[str | None] = mapped_column(String(64), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EventOutcome(Base):
    """Why an event did not run a flow that could have taken it.

    One row per (event, flow) the dispatcher offered the event to and did not queue a run
    for, with the reason the deciding code gave (``socialflow.nodes.Rejection``, or the
    dispatcher's own: ``flow_paused``). A flow that ran is not written here: its execution
    (``flow_execution.trigger_event_id``) is the record. Pruned with the event.
    """

    __tablename__ = "event_outcome"

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    flow_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    flow_name: Mapped[str] = mapped_column(String(200))
    version_number: Mapped[int]
    code: Mapped[str] = mapped_column(String(40))
    message: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(String(100), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
