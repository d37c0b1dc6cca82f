"""Request and response bodies of the conversation routes."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from socialflow.orchestration import MAX_KEYWORDS, keyword_of

__all__ = ["KeywordsRead", "KeywordsUpdate", "WaitPage", "WaitQuery", "WaitRead"]


class KeywordsUpdate(BaseModel):
    """The workspace's global keywords, replaced as a whole."""

    model_config = {"extra": "forbid"}

    keywords: list[str] = Field(
        max_length=MAX_KEYWORDS,
        description=(
            "Words that, sent alone by a contact, go to the workspace's flows even while a run "
            f"waits for that contact's answer, and end that wait (e.g. stop). At most "
            f"{MAX_KEYWORDS}, each 1 to 100 characters, compared case-insensitively."
        ),
    )

    @field_validator("keywords")
    @classmethod
    def _clean(cls, value: list[str]) -> list[str]:
        cleaned: list[str] = []
        for n, word in enumerate(value):
            if any(unicodedata.category(c) in ("Cc", "Cs") for c in word.strip()):
                msg = f"keywords[{n}] holds a control character"
                raise ValueError(msg)
            folded = keyword_of(word[:1000])
            if folded is None:
                msg = f"keywords[{n}] must have 1 to 100 characters (after trimming)"
                raise ValueError(msg)
            if folded not in cleaned:
                cleaned.append(folded)
        return cleaned


class KeywordsRead(BaseModel):
    """The workspace's global keywords, as stored (trimmed, lower case)."""

    keywords: list[str]


class WaitQuery(BaseModel):
    """Which waits to list."""

    status: Literal["waiting", "answered", "timed_out", "cancelled"] | None = Field(
        default="waiting", description="Waits in this status (default: the open ones)."
    )
    contact_id: str | None = Field(default=None, max_length=100, description="One contact.")
    limit: int = Field(default=50, ge=1, le=200, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Waits to skip.")


class WaitRead(BaseModel):
    """One wait of a run for a contact's answer."""

    id: uuid.UUID
    execution_id: uuid.UUID
    flow_id: uuid.UUID | None
    node_id: str
    account_id: str
    contact_id: str
    status: str
    expects: str
    question: str
    tries: int = Field(description="Answers given so far (invalid ones re-asked).")
    reply: dict[str, Any] | None = Field(description="The reply or timeout that ended it.")
    event_id: uuid.UUID | None = Field(description="The event that answered or cancelled it.")
    expires_at: datetime
    window_expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None


class WaitPage(BaseModel):
    """A page of waits, newest first."""

    items: list[WaitRead]
    total: int
    limit: int
    offset: int
