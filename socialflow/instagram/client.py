"""Async Graph API client for Instagram professional accounts (both Graph hosts)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx

from socialflow.core.errors import UserError
from socialflow.core.metrics import GRAPH_API_CALLS, GRAPH_API_ERRORS
from socialflow.core.settings import InstagramSettings
from socialflow.instagram._errors import TokenInvalidError, TransientGraphError, map_error

__all__ = [
    "MAX_QUICK_REPLIES",
    "MAX_TEXT_BYTES",
    "GraphClient",
    "check_text",
]

MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
MAX_REPLY_CHARS = 2200
SenderAction = Literal["typing_on", "typing_off", "mark_seen"]
AttachmentType = Literal["image", "file", "audio", "video"]
_COMMENT_FIELDS = "id,text,timestamp,from,hidden,like_count,media,parent_id,username"
_MEDIA_FIELDS = "id,caption,media_type,media_product_type,media_url,permalink,timestamp,username"
_PROFILE_FIELDS = (
    "name,username,profile_pic,follower_count,is_user_follow_business,is_business_follow_user"
)


def check_text(text: str, *, field: str = "text") -> None:
    """Refuse DM text Meta would refuse: empty or over 1000 UTF-8 bytes.

    Raises:
        UserError: The text is empty or too long.
    """
    size = len(text.encode())
    if not text.strip():
        msg = f"field {field!r}: the message text is empty"
        raise UserError(msg, code="instagram_text_empty")
    if size > MAX_TEXT_BYTES:
        msg = (
            f"field {field!r}: the message text is {size} bytes of UTF-8; Instagram allows at "
            f"most {MAX_TEXT_BYTES} bytes"
        )
        raise UserError(msg, code="instagram_text_too_long")


class GraphClient:
    """One account's view of the Graph API.

    Args:
        token: The account's access token.
        settings: Graph hosts, API version and timeout.
        ig_user_id: The professional account id (``me`` works too).
        login_kind: ``instagram`` (graph.instagram.com) or ``facebook`` (graph.facebook.com).
        http: A shared client; one is created (and closed by ``aclose``) when omitted.
        retries: Extra attempts after a transient error, each after the wait the usage
            headers ask for (or an exponential one).
        max_backoff: Longest single wait between attempts, in seconds.
        on_token_invalid: Called once when Meta answers code 190.
        sleep: The sleep function (replaceable to observe waits).
    """

    def __init__(
        self,
        token: str,
        settings: InstagramSettings,
        *,
        ig_user_id: str = "me",
        login_kind: str = "instagram",
        http: httpx.AsyncClient | None = None,
        retries: int = 0,
        max_backoff: float = 60.0,
        on_token_invalid: Callable[[TokenInvalidError], Awaitable[None]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        host = (
            settings.graph_facebook_url
            if login_kind == "facebook"
            else settings.graph_instagram_url
        )
        self.base_url = f"{host.rstrip('/')}/{settings.api_version}"
        self.ig_user_id = ig_user_id
        # Facebook Login speaks through the Page: its token makes ``me`` the Page, whose
        # /messages and /subscribed_apps edges Meta documents (SPEC §5.3, §5.4, §5.8)
        self._sender = "me" if login_kind == "facebook" else ig_user_id
        self._token = token
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(trust_env=False)
        self._timeout = settings.request_timeout_seconds
        self._retries = retries
        self._max_backoff = max_backoff
        self._on_token_invalid = on_token_invalid
        self._sleep = sleep

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        call: str,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``/{version}/{path}`` and return the JSON answer, retrying transient errors.

        Raises:
            TransientGraphError: Throttled, 5xx or timed out after every retry.
            TokenInvalidError: Code 190.
            GraphError: Any other refusal, with Meta's reason.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._once(method, path, call, params=params, json=json, data=data)
            except TransientGraphError as exc:
                if attempt > self._retries:
                    raise
                wait = exc.retry_after if exc.retry_after is not None else 0.5 * 2 ** (attempt - 1)
                await self._sleep(min(wait, self._max_backoff))

    async def _once(self, method: str, path: str, call: str, **kwargs: Any) -> dict[str, Any]:
        GRAPH_API_CALLS.labels(method=method).inc()
        try:
            response = await self._http.request(
                method,
                f"{self.base_url}/{path.lstrip('/')}",
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
                **kwargs,
            )
        except httpx.TimeoutException as exc:
            GRAPH_API_ERRORS.labels(code="transport").inc()
            msg = f"Instagram {call}: the Graph API did not answer within {self._timeout:g} s"
            raise TransientGraphError(msg) from exc
        except httpx.TransportError as exc:
            GRAPH_API_ERRORS.labels(code="transport").inc()
            msg = f"Instagram {call}: could not reach the Graph API: {exc!r}"
            raise TransientGraphError(msg) from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict) and "error" not in body:
            return body
        error = map_error(response.status_code, body, response.headers, call=call)
        graph_code = (error.details or {}).get("graph_code")
        GRAPH_API_ERRORS.labels(code=str(graph_code or response.status_code)).inc()
        if isinstance(error, TokenInvalidError) and self._on_token_invalid is not None:
            await self._on_token_invalid(error)
        raise error

    # comments

    async def reply_to_comment(self, comment_id: str, message: str) -> dict[str, Any]:
        """Reply publicly to a comment; returns ``{"id": <new comment id>}``."""
        if not message.strip() or len(message) > MAX_REPLY_CHARS:
            msg = f"field 'message': a comment reply takes 1 to {MAX_REPLY_CHARS} characters"
            raise UserError(msg, code="instagram_text_too_long")
        return await self.request(
            "POST",
            f"{comment_id}/replies",
            data={"message": message},
            call=f"reply to comment {comment_id}",
        )

    async def hide_comment(self, comment_id: str, hide: bool = True) -> dict[str, Any]:
        """Hide (or unhide) a comment; returns ``{"success": true}``."""
        return await self.request(
            "POST",
            comment_id,
            params={"hide": "true" if hide else "false"},
            call=f"{'hide' if hide else 'unhide'} comment {comment_id}",
        )

    async def delete_comment(self, comment_id: str) -> dict[str, Any]:
        """Delete a comment on the account's own media."""
        return await self.request("DELETE", comment_id, call=f"delete comment {comment_id}")

    async def get_comment(self, comment_id: str, fields: str = _COMMENT_FIELDS) -> dict[str, Any]:
        """Read a comment (``timestamp``, ``text``, ``from``, ``media``, ``hidden`` …)."""
        return await self.request(
            "GET", comment_id, params={"fields": fields}, call=f"get comment {comment_id}"
        )

    async def get_media(self, media_id: str, fields: str = _MEDIA_FIELDS) -> dict[str, Any]:
        """Read a media object."""
        return await self.request(
            "GET", media_id, params={"fields": fields}, call=f"get media {media_id}"
        )

    # messaging

    async def private_reply(
        self, comment_id: str, text: str, *, template: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Send the one private reply a comment allows (text, or a template with buttons
        carrying the text); returns recipient_id and message_id."""
        check_text(text)
        message = {"attachment": template} if template is not None else {"text": text}
        return await self.request(
            "POST",
            f"{self._sender}/messages",
            json={"recipient": {"comment_id": comment_id}, "message": message},
            call=f"private reply to comment {comment_id}",
        )

    async def send_message(
        self,
        recipient_id: str,
        *,
        text: str | None = None,
        quick_replies: list[dict[str, str]] | None = None,
        attachment: tuple[AttachmentType, str] | None = None,
        tag: str | None = None,
        template: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send a DM: text (≤ 1000 bytes) with up to 13 quick replies, or one attachment,
        or a template (buttons or cards; built and checked by ``_templates``).

        Args:
            recipient_id: The user's IGSID.
            text: Message text.
            quick_replies: ``[{"title", "payload"}]`` (``content_type`` defaults to text).
            attachment: ``(type, url)`` for an image, file, audio or video.
            tag: ``HUMAN_AGENT`` to answer up to 7 days after the user's last message.
            template: A ``message.attachment`` of type ``template``.

        Raises:
            UserError: Neither text nor attachment, text too long, too many quick replies.
        """
        message: dict[str, Any] = {}
        if template is not None:
            message["attachment"] = template
        elif attachment is not None:
            kind, url = attachment
            message["attachment"] = {"type": kind, "payload": {"url": url}}
        elif text is not None:
            check_text(text)
            message["text"] = text
        else:
            msg = "a DM needs text or an attachment"
            raise UserError(msg, code="instagram_message_empty")
        if quick_replies:
            if len(quick_replies) > MAX_QUICK_REPLIES:
                msg = (
                    f"field 'quick_replies': {len(quick_replies)} given; Instagram allows at "
                    f"most {MAX_QUICK_REPLIES}"
                )
                raise UserError(msg, code="instagram_too_many_quick_replies")
            message["quick_replies"] = [{"content_type": "text", **q} for q in quick_replies]
        body: dict[str, Any] = {"recipient": {"id": recipient_id}, "message": message}
        if tag:
            body |= {"messaging_type": "MESSAGE_TAG", "tag": tag}
        return await self.request(
            "POST", f"{self._sender}/messages", json=body, call=f"send DM to {recipient_id}"
        )

    async def get_messenger_profile(self) -> dict[str, Any]:
        """The account's ice breakers and persistent menu, as Meta answers them."""
        return await self.request(
            "GET",
            f"{self._sender}/messenger_profile",
            params={"fields": "ice_breakers,persistent_menu", "platform": "instagram"},
            call="read the ice breakers and menu",
        )

    async def set_messenger_profile(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the account's ice breakers and/or persistent menu (``_profile.profile_body``)."""
        return await self.request(
            "POST",
            f"{self._sender}/messenger_profile",
            json=body,
            call="set the ice breakers and menu",
        )

    async def delete_messenger_profile(self, fields: list[str]) -> dict[str, Any]:
        """Remove the account's ``ice_breakers`` and/or ``persistent_menu``."""
        return await self.request(
            "DELETE",
            f"{self._sender}/messenger_profile",
            json={"fields": fields, "platform": "instagram"},
            call="remove the ice breakers and menu",
        )

    async def sender_action(self, recipient_id: str, action: SenderAction) -> dict[str, Any]:
        """Show typing on/off or mark the conversation seen."""
        return await self.request(
            "POST",
            f"{self._sender}/messages",
            json={"recipient": {"id": recipient_id}, "sender_action": action},
            call=f"{action} for {recipient_id}",
        )

    async def get_user_profile(self, igsid: str, fields: str = _PROFILE_FIELDS) -> dict[str, Any]:
        """A messaging user's profile (only after they messaged the account)."""
        return await self.request(
            "GET", igsid, params={"fields": fields}, call=f"get profile of {igsid}"
        )

    # account

    async def me(self) -> dict[str, Any]:
        """``{"user_id", "username"}`` of the token's account (flat or ``data[0]`` answers)."""
        body = await self.request(
            "GET", "me", params={"fields": "user_id,username"}, call="identify the account"
        )
        data = body.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            body = data[0]
        return {
            "user_id": str(body.get("user_id") or body.get("id") or ""),
            "username": str(body.get("username") or ""),
        }

    async def subscribe(self, fields: list[str]) -> dict[str, Any]:
        """Subscribe the account (Facebook Login: its Page) to the app's webhook fields."""
        return await self.request(
            "POST",
            f"{self._sender}/subscribed_apps",
            params={"subscribed_fields": ",".join(fields)},
            call="subscribe the account's webhooks",
        )
