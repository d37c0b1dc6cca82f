"""Instagram triggers: a comment, a direct message or a mention on a connected account.

The dispatcher only offers a trigger the events of accounts connected to its own workspace,
and never an event the account made itself or a dashboard test; ``rejection`` applies the
filters a person sets in the editor and says which one an event failed, in words.
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
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port, Rejection

__all__ = [
    "InstagramCommentTriggerNode",
    "InstagramDMTriggerNode",
    "InstagramMentionTriggerNode",
    "keyword_rejection",
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


def _quoted(text: str, limit: int = 120) -> str:
    """Text in quotes for a reason: single, or double when it holds an apostrophe."""
    clipped = text if len(text) <= limit else text[: limit - 1] + "…"
    return f'"{clipped}"' if "'" in clipped and '"' not in clipped else f"'{clipped}'"


def keyword_condition(keywords: list[str], *, match: KeywordMatch, mode: KeywordMode) -> str:
    """A keyword filter in words: ``contains 'price'``, ``is one of 'a', 'b'``, …"""
    listed = ", ".join(_quoted(k, 60) for k in keywords)
    if mode == "exact":
        return f"is {listed}" if len(keywords) == 1 else f"is one of {listed}"
    if len(keywords) == 1:
        return f"contains {listed}"
    return f"contains {'all' if match == 'all' else 'any'} of {listed}"


def keyword_rejection(
    text: str | None,
    keywords: list[str],
    *,
    match: KeywordMatch,
    mode: KeywordMode,
    field: str = "trigger.text",
) -> Rejection | None:
    """``keywords_match`` with the reason when it fails: which condition, the value seen."""
    if keywords_match(text, keywords, match=match, mode=mode):
        return None
    condition = keyword_condition(keywords, match=match, mode=mode)
    seen = "no text" if not text else _quoted(text)
    return Rejection(
        "filter_not_matched",
        f"filter not matched: `{field}` {condition} was false for {seen}",
        field=field,
    )


def _clean_keywords(value: list[str]) -> list[str]:
    cleaned = [v.strip() for v in value]
    if any(not v for v in cleaned):
        msg = "keywords must not be empty; remove blank entries"
        raise ValueError(msg)
    return cleaned


def own_event_rejection(event: Mapping[str, Any]) -> Rejection | None:
    """Events no Instagram flow ever takes: the account's own messages and comments (a reply
    to them would answer itself forever) and Meta's dashboard tests."""
    if event.get("is_test"):
        return Rejection("dashboard_test", "a test event sent from Meta's App Dashboard")
    if event.get("is_self"):
        if event.get("kind") in ("comment", "live_comment"):
            return Rejection("own_comment", "the account's own comment")
        return Rejection("echo", "an echo of a message the account sent")
    return None


