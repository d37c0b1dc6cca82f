"""What the webhook trigger's routes answer."""

from __future__ import annotations

import uuid

from pydantic import BaseModel

__all__ = ["HookAccepted", "WebhookInfo"]


class HookAccepted(BaseModel):
    """The event was stored; the flow runs shortly."""

    event_id: uuid.UUID
    duplicate: bool


class WebhookInfo(BaseModel):
    """Where and how to call a flow's webhook."""

    url: str
    auth: str
    methods: list[str]
    secret: str
