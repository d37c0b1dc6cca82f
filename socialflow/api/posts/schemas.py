"""What the post endpoints read and write."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from socialflow.publishing import PostFields, PostType

__all__ = [
    "MediaRead",
    "Moment",
    "PostCreate",
    "PostPage",
    "PostRead",
    "PostSchedule",
    "PostUpdate",
]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return value
    if value.tzinfo is None:
        msg = "give a time zone, e.g. 2026-12-24T09:00:00Z"
        raise ValueError(msg)
    if not 2000 <= value.year <= 2999:
        msg = "must be a time between the years 2000 and 2999"
        raise ValueError(msg)
    return value


#: a query's date-time: with a time zone, within years the database can compare
Moment = Annotated[datetime, AfterValidator(_aware)]


class Problem(BaseModel):
    """Something Meta would refuse, with the field to change."""

    field: str
    code: str
    message: str


class MediaRead(BaseModel):
    """An uploaded image or video, as Pillow or PyAV read it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str = Field(description="image or video.")
    filename: str
    content_type: str
    size: int
    width: int | None
    height: int | None
    duration_seconds: float | None
    details: dict[str, Any] = Field(description="Format, codecs, frame rate, sample rate …")
    problems: list[Problem] = Field(description="What Instagram would refuse in this file.")
    created_at: datetime


class PostCreate(PostFields):
    """A new post: a draft, or scheduled at once when ``scheduled_at`` is given and it has no
    problems (otherwise it stays a draft and lists them)."""

    scheduled_at: datetime | None = Field(
        default=None, description="When to publish (with a time zone); empty: a draft."
    )

    _tz = field_validator("scheduled_at")(_aware)


class PostUpdate(BaseModel):
    """Fields to change on a draft or scheduled post."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID | None = None
    type: PostType | None = None
    caption: str | None = Field(default=None, max_length=10_000)
    alt_text: str | None = Field(default=None, max_length=5_000)
    collaborators: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=10
    )
    media_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=20)
    cover_media_id: uuid.UUID | None = None


class PostSchedule(BaseModel):
    """When to publish (schedule or reschedule)."""

    model_config = ConfigDict(extra="forbid")

    scheduled_at: datetime = Field(description="When to publish, with a time zone.")

    _tz = field_validator("scheduled_at")(_aware)


class PostRead(BaseModel):
    """A post and where its publishing stands."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_id: uuid.UUID
    type: str
    caption: str
    alt_text: str
    collaborators: list[str]
    media_ids: list[uuid.UUID]
    cover_media_id: uuid.UUID | None
    scheduled_at: datetime | None
    status: str = Field(description="draft, scheduled, publishing, published or failed.")
    problems: list[Problem] = Field(description="What Instagram would refuse, per field.")
    waiting_reason: str | None = Field(
        description="Why a scheduled post waits (the publishing quota, Meta processing)."
    )
    next_attempt_at: datetime | None
    error_code: str | None
    error: str | None = Field(description="Why publishing failed, in words (Meta's reason).")
    ig_media_id: str | None
    permalink: str | None
    published_at: datetime | None
    attempts: int
    prefect_flow_run_id: uuid.UUID | None = Field(
        description="The Prefect run of the next (or last) attempt."
    )
    created_at: datetime
    updated_at: datetime


class PostPage(BaseModel):
    """A page of posts, oldest scheduled first."""

    items: list[PostRead]
    total: int
    limit: int
    offset: int