class _InstagramTrigger(BaseNode):
    category = "trigger"
    icon = "instagram"
    inputs: ClassVar[tuple[Port, ...]] = ()

    @classmethod
    def _base_rejection(cls, config: Any, event: Mapping[str, Any]) -> Rejection | None:
        # second line of defence: the dispatcher already drops these for every trigger kind
        own = own_event_rejection(event)
        if own is not None:
            return own
        if config.account and event.get("account_id") != config.account:
            return Rejection(
                "account_filter",
                f"account filter: the flow listens to account {config.account}, the event is "
                f"for {event.get('account_id') or 'no account'}",
                field="trigger.account_id",
            )
        return None

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
    def rejection(cls, config: NodeConfig, event: Mapping[str, Any]) -> Rejection | None:
        """Account, media, reply, live and keyword filters."""
        assert isinstance(config, cls.Config)
        base = cls._base_rejection(config, event)
        if base is not None:
            return base
        if event.get("kind") == "live_comment" and not config.include_live_comments:
            return Rejection(
                "kind_off",
                "a comment during a live broadcast, and the trigger's 'live comments' is off",
                field="trigger.kind",
            )
        if config.media_ids and event.get("media_id") not in config.media_ids:
            return Rejection(
                "media_filter",
                f"media filter: `trigger.media_id` {event.get('media_id') or 'none'} is not one "
                f"of the {len(config.media_ids)} media the trigger listens to",
                field="trigger.media_id",
            )
        if config.exclude_replies and event.get("parent_id"):
            return Rejection(
                "filter_not_matched",
                "filter not matched: the comment is a reply (`trigger.parent_id` "
                f"{event.get('parent_id')}) and the trigger excludes replies",
                field="trigger.parent_id",
            )
        return keyword_rejection(
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
    def rejection(cls, config: NodeConfig, event: Mapping[str, Any]) -> Rejection | None:
        """Account, message-type and keyword filters."""
        assert isinstance(config, cls.Config)
        base = cls._base_rejection(config, event)
        if base is not None:
            return base
        if event.get("standby") and not config.include_standby:
            return Rejection(
                "kind_off",
                "a message of a thread another app controls (standby), and the trigger's "
                "'standby' is off",
                field="trigger.standby",
            )
        if event.get("kind") == "postback":
            if not config.include_postbacks:
                return Rejection(
                    "kind_off",
                    "a button tap (postback), and the trigger's 'postbacks' is off",
                    field="trigger.kind",
                )
            title, payload = event.get("title") or "", event.get("payload") or ""
            by_title = keyword_rejection(
                title, config.keywords, match=config.match, mode=config.mode, field="trigger.title"
            )
            if by_title is None:
                return None
            by_payload = keyword_rejection(
                payload,
                config.keywords,
                match=config.match,
                mode=config.mode,
                field="trigger.payload",
            )
            if by_payload is None:
                return None
            condition = keyword_condition(config.keywords, match=config.match, mode=config.mode)
            return Rejection(
                "filter_not_matched",
                f"filter not matched: `trigger.title` or `trigger.payload` {condition} was false "
                f"for {_quoted(title) if title else 'no title'} and "
                f"{_quoted(payload) if payload else 'no payload'}",
                field="trigger.payload",
            )
        if event.get("kind") != "dm":
            return Rejection(
                "kind_off",
                f"a {event.get('kind') or 'message'} event, which the DM trigger does not take",
                field="trigger.kind",
            )
        for flag, option, what in (
            ("is_story_reply", config.include_story_replies, "a reply to a story"),
            ("is_story_mention", config.include_story_mentions, "a story mention"),
            ("quick_reply_payload", config.include_quick_replies, "a quick-reply tap"),
        ):
            if event.get(flag) and not option:
                return Rejection(
                    "kind_off",
                    f"{what}, which the trigger is set not to take",
                    field=f"trigger.{flag}",
                )
        return keyword_rejection(
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
    def rejection(cls, config: NodeConfig, event: Mapping[str, Any]) -> Rejection | None:
        """Account, media and comment/caption filters."""
        assert isinstance(config, cls.Config)
        base = cls._base_rejection(config, event)
        if base is not None:
            return base
        if event.get("kind") == "comment" and not event.get("mentions_account"):
            return Rejection(
                "not_mentioned",
                "a comment that does not @mention the account",
                field="trigger.text",
            )
        if config.media_ids and event.get("media_id") not in config.media_ids:
            return Rejection(
                "media_filter",
                f"media filter: `trigger.media_id` {event.get('media_id') or 'none'} is not one "
                f"of the {len(config.media_ids)} media the trigger listens to",
                field="trigger.media_id",
            )
        in_comment = bool(event.get("comment_id"))
        if in_comment and not config.include_comments:
            return Rejection(
                "kind_off", "a mention in a comment, and the trigger's 'comments' is off"
            )
        if not in_comment and not config.include_captions:
            return Rejection(
                "kind_off", "a mention in a caption, and the trigger's 'captions' is off"
            )
        return None
