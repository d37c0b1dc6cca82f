"""Request and answer bodies of the broadcast routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from socialflow.broadcasts import BroadcastFields, Progress, Segment

__all__ = [
    "BroadcastCreate",
    "BroadcastDetail",
    "BroadcastPage",
    "BroadcastRead",
    "BroadcastSend",
    "PreviewRequest",
    "RecipientPage",
    "RecipientRead",
]


class BroadcastCreate(BroadcastFields):
    """A new broadcast (a draft until it is sent)."""


class PreviewRequest(BaseModel):
    """A segment of an account to count."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID = Field(description="The Instagram account (its Socialflow id).")
    segment: Segment = Field(default_factory=Segment, description="Who would receive it.")


class BroadcastSend(BaseModel):
    """When to send: now (``at`` empty or past) or at a time."""

    model_config = ConfigDict(extra="forbid")

    at: datetime | None = Field(default=None, description="When to send (ISO); empty: now.")


class BroadcastRead(BaseModel):
    """A broadcast and where it stands."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    account_id: uuid.UUID
    name: str
    text: str
    quick_replies: list[dict[str, Any]]
    buttons: list[dict[str, Any]]
    segment: dict[str, Any]
    status: str
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    prefect_flow_run_id: uuid.UUID | None
    total: int | None
    error: str | None
    created_at: datetime


class BroadcastDetail(BroadcastRead):
    """A broadcast with its progress."""

    progress: Progress


class BroadcastPage(BaseModel):
    """A page of broadcasts, newest first."""

    items: list[BroadcastRead]
    total: int
    limit: int
    offset: int


class RecipientRead(BaseModel):
    """What became of one recipient."""

    contact_id: uuid.UUID
    username: str | None
    igsid: str | None
    status: str
    reason: str | None
    detail: str | None
    ledger_id: uuid.UUID | None
    at: datetime


class RecipientPage(BaseModel):
    """A page of recipients by contact id; ``next_after`` continues it."""

    items: list[RecipientRead]
    next_after: uuid.UUID | None
