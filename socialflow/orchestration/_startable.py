"""Whether a claimed execution can start: its trigger payload is checked before it is handed to
Prefect, and a failed start is told apart as passing (retry) or lasting (fail once).

A worker whose start fails for a passing reason (the database or Prefect's API away or
overloaded) lets the lease lapse so a later claim tries again. A start that fails for a lasting
reason (a payload Prefect's server or PostgreSQL refuses, a graph that does not compile, a bug)
would fail the same way on every attempt and end ``crashed`` after the last one with a reason
that blames the workers; it is failed at once with its own reason instead.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from socialflow.core import safejson
from socialflow.core.errors import AppError, TransientError
from socialflow.orchestration._recorder import MAX_VALUE_DEPTH

__all__ = ["check_trigger", "is_passing", "start_failure"]

_PASSING_STATUS = frozenset({408, 429})
_CHAIN = 8  # causes followed: Prefect wraps connection errors (RuntimeError "Failed to reach API")


def check_trigger(trigger: Any) -> None:
    """Refuse a trigger payload Prefect's server or PostgreSQL could not take.

    The edge refuses such payloads already; this catches what reached the inbox another way
    (an event stored by an earlier version, a re-run of an old execution).

    Raises:
        safejson.JSONInputError: Nested deeper than ``MAX_VALUE_DEPTH``, or holding a NUL or a
            lone surrogate; the message names the field (``$.body.note``).
    """
    safejson.check(trigger, max_depth=MAX_VALUE_DEPTH, what="the trigger payload")


def is_passing(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is a failure that may be gone on the next attempt."""
    seen: BaseException | None = exc
    for _ in range(_CHAIN):
        if seen is None:
            return False
        if isinstance(
            seen,
            TransientError | OSError | httpx.TransportError | OperationalError | InterfaceError,
        ) or isinstance(seen, PoolTimeoutError):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, httpx.HTTPStatusError):
            status = seen.response.status_code
            return status >= 500 or status in _PASSING_STATUS
        seen = seen.__cause__ or seen.__context__
    return False


def start_failure(exc: BaseException) -> str:
    """The execution's error for a start that failed for a lasting reason."""
    reason = exc.message if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
    return f"the run could not start: {reason}"[:2000]
