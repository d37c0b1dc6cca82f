"""Flows (an editable draft) and their immutable published versions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = ["Flow", "FlowReplay", "FlowStatus", "FlowVersion"]


class FlowStatus(StrEnum):
    """Whether a flow's active version runs."""

    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"


class Flow(Base):
    """A flow: its draft graph and which published version is active."""

    __tablename__ = "flow"
    __table_args__ = (Index("ix_flow_workspace_name", "workspace_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=FlowStatus.DRAFT)
    draft: Mapped[dict[str, Any]] = mapped_column(JSONType)
    active_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("flow_version.id", ondelete="SET NULL", use_alter=True), default=None
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FlowVersion(Base):
    """A published, immutable graph of a flow."""

    __tablename__ = "flow_version"
    __table_args__ = (UniqueConstraint("flow_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    graph: Mapped[dict[str, Any]] = mapped_column(JSONType)
    note: Mapped[str] = mapped_column(Text, default="")
    published_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    prefect_deployment_id: Mapped[uuid.UUID | None] = mapped_column(default=None)


class FlowReplay(Base):
    """Past events replayed through a flow's draft, in the sandbox: which runs it queued.

    ``items`` holds, per replayed event (or past execution), the published run it is compared
    with, the draft's run, or the reason the draft's trigger would not take the event. The
    comparison is made when it is read, from the runs' records and the send ledger.
    """

    __tablename__ = "flow_replay"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow.id", ondelete="CASCADE"), index=True
    )
    draft_version_id: Mapped[uuid.UUID] = mapped_column(
        doc="The snapshot of the draft every replayed run used."
    )
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
