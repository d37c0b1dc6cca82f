"""What a broadcast is made of, as the API gives it: the message and the segment."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator

from socialflow.broadcasts._segment import Segment
from socialflow.instagram import Button

__all__ = ["BroadcastFields", "QuickReply"]

#: what Instagram takes (PUBLISHING_MESSAGING.md part B): 1000 bytes of UTF-8, 640 characters
#: under buttons, 13 quick replies, 3 buttons
MAX_TEXT_BYTES = 1000
MAX_BUTTON_TEXT_CHARS = 640


class QuickReply(BaseModel):
    """A quick-reply button under the message."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=20, description="Button text (20 characters).")
    payload: str = Field(min_length=1, max_length=1000, description="Sent back when tapped.")


class BroadcastFields(BaseModel):
    """A broadcast: which account sends what to which segment."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID = Field(description="The Instagram account (its Socialflow id).")
    name: str = Field(min_length=1, max_length=100, description="A name to find it by.")
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_BYTES,
        description="The message: at most 1000 bytes of UTF-8, 640 characters with buttons.",
    )
    quick_replies: list[QuickReply] = Field(
        default_factory=list, max_length=13, description="Up to 13 quick replies."
    )
    buttons: list[Button] = Field(
        default_factory=list, max_length=3, description="Up to 3 buttons (web_url or postback)."
    )
    segment: Segment = Field(default_factory=Segment, description="Who receives it.")

    @model_validator(mode="after")
    def _fits_instagram(self) -> BroadcastFields:
        if not self.text.strip():
            msg = "field 'text' must not be blank"
            raise ValueError(msg)
        size = len(self.text.encode())
        if size > MAX_TEXT_BYTES:
            msg = f"field 'text' is {size} bytes of UTF-8; Instagram takes at most {MAX_TEXT_BYTES}"
            raise ValueError(msg)
        if self.buttons and len(self.text) > MAX_BUTTON_TEXT_CHARS:
            msg = (
                f"field 'text' has {len(self.text)} characters; with buttons Instagram shows "
                f"at most {MAX_BUTTON_TEXT_CHARS}"
            )
            raise ValueError(msg)
        if self.buttons and self.quick_replies:
            msg = "fields 'buttons' and 'quick_replies': a message carries one or the other"
            raise ValueError(msg)
        return self
