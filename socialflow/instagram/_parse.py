"""Splitting a Meta webhook body into normalised Instagram events, each with its dedupe key.

Handles every envelope seen in the wild: ``{"object", "entry": [...]}``; the outer ``[...]`` of
Meta's documentation; a bare list of entries; a bare messaging item. Per entry: ``changes[]``,
the flat ``field``/``value`` form, ``messaging[]`` and ``standby[]``. Timestamps in seconds,
milliseconds, digit strings or ISO text are all normalised to UTC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socialflow.core import safejson
from socialflow.core.logging import get_logger
from socialflow.instagram._events import (
    Attachment,
    CommentEvent,
    DMEvent,
    EchoEvent,
    EditEvent,
    InstagramEvent,
    LiveCommentEvent,
    MentionEvent,
    PostbackEvent,
    ReactionEvent,
    ReferralEvent,
    ReplyTo,
    SeenEvent,
    SharedPost,
    StoryRef,
    UnknownEvent,
    UnsendEvent,
    conversation_key,
)

__all__ = ["MalformedWebhookError", "ParsedEvent", "parse_body", "parse_payload"]

_log = get_logger(__name__)
_MAX_KEY = 300
_MAX_KEY_ACCOUNT = 64
_OBJECTS = (None, "instagram", "page")
_MESSAGING_KEYS = ("message", "reaction", "postback", "referral", "read", "message_edit")
_POST_TYPES = ("ig_post", "share", "ig_reel", "reel")
_MESSAGE_FIELDS = frozenset(
    {"mid", "text", "attachments", "quick_reply", "reply_to", "referral", "is_echo", "is_self"}
    | {"is_deleted", "is_unsupported"}
)


class MalformedWebhookError(ValueError):
    """The body is not JSON, or not shaped like any Meta webhook.

    Args:
        message: What is wrong.
        code: A stable snake_case code: ``malformed_body``, or the ``core.safejson`` code
            (``json_too_deep``, ``invalid_unicode``, ``invalid_number``).
    """

    def __init__(self, message: str, *, code: str = "malformed_body") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ParsedEvent:
    """One normalised event, its inbox dedupe key and the item it came from."""

    event: InstagramEvent
    dedupe_key: str
    raw: Any

    @property
    def inbox_kind(self) -> str:
        """The inbox kind: ``instagram.<kind>``."""
        return f"instagram.{self.event.kind}"

    @property
    def conversation_key(self) -> str | None:
        """The conversation whose events run in order (see ``conversation_key``), or None."""
        return conversation_key(self.event)


def parse_body(body: bytes, *, key_scope: str = "") -> list[ParsedEvent]:
    """Parse a raw webhook body.

    Args:
        body: The request body (already signature-checked).
        key_scope: Added to every dedupe key (the flow id for per-flow endpoints).

    Raises:
        MalformedWebhookError: Not UTF-8 JSON, JSON that ``core.safejson`` refuses (too deep,
            lone surrogates, NaN), or JSON of no webhook shape.
    """
    try:
        payload = safejson.loads(body, what="the webhook body")
    except safejson.JSONInputError as exc:
        raise MalformedWebhookError(exc.message, code=exc.code) from exc
    return parse_payload(payload, key_scope=key_scope)


def parse_payload(payload: Any, *, key_scope: str = "") -> list[ParsedEvent]:
    """Split a decoded webhook body into events, in the order Meta sent them.

    Raises:
        MalformedWebhookError: ``payload`` is neither an object nor a list of objects, or its
            ``entry`` is not a list.
    """
    parser = _Parser(key_scope)
    for obj, entry in _entries(payload):
        parser.entry(obj, entry)
    return parser.events


def _entries(payload: Any) -> Iterator[tuple[str | None, Any]]:
    if isinstance(payload, list):
        for item in payload:
            yield from _entries(item)
        return
    if not isinstance(payload, dict):
        msg = "a webhook body must be a JSON object {'object': ..., 'entry': [...]}"
        raise MalformedWebhookError(msg)
    if "entry" in payload:
        entries = payload["entry"]
        if not isinstance(entries, list):
            msg = "the webhook's 'entry' must be a list"
            raise MalformedWebhookError(msg)
        obj = payload.get("object")
        for entry in entries:
            yield (obj if isinstance(obj, str) else None), entry
    elif any(k in payload for k in ("changes", "messaging", "standby", "field")):
        yield None, payload
    elif "sender" in payload and "recipient" in payload:
        yield None, {"messaging": [payload]}
    else:
        yield None, {"unrecognised": payload}


def _str(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    return None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    return _str(value.get("id")) if isinstance(value, dict) else None


def _time(value: Any) -> datetime | None:
    """Seconds, milliseconds, a digit string or ISO text → aware UTC; else None."""
    if isinstance(value, bool) or value is None:
        return None
    number: float | None = None
    try:
        # an integer too large for a float (a signed body can say anything) is no timestamp
        if isinstance(value, int | float):
            number = float(value)
        elif isinstance(value, str) and value.strip().isdigit():
            number = float(value.strip())
    except OverflowError:
        return None
    if number is not None:
        if number > 1e11:  # milliseconds (messaging) rather than seconds (changes)
            number /= 1000
        try:
            return datetime.fromtimestamp(number, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _key_account(account: str) -> str:
    # Meta's ids are a few dozen digits; anything longer is hashed so the key stays bounded
    return account if len(account) <= _MAX_KEY_ACCOUNT else f"~{_digest(account)}"


def _dedupe_key(prefix: str, kind: str, account: str, natural: str) -> str:
    """``<prefix><kind>:<account>:<natural>``, the receiving account included so that one
    comment or message addressed to two connected accounts is two events.

    Past ``_MAX_KEY`` the natural part is hashed, over the key without the account: that is the
    key the account-less format (before migration 0010) had, so the migration can rewrite every
    stored key to exactly what this function gives for a redelivery.
    """
    full = f"{prefix}{kind}:{_key_account(account)}:{natural}"
    if len(full) <= _MAX_KEY:
        return full
    return f"{prefix}{kind}:{_key_account(account)}:h:{_digest(f'{prefix}{kind}:{natural}')}"


def _leftover(source: dict[str, Any], known: set[str] | frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if k not in known}


@dataclass
class _Entry:
    obj: str | None
    id: str | None
    time: datetime | None
    standby: bool = False

    @property
    def is_test(self) -> bool:
        # the App Dashboard's Test button sends entry.id "0"
        return self.id == "0"


class _Parser:
    def __init__(self, key_scope: str) -> None:
        self.prefix = f"ig:{key_scope}:" if key_scope else "ig:"
        self.events: list[ParsedEvent] = []

    def add(self, event: InstagramEvent, natural: str, raw: Any) -> None:
        key = _dedupe_key(self.prefix, event.kind, event.account_id, natural)
        self.events.append(ParsedEvent(event=event, dedupe_key=key, raw=raw))

    def unknown(self, ctx: _Entry, raw: Any, *, field: str | None, why: str) -> None:
        account = ctx.id or ""
        _log.info(
            "instagram webhook item of unknown kind stored and ignored",
            object=ctx.obj,
            field=field,
            reason=why,
            account_id=account,
        )
        event = UnknownEvent(
            account_id=account,
            occurred_at=ctx.time,
            is_test=ctx.is_test,
            standby=ctx.standby,
            entry_id=ctx.id,
            field=field,
            raw=raw,
        )
        self.add(event, _digest(raw), raw)

    def entry(self, obj: str | None, entry: Any) -> None:
        if not isinstance(entry, dict):
            self.unknown(_Entry(obj, None, None), entry, field=None, why="entry is not an object")
            return
        ctx = _Entry(obj, _str(entry.get("id")), _time(entry.get("time")))
        if obj not in _OBJECTS:
            self.unknown(ctx, entry, field=None, why=f"object {obj!r} is not instagram")
            return
        found = False
        changes = entry.get("changes")
        if isinstance(changes, list):
            for change in changes:
                found = True
                self.change(ctx, change)
        if "field" in entry:
            found = True
            self.change(ctx, {"field": entry.get("field"), "value": entry.get("value")})
        for key, standby in (("messaging", False), ("standby", True)):
            items = entry.get(key)
            if isinstance(items, list):
                item_ctx = _Entry(ctx.obj, ctx.id, ctx.time, standby=standby)
                for item in items:
                    found = True
                    self.messaging(item_ctx, item)
        if not found:
            self.unknown(ctx, entry, field=None, why="entry has no changes or messaging")

    def change(self, ctx: _Entry, change: Any) -> None:
        field = _str(change.get("field")) if isinstance(change, dict) else None
        value = change.get("value") if isinstance(change, dict) else None
        if not isinstance(value, dict):
            self.unknown(ctx, change, field=field, why="change has no value object")
        elif field in ("comments", "live_comments"):
            self.comment(ctx, field, value)
        elif field == "mentions":
            self.mention(ctx, value)
        elif "sender" in value and any(k in value for k in _MESSAGING_KEYS):
            # the App Dashboard's Test button sends messaging fields as changes
            self.messaging(ctx, value, field=field)
        else:
            self.unknown(ctx, change, field=field, why="field not handled")

    def comment(self, ctx: _Entry, field: str, value: dict[str, Any]) -> None:
        sender, media = _obj(value.get("from")), _obj(value.get("media"))
        comment_id = _str(value.get("id")) or _str(value.get("comment_id"))
        from_id = _str(sender.get("id"))
        self_scoped = _str(sender.get("self_ig_scoped_id"))
        extra = _leftover(value, {"id", "comment_id", "from", "text", "media", "parent_id"})
        extra_from = _leftover(sender, {"id", "username"})
        extra_media = _leftover(
            media, {"id", "media_product_type", "ad_id", "ad_title", "original_media_id"}
        )
        if extra_from:
            extra["from"] = extra_from
        if extra_media:
            extra["media"] = extra_media
        model = LiveCommentEvent if field == "live_comments" else CommentEvent
        event = model(
            account_id=ctx.id or "",
            occurred_at=_time(value.get("timestamp")) or ctx.time,
            is_self=bool(self_scoped) or (from_id is not None and from_id == ctx.id),
            is_test=ctx.is_test,
            entry_id=ctx.id,
            field=field,
            extra=extra,
            comment_id=comment_id,
            media_id=_str(media.get("id")),
            media_product_type=_str(media.get("media_product_type")),
            text=_str(value.get("text")),
            from_id=from_id,
            from_username=_str(sender.get("username")),
            parent_id=_str(value.get("parent_id")),
            ad_id=_str(media.get("ad_id")),
            ad_title=_str(media.get("ad_title")),
            original_media_id=_str(media.get("original_media_id")),
        )
        self.add(event, comment_id or f"h:{_digest(value)}", {"field": field, "value": value})

    def mention(self, ctx: _Entry, value: dict[str, Any]) -> None:
        comment_id = _str(value.get("comment_id"))
        media_id = _str(value.get("media_id"))
        event = MentionEvent(
            account_id=ctx.id or "",
            occurred_at=_time(value.get("timestamp")) or ctx.time,
            is_test=ctx.is_test,
            entry_id=ctx.id,
            field="mentions",
            extra=_leftover(value, {"comment_id", "media_id", "text"}),
            comment_id=comment_id,
            media_id=media_id,
            text=_str(value.get("text")),
            mentioned_in="comment" if comment_id else "caption",
        )
        key = (
            f"{media_id}:{comment_id or 'caption'}"
            if media_id or comment_id
            else f"h:{_digest(value)}"
        )
        self.add(event, key, {"field": "mentions", "value": value})

    def messaging(self, ctx: _Entry, item: Any, *, field: str | None = None) -> None:
        if not isinstance(item, dict):
            self.unknown(ctx, item, field=field, why="messaging item is not an object")
            return
        sender, recipient = _id(item.get("sender")), _id(item.get("recipient"))
        message = item.get("message") if isinstance(item.get("message"), dict) else None
        echo = bool(message and message.get("is_echo"))
        # only Meta's flags say a message is our own: the ids alone are ambiguous (the docs'
        # own samples give entry.id and sender.id the same value for a user's postback)
        is_self = echo or bool(message and message.get("is_self"))
        account = (sender if echo else recipient) or ctx.id or ""
        common: dict[str, Any] = {
            "account_id": account,
            "occurred_at": _time(item.get("timestamp")) or ctx.time,
            "is_self": is_self,
            "is_test": ctx.is_test,
            "standby": ctx.standby,
            "entry_id": ctx.id,
            "field": field,
            "sender_id": sender,
            "recipient_id": recipient,
        }
        event_key = next((k for k in _MESSAGING_KEYS if isinstance(item.get(k), dict)), None)
        if event_key is None:
            self.unknown(ctx, item, field=field, why="messaging item of no known kind")
            return
        body: dict[str, Any] = item[event_key]
        extra = _leftover(item, {"sender", "recipient", "timestamp", event_key})
        stamp = _str(item.get("timestamp")) or ""
        mid = _str(body.get("mid"))
        if event_key == "message":
            self.message(common, body, extra, mid, echo, item)
            return
        if event_key == "reaction":
            action, emoji = _str(body.get("action")), _str(body.get("emoji"))
            reaction = _str(body.get("reaction"))
            extra.update(_leftover(body, {"mid", "action", "reaction", "emoji"}))
            event: InstagramEvent = ReactionEvent(
                **common, extra=extra, message_id=mid, action=action, reaction=reaction, emoji=emoji
            )
            key = f"{mid}:{sender}:{action}:{emoji or reaction or ''}:{stamp}"
        elif event_key == "postback":
            extra.update(_leftover(body, {"mid", "title", "payload"}))
            payload = _str(body.get("payload"))
            event = PostbackEvent(
                **common,
                extra=extra,
                message_id=mid,
                title=_str(body.get("title")),
                payload=payload,
            )
            key = mid if mid else f"{sender}:{stamp}:{payload}"
        elif event_key == "referral":
            ref = _str(body.get("ref"))
            extra.update(_leftover(body, {"ref", "source", "type", "ad_id"}))
            event = ReferralEvent(
                **common,
                extra=extra,
                ref=ref,
                source=_str(body.get("source")),
                type=_str(body.get("type")),
                ad_id=_str(body.get("ad_id")),
            )
            key = f"{sender}:{stamp}:{ref}"
        elif event_key == "read":
            extra.update(_leftover(body, {"mid"}))
            event = SeenEvent(**common, extra=extra, message_id=mid)
            key = f"{mid}:{sender}" if mid else f"{sender}:{stamp}"
        else:  # message_edit
            raw_count = body.get("num_edit")
            count = _str(raw_count)
            extra.update(_leftover(body, {"mid", "text", "num_edit"}))
            number = int(count) if count is not None and count.isdigit() else None
            if number is None and raw_count is not None:
                extra["num_edit"] = raw_count
            event = EditEvent(
                **common, extra=extra, message_id=mid, text=_str(body.get("text")), num_edit=number
            )
            key = f"{mid}:{count}"
        if mid is None and event_key in ("reaction", "read", "message_edit"):
            key = f"h:{_digest(item)}"
        self.add(event, key, item)

    def message(
        self,
        common: dict[str, Any],
        body: dict[str, Any],
        extra: dict[str, Any],
        mid: str | None,
        echo: bool,
        item: dict[str, Any],
    ) -> None:
        leftover = _leftover(body, _MESSAGE_FIELDS)
        if leftover:
            extra["message"] = leftover
        if body.get("is_deleted"):
            # content of an unsent message is gone; whatever else was sent is kept as is
            extra.update({k: body[k] for k in ("text", "reply_to", "attachments") if k in body})
            event: InstagramEvent = UnsendEvent(**common, extra=extra, message_id=mid)
            self.add(event, mid or f"h:{_digest(item)}", item)
            return
        attachments = [_attachment(a) for a in body.get("attachments") or [] if isinstance(a, dict)]
        reply_to = _reply_to(body.get("reply_to"))
        quick = body.get("quick_reply")
        model = EchoEvent if echo else DMEvent
        event = model(
            **common,
            extra=extra,
            message_id=mid,
            text=_str(body.get("text")),
            attachments=attachments,
            quick_reply_payload=_str(quick.get("payload")) if isinstance(quick, dict) else None,
            reply_to=reply_to,
            is_story_reply=reply_to is not None and reply_to.story is not None,
            is_story_mention=any(a.type == "story_mention" for a in attachments),
            shared_post=_shared_post(attachments),
            referral=body.get("referral") if isinstance(body.get("referral"), dict) else None,
            is_unsupported=bool(body.get("is_unsupported")),
        )
        self.add(event, mid or f"h:{_digest(item)}", item)


def _attachment(raw: dict[str, Any]) -> Attachment:
    payload = _obj(raw.get("payload"))
    return Attachment(
        type=_str(raw.get("type")) or "unknown", url=_str(payload.get("url")), payload=payload
    )


def _reply_to(raw: Any) -> ReplyTo | None:
    if not isinstance(raw, dict):
        return None
    story = raw.get("story")
    ref = (
        StoryRef(id=_str(story.get("id")), url=_str(story.get("url")))
        if isinstance(story, dict)
        else None
    )
    return ReplyTo(mid=_str(raw.get("mid")), story=ref)


def _shared_post(attachments: list[Attachment]) -> SharedPost | None:
    for wanted in _POST_TYPES:
        for attachment in attachments:
            if attachment.type == wanted:
                p = attachment.payload
                media_id = p.get("ig_post_media_id") or p.get("reel_video_id") or p.get("id")
                return SharedPost(
                    media_id=_str(media_id), url=attachment.url, title=_str(p.get("title"))
                )
    return None
