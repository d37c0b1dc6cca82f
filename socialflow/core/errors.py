"""The error hierarchy every package raises, and the API and engine map.

    AppError                    anything Socialflow raises on purpose
    ├── UserError               bad input, bad config, forbidden: report it, never retry
    │   ├── NotFoundError       a named thing does not exist (or is not visible to the caller)
    │   ├── ForbiddenError      the caller may see it but lacks the role to do this
    │   ├── ConflictError       the request clashes with current state (duplicate name, …)
    │   ├── RateLimitedError    too many attempts; ``retry_after`` says when to try again
    │   └── ValidationError     input that fails validation; ``problems`` lists every one
    └── TransientError          rate limit, timeout, upstream 5xx: retry with backoff
        └── NodeTimeoutError    a node ran past its timeout

Anything else that escapes is a bug.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AppError",
    "ConflictError",
    "ForbiddenError",
    "NodeTimeoutError",
    "NotFoundError",
    "RateLimitedError",
    "TransientError",
    "UserError",
    "ValidationError",
]


class AppError(Exception):
    """Base of every error Socialflow raises on purpose.

    Args:
        message: What went wrong and what is allowed, in words a user can act on.
        code: A stable snake_case identifier for clients.
        details: Structured extras (field names, limits, upstream codes).
    """

    code = "app_error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}


class UserError(AppError):
    """The input or configuration is wrong; retrying the same call cannot succeed."""

    code = "user_error"


class NotFoundError(UserError):
    """A named resource does not exist, or the caller may not know that it does."""

    code = "not_found"


class ForbiddenError(UserError):
    """The caller is known and may see the resource, but lacks the role for this action."""

    code = "forbidden"


class ConflictError(UserError):
    """The request clashes with the current state (a duplicate name, the last admin, …)."""

    code = "conflict"


class RateLimitedError(UserError):
    """Too many attempts in a window.

    Args:
        message: What was limited.
        retry_after: Seconds until another attempt is allowed.
    """

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ValidationError(UserError):
    """Input failed validation. ``problems`` lists every problem found, not just the first."""

    code = "validation_error"

    def __init__(self, message: str, *, problems: list[dict[str, Any]]) -> None:
        super().__init__(message, details={"problems": problems})
        self.problems = problems


class TransientError(AppError):
    """A passing failure upstream (rate limit, timeout, 5xx); the same call may succeed later.

    Args:
        message: What failed.
        retry_after: Seconds the upstream asked us to wait, when it said so.
    """

    code = "transient_error"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


class NodeTimeoutError(TransientError):
    """A node did not finish within its configured timeout."""

    code = "node_timeout"
