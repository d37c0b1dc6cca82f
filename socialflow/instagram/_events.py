"""Normalised Instagram webhook events: one pydantic model per kind, read by triggers and nodes.

Every event carries ``kind``, ``account_id`` (our professional account), ``occurred_at`` (UTC),
``is_self`` (our own message or comment: never a reason to reply), ``is_test`` (App Dashboard
test) and ``extra`` (fields Meta sent that no model field holds, kept as they came).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "EVENT_KINDS",
    "AnyInstagramEvent",
    "Attachment",
    "CommentEvent",
    "DMEvent",
    "EchoEvent",
    "EditEvent",
    "InstagramEvent",
    "LiveCommentEvent",
    "MentionEvent",
    "PostbackEvent",
    "ReactionEvent",
    "ReferralEvent",
    "ReplyTo",
    "SeenEvent",
    "SharedPost",
    "StoryRef",
    "UnknownEvent",
    "UnsendEvent",
    "conversation_key",
    "mentions_username",
    "parse_event",
]

#: Every normalised kind; the inbox kind is ``instagram.<kind>``.
EVENT_KINDS = (
    "comment",
    "live_comment",
    "mention",
    "dm",
    "echo",
    "reaction",
    "postback",
    "referral",
    "seen",
    "edit",
    "unsend",
    "unknown",
)


class InstagramEvent(BaseModel):
    """Fields every Instagram event has."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="Normalised kind, e.g. comment or dm.")
    account_id: str = Field(description="Our professional account's id (entry.id / recipient).")
    occurred_at: datetime | None = Field(
        default=None, description="When it happened (UTC), from the event's timestamp or time."
    )
    is_self: bool = Field(default=False, description="Made by the account itself (echo).")
    is_test: bool = Field(default=False, description="Sent by the App Dashboard's Test button.")
    standby: bool = Field(
        default=False, description="Delivered in standby: another app owns the thread."
    )
    entry_id: str | None = Field(default=None, description="entry.id as Meta sent it.")
    field: str | None = Field(default=None, description="The webhook field, e.g. comments.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Unmapped fields, as sent.")


class CommentEvent(InstagramEvent):
    """A comment on one of the account's media."""

    kind: Literal["comment"] = "comment"
    comment_id: str | None = None
    media_id: str | None = None
    media_product_type: str | None = None
    text: str | None = None
    from_id: str | None = None
    from_username: str | None = None
    parent_id: str | None = Field(default=None, description="Set when this is a reply.")
    ad_id: str | None = None
    ad_title: str | None = None
    original_media_id: str | None = None


class LiveCommentEvent(CommentEvent):
    """A comment on a live broadcast (only sent while it is live)."""

    kind: Literal["live_comment"] = "live_comment"  # type: ignore[assignment]


class MentionEvent(InstagramEvent):
    """The account was @mentioned in a comment or in a caption (Facebook Login setups)."""

    kind: Literal["mention"] = "mention"
    comment_id: str | None = Field(default=None, description="None for a caption mention.")
    media_id: str | None = None
    text: str | None = None
    mentioned_in: Literal["comment", "caption"] = "comment"


class Attachment(BaseModel):
    """One attachment of a message: its type and, when Meta gives one, a URL."""

    type: str
    url: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


class StoryRef(BaseModel):
    """A story a message replies to."""

    id: str | None = None
    url: str | None = None


class ReplyTo(BaseModel):
    """What a message replies to: a message (``mid``) or a story."""

    mid: str | None = None
    story: StoryRef | None = None


class SharedPost(BaseModel):
    """A post shared into the conversation (``share`` / ``ig_post`` attachments)."""

    media_id: str | None = None
    url: str | None = None
    title: str | None = None


class _Messaging(InstagramEvent):
    message_id: str | None = None
    sender_id: str | None = None
    recipient_id: str | None = None


class DMEvent(_Messaging):
    """A direct message received by the account."""

    kind: Literal["dm"] = "dm"
    text: str | None = None
    attachments: list[Attachment] = Field(default_factory=list)
    quick_reply_payload: str | None = None
    reply_to: ReplyTo | None = None
    is_story_reply: bool = False
    is_story_mention: bool = False
    shared_post: SharedPost | None = None
    referral: dict[str, Any] | None = Field(default=None, description="Ad or link referral.")
    is_unsupported: bool = False


