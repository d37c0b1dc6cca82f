"""Instagram triggers: a comment, a direct message or a mention on a connected account.

The dispatcher only offers a trigger the events of accounts connected to its own workspace,
and never an event the account made itself or a dashboard test; ``accepts`` applies the
filters a person sets in the editor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from socialflow.instagram import (
    CommentEvent,
    DMEvent,
    LiveCommentEvent,
    MentionEvent,
    PostbackEvent,
)
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port

__all__ = [
    "InstagramCommentTriggerNode",
    "InstagramDMTriggerNode",
    "InstagramMentionTriggerNode",
    "keywords_match",
]

KeywordMode = Literal["contains", "exact"]
KeywordMatch = Literal["any", "all"]

_ACCOUNT_HELP = (
    "Instagram account id (ig_user_id) whose events start this flow; empty: any account "
    "connected to the workspace."
)


def _fields(*models: type[BaseModel], extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The top-level fields of the payloads of these event models (``model_dump`` of each)."""
    return frozenset(extra).union(*(model.model_fields for model in models))


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split())


def keywords_match(
    text: str | None, keywords: list[str], *, match: KeywordMatch, mode: KeywordMode
) -> bool:
    """Whether ``text`` passes a keyword filter, case-insensitively; no keywords pass anything.

    Args:
        text: The comment or message text (``None`` has no words).
        keywords: The words or phrases to look for.
        match: ``any`` keyword suffices, or ``all`` must be present.
        mode: ``contains`` looks inside the text; ``exact`` wants the whole text to equal one.
    """
    if not keywords:
        return True
    body = _normalise(text or "")
    wanted = [_normalise(k) for k in keywords]
    hits = [(k == body) if mode == "exact" else (k in body) for k in wanted]
    return all(hits) if match == "all" else any(hits)


def _clean_keywords(value: list[str]) -> list[str]:
    cleaned = [v.strip() for v in value]
    if any(not v for v in cleaned):
        msg = "keywords must not be empty; remove blank entries"
        raise ValueError(msg)
    return cleaned


class _InstagramTrigger(BaseNode):
    category = "trigger"
    icon = "instagram"
    inputs: ClassVar[tuple[Port, ...]] = ()

    @classmethod
    def _base_accepts(cls, config: Any, event: Mapping[str, Any]) -> bool:
        # second line of defence: the dispatcher already drops these for every trigger kind
        if event.get("is_self") or event.get("is_test"):
            return False
        return not config.account or event.get("account_id") == config.account

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        return {"event": dict(ctx.trigger)}


class InstagramCommentTriggerNode(_InstagramTrigger):
    """Starts a flow when someone comments on one of the account's posts or reels."""

    kind = "instagram.comment"
    title = "Instagram comment"
    event_kinds = ("instagram.comment", "instagram.live_comment")
    trigger_fields = _fields(CommentEvent, LiveCommentEvent)
    outputs = (
        Port(
            name="event",
            type="instagram.comment",
            description="The comment: comment_id, media_id, text, from_id, from_username, …",
        ),
    )

    class Config(NodeConfig):
        account: str = Field(default="", max_length=64, description=_ACCOUNT_HELP)
        media_ids: list[str] = Field(
            default_factory=list,
            max_length=500,
            description="Only comments on these media ids; empty: on any media.",
        )
        keywords: list[str] = Field(
            default_factory=list,
            max_length=100,
            description="Words or phrases the comment must contain (case-insensitive).",
        )
        match: KeywordMatch = Field(
            default="any", description="Whether any keyword suffices or all must appear."
        )
        mode: KeywordMode = Field(
            default="contains",
            description="contains: anywhere in the text; exact: the whole comment is a keyword.",
        )
        exclude_replies: bool = Field(
            default=False, description="Ignore replies to other comments (those with a parent)."
        )
        include_live_comments: bool = Field(
            default=False, description="Also start on comments made during a live broadcast."
        )

        _keywords = field_validator("keywords")(_clean_keywords)

    @classmethod
    def accepts(cls, config: NodeConfig, event: Mapping[str, Any]) -> bool:
        """Account, media, reply, live and keyword filters."""
        assert isinstance(config, cls.Config)
        if not cls._base_accepts(config, event):
            return False
        if event.get("kind") == "live_comment" and not config.include_live_comments:
            return False
        if config.media_ids and event.get("media_id") not in config.media_ids:
            return False
        if config.exclude_replies and event.get("parent_id"):
            return False
        return keywords_match(
            event.get("text"), config.keywords, match=config.match, mode=config.mode
        )


