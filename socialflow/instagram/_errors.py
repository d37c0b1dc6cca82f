"""Graph API error codes and usage headers, mapped to Socialflow's error classes."""

from __future__ import annotations

import json
from typing import Any

from socialflow.core.errors import AppError, TransientError, UserError

__all__ = [
    "GraphError",
    "TokenInvalidError",
    "TransientGraphError",
    "backoff_seconds",
    "map_error",
]

#: codes Meta documents as passing: retry with backoff
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613, 80001, 80002, 80006})
#: codes about throttling, where the usage headers say how long to wait
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002, 80006})

#: (code, subcode) → reason shown to the user; subcode None matches any subcode
_REASONS: dict[tuple[int, int | None], tuple[str, str]] = {
    (10, 2534022): (
        "outside_window",
        "the message is outside the allowed window (24 hours after the user's last message; "
        "7 days with the HUMAN_AGENT tag)",
    ),
    (10, 2018278): ("outside_window", "the message is outside the allowed messaging window"),
    (10, 2018108): ("recipient_unavailable", "the recipient cannot receive messages right now"),
    (10, 1893063): ("sending_restricted", "the account is temporarily restricted from sending"),
    (10, None): (
        "permission_denied",
        "permission denied; reconnect the account or check App Review",
    ),
    (100, 2534025): (
        "private_reply_invalid",
        "the comment is invalid for a private reply (already answered privately, older than 7 "
        "days, or not eligible)",
    ),
    (100, 2534014): ("no_matching_user", "no matching Instagram user; use an IGSID"),
    (100, 2018001): ("no_matching_user", "no matching user found"),
    (100, 2534015): ("invalid_message", "the message data is invalid"),
    (100, 33): ("object_missing", "the object does not exist or the token lacks permission"),
    (100, None): ("invalid_parameter", "Meta refused a parameter"),
    (551, None): (
        "recipient_unavailable",
        "this person isn't receiving messages from you right now",
    ),
    (368, None): ("policy_block", "temporarily blocked for policy violations"),
    (506, None): ("duplicate", "duplicate post"),
    (3, None): ("capability", "the app lacks the capability or permission for this call"),
}


class GraphError(UserError):
    """Meta refused the call and repeating it cannot help.

    Attributes:
        graph_code: Meta's ``error.code``.
        subcode: Meta's ``error_subcode``.
    """

    code = "instagram_refused"

    def __init__(
        self, message: str, *, graph_code: int | None, subcode: int | None, code: str
    ) -> None:
        super().__init__(message, code=code, details={"graph_code": graph_code, "subcode": subcode})
        self.graph_code = graph_code
        self.subcode = subcode


class TokenInvalidError(GraphError):
    """Code 190: the access token expired or was revoked; the account must be reconnected."""

    code = "instagram_token_invalid"


class TransientGraphError(TransientError):
    """A passing Graph API failure (throttling, 5xx, timeout)."""

    code = "instagram_transient"


def backoff_seconds(headers: Any, attempt: int = 1) -> float | None:
    """Seconds to wait according to Meta's usage headers, or None when they say nothing.

    ``X-Business-Use-Case-Usage`` carries ``estimated_time_to_regain_access`` in minutes;
    ``X-App-Usage`` only percentages, so at 100 % or more an exponential wait is suggested.

    Args:
        headers: Response headers (any mapping with ``get``).
        attempt: 1 for the first retry; scales the fallback wait.

    Returns:
        The wait in seconds, or None.
    """
    wait: float | None = None
    buc = _json_header(headers.get("x-business-use-case-usage"))
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                minutes = (
                    entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else 0
                )
                if isinstance(minutes, int | float) and minutes > 0:
                    wait = max(wait or 0.0, float(minutes) * 60)
                elif isinstance(entry, dict) and _saturated(entry):
                    wait = max(wait or 0.0, 2.0**attempt)
    app = _json_header(headers.get("x-app-usage"))
    if isinstance(app, dict) and _saturated(app):
        wait = max(wait or 0.0, 2.0**attempt)
    return wait


def _retry_after_header(headers: Any) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds, if any."""
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _saturated(usage: dict[str, Any]) -> bool:
    keys = ("call_count", "total_cputime", "total_time")
    return any(isinstance(usage.get(k), int | float) and usage[k] >= 100 for k in keys)


def _json_header(value: str | None) -> Any:
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None


def map_error(status: int, body: Any, headers: Any, *, call: str) -> AppError:
    """The error to raise for a failed Graph API response.

    Args:
        status: HTTP status.
        body: Parsed JSON body (Meta's ``{"error": {...}}``), or None.
        headers: Response headers, for the usage-based backoff.
        call: What was attempted, for the message (``reply to comment 123``).

    Returns:
        A ``TransientGraphError``, ``TokenInvalidError`` or ``GraphError``.
    """
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code") if isinstance(error.get("code"), int) else None
    subcode = error.get("error_subcode") if isinstance(error.get("error_subcode"), int) else None
    meta_message = str(error.get("message") or f"HTTP {status}")
    where = f"Instagram {call}"
    throttled = status == 429 and code is None  # a proxy's or load balancer's throttle
    if code in TRANSIENT_CODES or throttled or status >= 500:
        wait = backoff_seconds(headers)
        if wait is None and throttled:
            wait = _retry_after_header(headers)
        return TransientGraphError(
            f"{where}: temporary Graph API error (code {code}, HTTP {status}): {meta_message}",
            retry_after=wait,
            details={"graph_code": code, "subcode": subcode, "status": status},
        )
    if code == 190:
        return TokenInvalidError(
            f"{where}: the access token expired or was revoked (code 190, subcode {subcode}); "
            "reconnect the account under Instagram accounts",
            graph_code=code,
            subcode=subcode,
            code=TokenInvalidError.code,
        )
    reason = _REASONS.get((code or 0, subcode)) or _REASONS.get((code or 0, None))
    if reason is None and code is not None and 200 <= code <= 299:
        reason = ("permission_denied", "the app lacks a permission; check App Review")
    slug, text = reason or ("graph_error", "Meta refused the call")
    return GraphError(
        f"{where}: {text} (code {code}, subcode {subcode}): {meta_message}",
        graph_code=code,
        subcode=subcode,
        code=f"instagram_{slug}",
    )