class EchoEvent(DMEvent):
    """A message the account itself sent (``is_echo``); never answered."""

    kind: Literal["echo"] = "echo"  # type: ignore[assignment]
    is_self: bool = True


class ReactionEvent(_Messaging):
    """A reaction to a message, or its removal (``action`` unreact)."""

    kind: Literal["reaction"] = "reaction"
    action: str | None = None
    reaction: str | None = None
    emoji: str | None = None


class PostbackEvent(_Messaging):
    """A tap on an ice breaker, persistent menu item or template button."""

    kind: Literal["postback"] = "postback"
    title: str | None = None
    payload: str | None = None


class ReferralEvent(_Messaging):
    """A conversation opened through an ig.me link or an ad."""

    kind: Literal["referral"] = "referral"
    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: str | None = None


class SeenEvent(_Messaging):
    """A read receipt: the user saw messages up to ``message_id``."""

    kind: Literal["seen"] = "seen"


class EditEvent(_Messaging):
    """A message was edited."""

    kind: Literal["edit"] = "edit"
    text: str | None = None
    num_edit: int | None = None


class UnsendEvent(_Messaging):
    """A message was unsent (``is_deleted``)."""

    kind: Literal["unsend"] = "unsend"


class UnknownEvent(InstagramEvent):
    """Anything else: stored for the record, never dispatched to a flow."""

    kind: Literal["unknown"] = "unknown"
    raw: Any = Field(default=None, description="The item as Meta sent it.")


AnyInstagramEvent = Annotated[
    CommentEvent
    | LiveCommentEvent
    | MentionEvent
    | DMEvent
    | EchoEvent
    | ReactionEvent
    | PostbackEvent
    | ReferralEvent
    | SeenEvent
    | EditEvent
    | UnsendEvent
    | UnknownEvent,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter[AnyInstagramEvent] = TypeAdapter(AnyInstagramEvent)


def parse_event(payload: Any) -> InstagramEvent:
    """Rebuild a normalised event from its stored JSON (an inbox payload, a run's trigger).

    Raises:
        pydantic.ValidationError: The payload is not a normalised Instagram event.
    """
    event: InstagramEvent = _ADAPTER.validate_python(payload)
    return event


_MAX_CONVERSATION_KEY = 200


def conversation_key(event: InstagramEvent) -> str | None:
    """The conversation ``event`` belongs to: its flows run after those of every earlier event
    of the same conversation (by timestamp, then position in the body) have finished.

    - Messaging events (DMs, reactions, postbacks, referrals, seen, edits, unsends):
      ``dm:<account>:<sender>``, the thread between the account and one person.
    - Comments and live comments: ``comment:<account>:<root>``, the comment thread (a
      top-level comment and the replies under it, ``parent_id``).
    - Mentions: ``media:<account>:<media>``, the media the account was mentioned in.

    Events that never start a flow (the account's own, echoes included; dashboard tests;
    unknown kinds) and events without the ids to place them have none: nothing waits for them.

    Returns:
        The key (at most 200 characters), or None.
    """
    if event.is_self or event.is_test:
        return None
    account = event.account_id
    key: str | None = None
    if isinstance(event, _Messaging):
        key = f"dm:{account}:{event.sender_id}" if event.sender_id else None
    elif isinstance(event, CommentEvent):
        root = event.parent_id or event.comment_id
        key = f"comment:{account}:{root}" if root else None
    elif isinstance(event, MentionEvent):
        key = f"media:{account}:{event.media_id}" if event.media_id else None
    if key is not None and len(key) > _MAX_CONVERSATION_KEY:
        kind = key.split(":", 1)[0]
        key = f"{kind}:h:{hashlib.sha256(key.encode()).hexdigest()[:40]}"
    return key


def mentions_username(text: str | None, username: str | None) -> bool:
    """Whether ``text`` @mentions ``username``: the whole handle, any case, a sentence's full
    stop after it allowed (``@shop.`` mentions ``shop``; ``@shop.eu`` and ``@shopping`` do not).

    Under Instagram Login an @mention of the account arrives as an ordinary ``comments``
    notification (SPEC §3.2, U6) with no flag of its own: its text is all that tells it apart.
    """
    if not text or not username:
        return False
    handle = re.escape(username.removeprefix("@"))
    pattern = rf"(?<![\w.@])@{handle}(?!\w|\.\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None
