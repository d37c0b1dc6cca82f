"""Tables of publishing: uploaded post media and the posts of the content calendar."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = ["MediaKind", "Post", "PostMedia", "PostStatus", "PostType"]


class PostStatus(StrEnum):
    """Where a post stands. ``publishing`` is held under a lease (``claimed_at``)."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    PUBLISHED = "published"
    FAILED = "failed"


class PostType(StrEnum):
    """What Instagram publishes."""

    IMAGE = "image"
    CAROUSEL = "carousel"
    REEL = "reel"
    STORY = "story"


class MediaKind(StrEnum):
    """An uploaded file's kind, by content."""

    IMAGE = "image"
    VIDEO = "video"


class PostMedia(Base):
    """One uploaded image or video of a workspace, kept under a generated name.

    ``problems`` lists what Meta would refuse (format, size, aspect ratio, codec, duration),
    found when it was uploaded; a post using it cannot be scheduled while it has any.
    """

    __tablename__ = "post_media"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(120), unique=True)
    storage_url: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    #: what was found: container, codecs, frame rate, sample rate …
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    """A post of the content calendar and everything its publishing recorded.

    Publishing records each step before the next: ``containers`` (every container id as soon
    as Meta gave it), ``publish_started_at`` (set just before ``media_publish``), then
    ``ig_media_id`` and ``permalink``. An attempt that died resumes from there: a container
    Meta shows as PUBLISHED is never published again.
    """

    __tablename__ = "post"
    __table_args__ = (
        Index("ix_post_workspace_scheduled", "workspace_id", "scheduled_at"),
        Index("ix_post_status_scheduled", "status", "scheduled_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("instagram_account.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(20))
    caption: Mapped[str] = mapped_column(Text, default="")
    alt_text: Mapped[str] = mapped_column(Text, default="")
    collaborators: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: post_media ids in order (a carousel's items; one for the other types)
    media_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    cover_media_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(20), default=PostStatus.DRAFT)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    #: why the post waits (the publishing quota, Meta still processing), in words
    waiting_reason: Mapped[str | None] = mapped_column(Text, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(60), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    #: [{"role": "child" | "parent" | "single", "index": n, "id": container id}]
    containers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    containers_created_at: Mapped[datetime | None] = mapped_column(default=None)
    publish_started_at: Mapped[datetime | None] = mapped_column(default=None)
    ig_media_id: Mapped[str | None] = mapped_column(String(64), default=None)
    permalink: Mapped[str | None] = mapped_column(Text, default=None)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    prefect_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    #: a post a flow made (``instagram.publish``): one per run and node, whatever the retries
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
