"""One error body for the whole API: ``{"code", "message", "details"}``, mapped in one place,
and the errors only the HTTP edge raises (each names its status).

    core.errors.UserError
    ├── UnauthorizedError         401: a webhook's secret or signature is missing or wrong
    ├── MethodNotAllowedError     405: a method the route's configuration does not accept
    ├── PayloadTooLargeError      413: a body over its limit (``socialflow.api.body``)
    └── UnsupportedMediaTypeError 415: a content type the route cannot read
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from socialflow.core.errors import (
    AppError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    TransientError,
    UserError,
    ValidationError,
)
from socialflow.core.logging import get_logger

__all__ = [
    "ErrorBody",
    "MethodNotAllowedError",
    "PayloadTooLargeError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "error_json",
    "install_error_handlers",
]

_log = get_logger(__name__)


class ErrorBody(BaseModel):
    """Every error answer."""

    code: str
    message: str
    details: dict[str, Any] = {}


class UnauthorizedError(UserError):
    """The caller did not prove itself (a webhook's secret or signature); the code says how."""

    code = "unauthorized"
    http_status: ClassVar[int] = 401


class MethodNotAllowedError(UserError):
    """A method the route's configuration does not accept."""

    code = "method_not_allowed"
    http_status: ClassVar[int] = 405


class PayloadTooLargeError(UserError):
    """A request body over its limit; the message names the limit and the setting or field."""

    code = "payload_too_large"
    http_status: ClassVar[int] = 413


class UnsupportedMediaTypeError(UserError):
    """A content type the route cannot read; the message names the ones it accepts."""

    code = "unsupported_media_type"
    http_status: ClassVar[int] = 415


def error_json(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    """The error body as bytes, for ASGI middleware that answers before any route runs."""
    return json.dumps(_body(code, message, details)).encode()


def _status_of(exc: AppError) -> int:
    # an API-local error may name its own status (401 for a webhook secret, 413, 415, …)
    explicit = getattr(exc, "http_status", None)
    if isinstance(explicit, int):
        return explicit
    for kind, status in (
        (NotFoundError, 404),
        (ForbiddenError, 403),
        (ConflictError, 409),
        (RateLimitedError, 429),
        (ValidationError, 422),
        (TransientError, 503),
    ):
        if isinstance(exc, kind):
            return status
    return 400


def _body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details or {}}


def _describe_location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {}
    if isinstance(exc, RateLimitedError):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        _body(exc.code, exc.message, exc.details), status_code=_status_of(exc), headers=headers
    )


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        field = _describe_location(tuple(error.get("loc", ())))
        problems.append(
            {"field": field, "message": str(error.get("msg", "")), "type": error.get("type")}
        )
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    return JSONResponse(
        _body("validation_error", f"invalid request: {summary}", {"problems": problems}),
        status_code=422,
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail
    if isinstance(detail, str) and detail.isupper() and " " not in detail:
        # fastapi-users answers with constants such as LOGIN_BAD_CREDENTIALS
        code, message = detail.lower(), detail.replace("_", " ").capitalize()
    elif isinstance(detail, dict):
        raw_code = detail.get("code", f"http_{exc.status_code}")
        code = str(getattr(raw_code, "value", raw_code)).lower()
        message = str(detail.get("reason", detail.get("message", code)))
    else:
        code, message = f"http_{exc.status_code}", str(detail)
    return JSONResponse(
        _body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def _database_refused(_request: Request, exc: Exception) -> JSONResponse:
    # the last line of defence for input the schemas let through (a NUL byte in text on
    # PostgreSQL, a unique key taken by a concurrent request): a client error, not a crash
    if isinstance(exc, IntegrityError):
        return JSONResponse(
            _body("conflict", "the change clashes with existing data; reload and try again"),
            status_code=409,
        )
    _log.warning("database refused a value", error=str(getattr(exc, "orig", exc))[:300])
    return JSONResponse(
        _body(
            "invalid_value",
            "a value was refused by the database (text must not contain NUL characters; "
            "numbers must fit their field)",
        ),
        status_code=422,
    )


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    # a restart or failover: nothing was stored, and the caller's retry will succeed
    _log.warning("database unavailable", error=str(getattr(exc, "orig", exc))[:300])
    return JSONResponse(
        _body("database_unavailable", "the database is unavailable; retry in a few seconds"),
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.headers.get("x-request-id") or getattr(request.state, "request_id", "")
    _log.exception("unhandled error", path=request.url.path, error=repr(exc))
    return JSONResponse(
        _body("internal_error", f"internal error; quote request id {request_id} when reporting"),
        status_code=500,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the one error body."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _database_refused)
    app.add_exception_handler(IntegrityError, _database_refused)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(InterfaceError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
