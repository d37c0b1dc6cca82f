"""What a post is made of, as the API and the ``instagram.publish`` node give it."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from socialflow.publishing._models import PostType

__all__ = ["PostFields"]

#: bounds on what a request may carry at all; Meta's own limits are the post's problems
CAPTION_BOUND = 10_000
ALT_TEXT_BOUND = 5_000


class PostFields(BaseModel):
    """A post's content: account, type, caption, alt text, collaborators and media."""

    model_config = ConfigDict(extra="forbid")

    account_id: uuid.UUID = Field(description="The Instagram account (its Socialflow id).")
    type: PostType = Field(description="image, carousel (2-10 items), reel or story.")
    caption: str = Field(
        default="",
        max_length=CAPTION_BOUND,
        description="Caption; Instagram allows 2,200 characters, 30 hashtags and 20 @ tags.",
    )
    alt_text: str = Field(
        default="",
        max_length=ALT_TEXT_BOUND,
        description="Alt text of an image post (Instagram: up to 1,000 characters).",
    )
    collaborators: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list,
        max_length=10,
        description="Usernames invited as collaborators (Instagram: up to 3; not on stories).",
    )
    media_ids: list[uuid.UUID] = Field(
        min_length=1,
        max_length=20,
        description="Uploaded media in order: one, or 2-10 for a carousel.",
    )
    cover_media_id: uuid.UUID | None = Field(
        default=None, description="A reel's cover image (JPEG)."
    )
