"""ASGI middleware: request ids, security headers and the body-size limit; the names of the
session and CSRF cookies (the CSRF check itself belongs to the session credential:
``socialflow.api.auth.sessions``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialflow.api.errors import error_json

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SecurityMiddleware",
]

SESSION_COOKIE = "sf_session"
CSRF_COOKIE = "sf_csrf"
CSRF_HEADER = "x-csrf-token"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: https:; connect-src 'self' ws: wss:; font-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)


class SecurityMiddleware:
    """One pass over every HTTP request.

    - binds a request id (``X-Request-ID``, generated when absent) to logs and the response;
    - refuses bodies announced larger than ``max_body_bytes`` with 413, except on ``exempt_size``;
      paths matching a pattern of ``body_limits`` have that limit instead (uploads);
    - adds security headers (CSP, nosniff, referrer policy, frame-ancestors; HSTS on https).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        size_exempt: Iterable[str] = (),
        body_limits: Iterable[tuple[str, int]] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_limits = tuple((re.compile(pattern), limit) for pattern, limit in body_limits)
        self.size_exempt = tuple(size_exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        https = scope.get("scheme") == "https" or headers.get("x-forwarded-proto") == "https"
        problem = self._refuse(scope, headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["X-Request-ID"] = request_id
                out.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                out["X-Content-Type-Options"] = "nosniff"
                out["Referrer-Policy"] = "strict-origin-when-cross-origin"
                out["X-Frame-Options"] = "DENY"
                out["Cross-Origin-Opener-Policy"] = "same-origin"
                if https:
                    out["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
            await send(message)

        try:
            if problem is not None:
                status, body = problem
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send_with_headers({"type": "http.response.body", "body": body})
                return
            await self.app(scope, receive, send_with_headers)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")

    def _refuse(self, scope: Scope, headers: Headers) -> tuple[int, bytes] | None:
        path: str = scope["path"]
        length = headers.get("content-length")
        limit = next(
            (limit for pattern, limit in self.body_limits if pattern.match(path)),
            self.max_body_bytes,
        )
        if (
            length is not None
            and length.isdigit()
            and int(length) > limit
            and not path.startswith(self.size_exempt)
        ):
            message = f"request body is larger than {limit} bytes"
            return 413, error_json("payload_too_large", message)
        return None
