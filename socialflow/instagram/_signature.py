"""Meta webhook authenticity: the GET verification handshake and X-Hub-Signature checks."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping

from socialflow.core.settings import Settings

__all__ = [
    "CHALLENGE_PATTERN",
    "SHA1_HEADER",
    "SHA256_HEADER",
    "SignatureCheck",
    "check_challenge",
    "sign_sha1",
    "sign_sha256",
    "verify_signature",
    "webhook_secrets",
]

SHA256_HEADER = "X-Hub-Signature-256"
SHA1_HEADER = "X-Hub-Signature"
#: What an echoed ``hub.challenge`` may contain: Meta sends an integer; anything that could
#: carry markup or a header break is refused, so the endpoint cannot reflect a script.
CHALLENGE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_DEV_CONTEXT = b"socialflow-instagram-webhook-dev-secret"


def webhook_secrets(settings: Settings) -> list[bytes]:
    """The secrets a webhook signature may be made with, in the order they are tried.

    The configured ``instagram.app_secrets``; when none are configured, a secret derived from
    ``secret_key`` in development (so ``socialflow simulate`` works out of the box), and none
    at all elsewhere, which makes every webhook fail its check.
    """
    configured = [s.get_secret_value().encode() for s in settings.instagram.app_secrets]
    configured = [s for s in configured if s]
    if configured:
        return configured
    if settings.environment == "development":
        derived = hmac.new(settings.secret_key.encode(), _DEV_CONTEXT, hashlib.sha256)
        return [derived.hexdigest().encode()]
    return []


def sign_sha256(secret: bytes | str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends for ``body``: ``sha256=<lowercase hex>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def sign_sha1(secret: bytes | str, body: bytes) -> str:
    """The legacy ``X-Hub-Signature`` value for ``body``: ``sha1=<lowercase hex>``."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()


class SignatureCheck:
    """The outcome of a signature check: ``ok``, and in words why not."""

    __slots__ = ("algorithm", "ok", "reason")

    def __init__(self, ok: bool, reason: str, algorithm: str | None = None) -> None:
        self.ok = ok
        self.reason = reason
        self.algorithm = algorithm

    def __bool__(self) -> bool:
        return self.ok


def _matches(sent: str, prefix: str, digest: str, secrets: Iterable[bytes], body: bytes) -> bool:
    if not sent.startswith(prefix):
        return False
    received = sent[len(prefix) :].strip().lower().encode()
    found = False
    for secret in secrets:
        expected = hmac.new(secret, body, digest).hexdigest().encode()
        # every secret is compared, match or not, so timing says nothing about which matched
        found = hmac.compare_digest(received, expected) or found
    return found


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secrets: list[bytes],
    *,
    allow_sha1: bool = False,
) -> SignatureCheck:
    """Check Meta's signature of the raw request body against each secret.

    ``X-Hub-Signature-256`` is required; the legacy SHA-1 ``X-Hub-Signature`` is used only when
    the SHA-256 header is absent and ``allow_sha1`` is set. The digest is computed over the bytes
    exactly as received (Meta signs its ``\\uXXXX``-escaped JSON; re-serialising would not match)
    and compared in constant time.

    Args:
        body: The request body as received.
        headers: Request headers (case-insensitive mapping, or lower-case keys).
        secrets: Candidate secrets (Meta App Secret, Instagram App Secret).
        allow_sha1: Whether the SHA-1 fallback is allowed.

    Returns:
        The check's outcome; falsy when the body must be refused.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    sha256 = lowered.get(SHA256_HEADER.lower())
    sha1 = lowered.get(SHA1_HEADER.lower())
    if not secrets:
        return SignatureCheck(
            False,
            "no Instagram app secret is configured: set SOCIALFLOW_INSTAGRAM_APP_SECRETS",
        )
    if sha256 is not None:
        if _matches(sha256, "sha256=", "sha256", secrets, body):
            return SignatureCheck(True, "", "sha256")
        return SignatureCheck(
            False, f"{SHA256_HEADER} does not match the body signed with any configured secret"
        )
    if sha1 is not None and allow_sha1:
        if _matches(sha1, "sha1=", "sha1", secrets, body):
            return SignatureCheck(True, "", "sha1")
        return SignatureCheck(
            False, f"{SHA1_HEADER} does not match the body signed with any configured secret"
        )
    return SignatureCheck(False, f"the request has no {SHA256_HEADER} header (sha256=<hex>)")


def check_challenge(params: Mapping[str, str], verify_token: str | None) -> tuple[str | None, str]:
    """Answer Meta's verification handshake.

    Reads ``hub.mode``, ``hub.verify_token`` and ``hub.challenge`` (or their ``hub_*`` spelling,
    as PHP front ends rewrite them).

    Args:
        params: The query parameters.
        verify_token: The configured Verify Token; ``None`` refuses every handshake.

    Returns:
        ``(challenge, "")`` to echo, or ``(None, reason)`` when the handshake is refused. A
        refused challenge's reason starts with ``hub.challenge`` (a malformed request rather
        than a wrong token).
    """

    def param(name: str) -> str | None:
        return params.get(f"hub.{name}", params.get(f"hub_{name}"))

    if param("mode") != "subscribe":
        return None, "hub.mode must be 'subscribe'"
    if not verify_token:
        return None, "no verify token is configured: set SOCIALFLOW_INSTAGRAM_VERIFY_TOKEN"
    sent = param("verify_token") or ""
    if not hmac.compare_digest(sent.encode(), verify_token.encode()):
        return None, "hub.verify_token does not match the configured verify token"
    challenge = param("challenge") or ""
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        return None, "hub.challenge must be 1-256 letters, digits, '-' or '_'"
    return challenge, ""
