"""Request bodies read by the routes that take their raw bytes (webhooks, uploads), capped in size.

The middleware refuses a body whose ``Content-Length`` announces too much; a chunked body
announces nothing, so these readers count what arrives and stop at the limit, whatever the
route, with one error (``PayloadTooLargeError``, 413) whose message the route words: which
body or field, and what is allowed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any

from starlette.requests import Request

from socialflow.api.errors import PayloadTooLargeError

__all__ = ["BodyLimit", "iter_body", "read_body"]


class BodyLimit:
    """How many bytes a body may have, and what the refusal says.

    Args:
        max_bytes: The largest body accepted.
        message: The refusal: which body or field, the limit, the setting that sets it.
        details: Structured extras of the refusal (the field, ``max_bytes``).
    """

    __slots__ = ("details", "max_bytes", "message")

    def __init__(
        self, max_bytes: int, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.message = message
        self.details = dict(details or {})

    def error(self) -> PayloadTooLargeError:
        """The refusal of a body over the limit."""
        return PayloadTooLargeError(self.message, details=dict(self.details) or None)


async def iter_body(request: Request, limit: BodyLimit) -> AsyncGenerator[bytes, None]:
    """The body's chunks as they arrive, refused as soon as they pass the limit.

    Raises:
        PayloadTooLargeError: More than ``limit.max_bytes`` arrived.
    """
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit.max_bytes:
            raise limit.error()
        yield chunk


async def read_body(request: Request, limit: BodyLimit) -> bytes:
    """The whole body, read no further than the limit.

    Raises:
        PayloadTooLargeError: More than ``limit.max_bytes`` arrived.
    """
    body = bytearray()
    async for chunk in iter_body(request, limit):
        body += chunk
    return bytes(body)
