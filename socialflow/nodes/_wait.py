"""Conversation steps that wait: what a node asks the engine to wait for, and the reply.

A node that asks a question raises ``AwaitReply`` after sending it; the engine records the
wait, ends the run's hold on its worker and resumes the run when the contact answers (or the
wait times out), calling the same node again with ``NodeContext.reply`` set. Nodes never see
how the wait is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["AwaitReply", "Reply", "WaitRequest"]


class WaitRequest(BaseModel):
    """What a waiting node waits for: the next message of one contact on one account."""

    account_id: str = Field(min_length=1, max_length=100, description="ig_user_id that asked.")
    contact_id: str = Field(min_length=1, max_length=100, description="The contact's IGSID.")
    expires_at: datetime = Field(description="When the wait times out (UTC).")
    window_expires_at: datetime | None = Field(
        default=None, description="When Meta's 24-hour messaging window closes, if known."
    )
    expects: str = Field(default="text", max_length=40, description="The validator's kind.")
    question: str = Field(default="", max_length=2000, description="The question, for people.")
    #: what the node needs again when it is resumed (tries so far, …), JSON only
    state: dict[str, Any] = Field(default_factory=dict)


class AwaitReply(Exception):
    """Raised by a node that sent a question and now waits for the contact's reply."""

    def __init__(self, request: WaitRequest) -> None:
        super().__init__(f"waiting for a reply from {request.contact_id}")
        self.request = request


class Reply(BaseModel):
    """What resumed a waiting node: the contact's message or button tap, or the timeout."""

    kind: Literal["message", "postback", "timeout"]
    text: str | None = None
    payload: str | None = Field(default=None, description="Quick-reply or postback payload.")
    title: str | None = Field(default=None, description="A postback button's title.")
    occurred_at: datetime | None = None
    event_id: str | None = None
    #: the state the node put in its ``WaitRequest``
    state: dict[str, Any] = Field(default_factory=dict)
