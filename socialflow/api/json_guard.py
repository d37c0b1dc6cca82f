"""ASGI middleware: JSON request bodies are decoded strictly before any route sees them.

FastAPI decodes a JSON body with Python's ``json``, which accepts what the rest of the stack
cannot carry: nesting that ends in ``RecursionError``, lone surrogates PostgreSQL refuses,
``NaN``. This middleware decodes every JSON body of every route (FastAPI's own, fastapi-users'
and any added later) with ``core.safejson`` first and answers 400 with the problem's code
(``json_too_deep``, ``invalid_unicode``, ``invalid_number``) before anything is stored. Plain
syntax errors pass through, so FastAPI reports them (422, with the position) as before. Routes
that read and authenticate their raw body themselves (the webhooks) are exempt: they decode
with the same ``safejson.loads`` after checking the caller.
"""

from __future__ import annotations

import email.message
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialflow.api.errors import error_json
from socialflow.core.safejson import MAX_DEPTH, JSONInputError, JSONSyntaxError, loads

__all__ = ["JSONGuardMiddleware", "is_json_content_type"]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_content_type(value: str | None) -> bool:
    """Whether FastAPI would decode a body of this ``Content-Type`` as JSON."""
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class JSONGuardMiddleware:
    """Refuse JSON bodies that ``safejson.loads`` refuses, for every route but ``exempt``.

    Args:
        app: The application.
        max_body_bytes: Largest body buffered (larger ones get 413, like the size check on
            ``Content-Length``, which a chunked body does not send).
        exempt: Path prefixes whose routes decode their body themselves.
        max_depth: How deep objects and arrays may nest.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        exempt: Iterable[str] = (),
        max_depth: int = MAX_DEPTH,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.exempt = tuple(exempt)
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in _WITH_BODY
            or scope["path"].startswith(self.exempt)
            or not is_json_content_type(Headers(scope=scope).get("content-type"))
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                # the client went away: nothing to check, let the route see the disconnect
                await self.app(scope, _replay([], message, receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _answer(
                    send,
                    413,
                    "payload_too_large",
                    f"request body is larger than {self.max_body_bytes} bytes",
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            try:
                loads(body, max_depth=self.max_depth)
            except JSONSyntaxError:
                pass  # FastAPI reports where the syntax breaks
            except JSONInputError as exc:
                await _answer(send, 400, exc.code, exc.message, exc.details)
                return
        await self.app(scope, _replay([body], None, receive), send)


def _replay(bodies: list[bytes], pending: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read here, then the client's later messages."""
    queue: list[Message] = [{"type": "http.request", "body": b, "more_body": False} for b in bodies]
    if pending is not None:
        queue.append(pending)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay


async def _answer(
    send: Send, status: int, code: str, message: str, details: dict[str, object] | None = None
) -> None:
    body = error_json(code, message, details)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
