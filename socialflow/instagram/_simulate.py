"""Realistic, signed Instagram webhooks for ``socialflow simulate`` and for tests."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from socialflow.instagram._signature import SHA1_HEADER, SHA256_HEADER, sign_sha1, sign_sha256

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEMO_ACCOUNT_ID",
    "Delivery",
    "SimulatedKind",
    "build_comment",
    "build_dm",
    "build_mention",
    "build_payload",
    "build_postback",
    "encode_body",
    "post_signed",
    "post_signed_sync",
    "signed_headers",
]

#: The professional account id simulated events are addressed to unless told otherwise.
DEMO_ACCOUNT_ID = "17841400000000001"
SimulatedKind = Literal["comment", "dm", "mention"]


def _numeric_id(prefix: str = "178") -> str:
    return prefix + "".join(str(secrets.randbelow(10)) for _ in range(14))


def _mid() -> str:
    # Instagram message ids are url-safe base64 starting "aWdf" ("ig_")
    return "aWdfZAG1" + secrets.token_urlsafe(36).replace("-", "A").replace("_", "B")


def _envelope(account_id: str, sent_ms: int, **entry: Any) -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": account_id, "time": sent_ms, **entry}]}


def build_comment(
    text: str,
    *,
    account_id: str = DEMO_ACCOUNT_ID,
    media_id: str | None = None,
    from_id: str | None = None,
    from_username: str = "simulated.user",
    comment_id: str | None = None,
    parent_id: str | None = None,
    live: bool = False,
) -> dict[str, Any]:
    """A ``comments`` (or ``live_comments``) notification as Meta delivers it: ``changes[]``."""
    value: dict[str, Any] = {
        "from": {"id": from_id or _numeric_id("99"), "username": from_username},
        "media": {"id": media_id or _numeric_id("180"), "media_product_type": "FEED"},
        "id": comment_id or _numeric_id("179"),
        "text": text,
    }
    if parent_id:
        value["parent_id"] = parent_id
    field = "live_comments" if live else "comments"
    return _envelope(account_id, int(time.time()), changes=[{"value": value, "field": field}])


def build_dm(
    text: str,
    *,
    account_id: str = DEMO_ACCOUNT_ID,
    sender_id: str | None = None,
    mid: str | None = None,
    quick_reply_payload: str | None = None,
) -> dict[str, Any]:
    """A ``messages`` notification: one ``messaging[]`` item from a user to the account."""
    now_ms = int(time.time() * 1000)
    message: dict[str, Any] = {"mid": mid or _mid(), "text": text}
    if quick_reply_payload:
        message["quick_reply"] = {"payload": quick_reply_payload}
    item = {
        "sender": {"id": sender_id or _numeric_id("99")},
        "recipient": {"id": account_id},
        "timestamp": now_ms - 300,
        "message": message,
    }
    return _envelope(account_id, now_ms, messaging=[item])


def build_postback(
    payload: str,
    *,
    title: str = "",
    account_id: str = DEMO_ACCOUNT_ID,
    sender_id: str | None = None,
    mid: str | None = None,
) -> dict[str, Any]:
    """A ``messaging_postbacks`` notification: a user tapped a postback button (of a button
    or generic template, an ice breaker or the persistent menu) in Meta's format."""
    now_ms = int(time.time() * 1000)
    item = {
        "sender": {"id": sender_id or _numeric_id("99")},
        "recipient": {"id": account_id},
        "timestamp": now_ms - 300,
        "postback": {"mid": mid or _mid(), "title": title, "payload": payload},
    }
    return _envelope(account_id, now_ms, messaging=[item])


def build_mention(
    text: str = "",
    *,
    account_id: str = DEMO_ACCOUNT_ID,
    media_id: str | None = None,
    comment_id: str | None = None,
) -> dict[str, Any]:
    """A ``mentions`` notification for a comment mention (Meta sends no text; ``text`` is
    added as an extra field so flows under test have something to read)."""
    value: dict[str, Any] = {
        "comment_id": comment_id or _numeric_id("179"),
        "media_id": media_id or _numeric_id("180"),
    }
    if text:
        value["text"] = text
    return _envelope(account_id, int(time.time()), changes=[{"field": "mentions", "value": value}])


def build_payload(
    kind: SimulatedKind,
    text: str,
    *,
    account_id: str = DEMO_ACCOUNT_ID,
    media_id: str | None = None,
    from_username: str = "simulated.user",
) -> dict[str, Any]:
    """The webhook body for one simulated event of ``kind``."""
    if kind == "comment":
        return build_comment(
            text, account_id=account_id, media_id=media_id, from_username=from_username
        )
    if kind == "dm":
        return build_dm(text, account_id=account_id)
    return build_mention(text, account_id=account_id, media_id=media_id)


def encode_body(payload: Any) -> bytes:
    """Serialise as Meta does: compact, non-ASCII escaped as ``\\uXXXX`` (lowercase hex)."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def signed_headers(body: bytes, secret: bytes | str) -> dict[str, str]:
    """The headers Meta would send with ``body``: both signatures and the JSON content type."""
    return {
        "Content-Type": "application/json",
        SHA256_HEADER: sign_sha256(secret, body),
        SHA1_HEADER: sign_sha1(secret, body),
        "User-Agent": "facebookexternalua",
    }


async def post_signed(
    url: str,
    payload: Any,
    secret: bytes | str,
    *,
    client: httpx.AsyncClient | None = None,
    timeout: float = 10.0,
) -> httpx.Response:
    """POST ``payload`` to ``url`` signed with ``secret``, as Meta delivers a webhook.

    Args:
        url: The webhook endpoint, e.g. ``http://127.0.0.1:8000/webhooks/instagram``.
        payload: The body (a dict); serialised with :func:`encode_body`.
        secret: The app secret to sign with.
        client: An HTTP client to use; a short-lived one when omitted.
        timeout: Seconds to wait for the answer.
    """
    import httpx

    body = encode_body(payload)
    headers = signed_headers(body, secret)
    if client is not None:
        return await client.post(url, content=body, headers=headers, timeout=timeout)
    async with httpx.AsyncClient(timeout=timeout) as own:
        return await own.post(url, content=body, headers=headers)


@dataclass(frozen=True)
class Delivery:
    """What the endpoint answered a simulated webhook."""

    status_code: int
    text: str


def post_signed_sync(
    url: str, payload: Any, secret: bytes | str, *, timeout: float = 10.0
) -> Delivery:
    """:func:`post_signed` with the standard library, for a one-shot command: it starts
    without loading an HTTP client package (``socialflow simulate``).

    Raises:
        OSError: The endpoint cannot be reached (refused, timed out, bad address).
    """
    body = encode_body(payload)
    request = urllib.request.Request(
        url, data=body, headers=signed_headers(body, secret), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return Delivery(answer.status, answer.read().decode(errors="replace"))
    except urllib.error.HTTPError as error:  # an answer all the same: 4xx, 5xx
        with error:
            return Delivery(error.code, error.read().decode(errors="replace"))