class InstagramDMTriggerNode(_InstagramTrigger):
    """Starts a flow when someone sends the account a direct message."""

    kind = "instagram.dm"
    title = "Instagram DM"
    event_kinds = ("instagram.dm", "instagram.postback")
    trigger_fields = _fields(DMEvent, PostbackEvent)
    outputs = (
        Port(
            name="event",
            type="instagram.dm",
            description="The message: message_id, sender_id, text, attachments, … (or a postback)",
        ),
    )

    class Config(NodeConfig):
        account: str = Field(default="", max_length=64, description=_ACCOUNT_HELP)
        keywords: list[str] = Field(
            default_factory=list,
            max_length=100,
            description=(
                "Words or phrases the message must contain (case-insensitive); for a postback "
                "its title or payload."
            ),
        )
        match: KeywordMatch = Field(
            default="any", description="Whether any keyword suffices or all must appear."
        )
        mode: KeywordMode = Field(
            default="contains",
            description="contains: anywhere in the text; exact: the whole message is a keyword.",
        )
        include_story_replies: bool = Field(
            default=True, description="Start on replies to the account's stories."
        )
        include_story_mentions: bool = Field(
            default=True, description="Start when someone mentions the account in their story."
        )
        include_quick_replies: bool = Field(
            default=True, description="Start on taps of quick-reply buttons."
        )
        include_postbacks: bool = Field(
            default=False,
            description="Start on taps of ice breakers, menu items and template buttons.",
        )
        include_standby: bool = Field(
            default=False,
            description=(
                "Start on messages of threads another app controls (handover); replies there "
                "fail until the thread is passed back."
            ),
        )

        _keywords = field_validator("keywords")(_clean_keywords)

    @classmethod
    def accepts(cls, config: NodeConfig, event: Mapping[str, Any]) -> bool:
        """Account, message-type and keyword filters."""
        assert isinstance(config, cls.Config)
        if not cls._base_accepts(config, event):
            return False
        if event.get("standby") and not config.include_standby:
            return False
        if event.get("kind") == "postback":
            if not config.include_postbacks:
                return False
            title, payload = event.get("title") or "", event.get("payload") or ""
            return keywords_match(
                title, config.keywords, match=config.match, mode=config.mode
            ) or keywords_match(payload, config.keywords, match=config.match, mode=config.mode)
        if event.get("kind") != "dm":
            return False
        if event.get("is_story_reply") and not config.include_story_replies:
            return False
        if event.get("is_story_mention") and not config.include_story_mentions:
            return False
        if event.get("quick_reply_payload") and not config.include_quick_replies:
            return False
        return keywords_match(
            event.get("text"), config.keywords, match=config.match, mode=config.mode
        )


class InstagramMentionTriggerNode(_InstagramTrigger):
    """Starts a flow when someone @mentions the account in a comment or a caption.

    Facebook Login accounts send ``mentions`` events. Instagram Login folds @mentions into
    ``comments``: the dispatcher marks a comment event whose text @mentions the connected
    account's username with ``mentions_account`` and only such comments are accepted here.
    """

    kind = "instagram.mention"
    title = "Instagram mention"
    event_kinds = ("instagram.mention", "instagram.comment")
    # the dispatcher marks the comments (Instagram Login) that @mention the account
    trigger_fields = _fields(MentionEvent, CommentEvent, extra=("mentions_account",))
    outputs = (
        Port(
            name="event",
            type="instagram.mention",
            description=(
                "The mention: media_id and comment_id (None for a caption mention); under "
                "Instagram Login the whole comment (text, from_id, …)."
            ),
        ),
    )

    class Config(NodeConfig):
        account: str = Field(default="", max_length=64, description=_ACCOUNT_HELP)
        media_ids: list[str] = Field(
            default_factory=list,
            max_length=500,
            description="Only mentions on these media ids; empty: on any media.",
        )
        include_comments: bool = Field(default=True, description="Mentions in comments.")
        include_captions: bool = Field(default=True, description="Mentions in media captions.")

    @classmethod
    def accepts(cls, config: NodeConfig, event: Mapping[str, Any]) -> bool:
        """Account, media and comment/caption filters."""
        assert isinstance(config, cls.Config)
        if not cls._base_accepts(config, event):
            return False
        if event.get("kind") == "comment" and not event.get("mentions_account"):
            return False
        if config.media_ids and event.get("media_id") not in config.media_ids:
            return False
        in_comment = bool(event.get("comment_id"))
        return config.include_comments if in_comment else config.include_captions
