"""Signed calls to ``POST /hooks/{flow_id}`` (the trigger's ``hmac_sha256`` mode): how a caller
signs a request, and how the route tells a fresh delivery from a replayed one.

Done as careful webhook providers do (Standard Webhooks, Svix, Stripe): the signature covers a
timestamp and the delivery's id as well as the body, so a captured request can neither be
replayed later nor passed off as another delivery::

    X-Socialflow-Timestamp: 1767225600            (Unix seconds, when the request was signed)
    Idempotency-Key: 8f14e45f-ceea-467f-a0e6-...   (the delivery's id; the same on every retry)
    X-Socialflow-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{key}.{raw body}">

The route refuses a timestamp more than five minutes from its clock, and stores the delivery
under its key: a replay inside the window is acknowledged as a duplicate and not run, one after
it is refused. The key may not contain ``.``, so the signed text splits one way only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping

from socialflow.api.errors import UnauthorizedError
from socialflow.core.errors import UserError

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_SECONDS",
    "HookSignatureError",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-Socialflow-Signature"
TIMESTAMP_HEADER = "X-Socialflow-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: how far a signed timestamp may be from the server's clock, either way (clock skew included)
TOLERANCE_SECONDS = 300
_KEY = re.compile(r"^[A-Za-z0-9_:-]{1,200}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HOW = (
    f"sign with {TIMESTAMP_HEADER}: <Unix seconds>, {IDEMPOTENCY_HEADER}: <delivery id> and "
    f'{SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of "{{timestamp}}.{{key}}.{{body}}">'
)


class HookSignatureError(UnauthorizedError):
    """A signed call that is refused (401); ``code`` says why."""

    code = "webhook_unauthorized"


class _InvalidKey(UserError):
    """An Idempotency-Key that cannot be signed (400)."""

    code = "invalid_idempotency_key"


def _digest(secret: str, timestamp: str, key: str, body: bytes) -> str:
    signed = timestamp.encode() + b"." + key.encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(
    secret: str, body: bytes, *, key: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """The headers that sign ``body`` for a webhook trigger in ``hmac_sha256`` mode.

    Args:
        secret: The trigger's secret (``GET .../flows/{flow_id}/webhook``).
        body: The exact bytes sent.
        key: The delivery's id; a new UUID when omitted. Send the same key when retrying.
        timestamp: Unix seconds; now when omitted.

    Returns:
        ``X-Socialflow-Timestamp``, ``Idempotency-Key`` and ``X-Socialflow-Signature``.
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    delivery = key or str(uuid.uuid4())
    return {
        TIMESTAMP_HEADER: stamp,
        IDEMPOTENCY_HEADER: delivery,
        SIGNATURE_HEADER: f"sha256={_digest(secret, stamp, delivery, body)}",
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a signed call and return its delivery key.

    Args:
        headers: The request headers (case-insensitive mapping).
        body: The raw body as received.
        secret: The trigger's secret.
        now: The current Unix time; the clock's when omitted.
        tolerance: Seconds the timestamp may be off, either way.

    Returns:
        The ``Idempotency-Key``: the delivery is stored under it, so a replay is a duplicate.

    Raises:
        HookSignatureError: A header is missing or malformed (``webhook_unauthorized``, or
            ``invalid_idempotency_key`` with 400), the signature does not match
            (``webhook_unauthorized``), or the timestamp is outside the window
            (``webhook_timestamp_expired``).
    """
    stamp = headers.get(TIMESTAMP_HEADER, "").strip()
    key = headers.get(IDEMPOTENCY_HEADER, "").strip()
    sent = headers.get(SIGNATURE_HEADER, "").strip()
    if not stamp or not key or not sent:
        missing = [
            name
            for name, value in (
                (TIMESTAMP_HEADER, stamp),
                (IDEMPOTENCY_HEADER, key),
                (SIGNATURE_HEADER, sent),
            )
            if not value
        ]
        msg = f"this webhook needs signed requests: {', '.join(missing)} missing; {_HOW}"
        raise HookSignatureError(msg, details={"missing": missing})
    if not _KEY.fullmatch(key):
        msg = (
            f"{IDEMPOTENCY_HEADER} must be 1-200 letters, digits, '-', '_' or ':' "
            "(a UUID fits) when requests are signed"
        )
        raise _InvalidKey(msg)
    if not _TIMESTAMP.fullmatch(stamp):
        msg = f"{TIMESTAMP_HEADER} must be Unix seconds (digits only), got {stamp[:20]!r}"
        raise HookSignatureError(msg)
    expected = f"sha256={_digest(secret, stamp, key, body)}"
    if not hmac.compare_digest(sent.lower().encode(), expected.encode()):
        msg = f"{SIGNATURE_HEADER} does not match; {_HOW}"
        raise HookSignatureError(msg)
    skew = (time.time() if now is None else now) - int(stamp)
    if abs(skew) > tolerance:
        msg = (
            f"{TIMESTAMP_HEADER} is {abs(int(skew))} s {'old' if skew > 0 else 'ahead'}; "
            f"signed requests are accepted for {tolerance} s either way: sign each delivery "
            "when sending it (a retry keeps its Idempotency-Key and gets a new timestamp)"
        )
        raise HookSignatureError(msg, code="webhook_timestamp_expired")
    return key
