"""The connect flows (Instagram Login, Facebook Login): a signed, expiring, single-use state,
the PKCE verifier kept server-side, and the callback's outcome, shown by the web app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import timedelta
from urllib.parse import urlencode

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.instagram.schemas import ConnectAttemptRead
from socialflow.api.workspaces.models import Membership, Role
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import rows_touched, utcnow
from socialflow.core.errors import AppError, NotFoundError, TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.instagram import (
    ConnectAttempt,
    ConnectStatus,
    InstagramAccount,
    LoginKind,
    authorize_url,
    connect_account,
    connect_facebook,
    facebook_authorize_url,
    pkce_pair,
)

__all__ = ["STATE_SECONDS", "finish", "get_attempt", "read_state", "sign_state", "start"]

_log = get_logger(__name__)
STATE_SECONDS = 900
#: finished attempts are kept this long for the landing page, then deleted
_KEEP = timedelta(days=7)
_MAX_PARAM = 2000
_DENIED = (
    "you cancelled the {login} login or did not allow Socialflow, so nothing was connected; "
    "connect again and choose Continue or Allow"
)


def _state_key(settings: Settings) -> bytes:
    return hashlib.sha256(b"instagram-oauth-state:" + settings.secret_key.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_state(settings: Settings, attempt_id: uuid.UUID, *, seconds: int = STATE_SECONDS) -> str:
    """A tamper-proof ``state`` naming one connect attempt, valid ``seconds``."""
    body = json.dumps(
        {"a": str(attempt_id), "e": int(time.time()) + seconds}, separators=(",", ":")
    ).encode()
    mac = hmac.new(_state_key(settings), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def read_state(settings: Settings, state: str) -> uuid.UUID:
    """Check a ``state``'s signature and age and return its attempt id.

    Raises:
        UserError: Forged, malformed or expired.
    """
    try:
        body_part, mac_part = state.split(".", 1)
        body = base64.urlsafe_b64decode(body_part + "=" * (-len(body_part) % 4))
        mac = base64.urlsafe_b64decode(mac_part + "=" * (-len(mac_part) % 4))
        expected = hmac.new(_state_key(settings), body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")  # noqa: EM101 - caught right below
        data = json.loads(body)
        if int(data["e"]) < time.time():
            raise ValueError("expired")  # noqa: EM101 - caught right below
        return uuid.UUID(data["a"])
    except (ValueError, KeyError, TypeError) as exc:
        msg = "the connect link is invalid or expired; start connecting again"
        raise UserError(msg, code="instagram_oauth_state_invalid") from exc


async def start(
    settings: Settings,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    redirect_uri: str,
    kind: LoginKind,
    *,
    session: AsyncSession,
) -> tuple[str, str]:
    """Record a connect attempt and return (the login page URL, its state).

    Facebook Login gets a PKCE pair when ``instagram.facebook_pkce`` is on; the verifier
    stays in the database. Instagram Login documents no PKCE, so it gets the state alone.

    Raises:
        UserError: The login kind is not configured.
    """
    verifier, challenge = (
        pkce_pair()
        if kind == LoginKind.FACEBOOK and settings.instagram.facebook_pkce
        else (None, None)
    )
    attempt_id = uuid.uuid4()
    state = sign_state(settings, attempt_id)
    # the URL builders refuse an unconfigured login first, so nothing is stored then
    url = (
        facebook_authorize_url(settings.instagram, redirect_uri, state, challenge)
        if kind == LoginKind.FACEBOOK
        else authorize_url(settings.instagram, redirect_uri, state)
    )
    attempt = ConnectAttempt(
        id=attempt_id,
        workspace_id=workspace_id,
        user_id=user_id,
        login_kind=kind,
        redirect_uri=redirect_uri,
        code_verifier=verifier,
        expires_at=utcnow() + timedelta(seconds=STATE_SECONDS),
    )
    old = utcnow() - _KEEP
    await session.execute(delete(ConnectAttempt).where(ConnectAttempt.created_at < old))
    session.add(attempt)
    await session.commit()
    return url, state


def _landing(
    settings: Settings,
    attempt: tuple[uuid.UUID, uuid.UUID] | None,
    error: str | None = None,
) -> str:
    """The web app's page for ``attempt`` (its id and workspace), or for a refused link."""
    base = settings.api.public_url
    if attempt is None:
        return f"{base}/instagram/connected?{urlencode({'error': error or 'state_invalid'})}"
    attempt_id, workspace_id = attempt
    return f"{base}/w/{workspace_id}/instagram/connected?{urlencode({'attempt': str(attempt_id)})}"


async def _claim(
    session: AsyncSession, attempt_id: uuid.UUID, kind: LoginKind
) -> tuple[ConnectAttempt | None, str | None]:
    """Spend the attempt's state: exactly one callback gets it, and only before it expires."""
    spent = await session.execute(
        update(ConnectAttempt)
        .where(
            ConnectAttempt.id == attempt_id,
            ConnectAttempt.login_kind == kind,
            ConnectAttempt.status == ConnectStatus.PENDING,
            ConnectAttempt.expires_at > utcnow(),
        )
        .values(status=ConnectStatus.WORKING)
    )
    await session.commit()
    attempt = await session.get(ConnectAttempt, attempt_id)
    if rows_touched(spent) == 1 and attempt is not None:
        return attempt, None
    if attempt is None or attempt.login_kind != kind:
        return None, "state_invalid"
    if attempt.status == ConnectStatus.PENDING:
        return None, "state_expired"
    return None, "state_used"


async def finish(
    settings: Settings,
    keys: KeyWrapper,
    kind: LoginKind,
    *,
    state: str,
    code: str | None,
    error: str | None,
    error_reason: str | None,
    error_description: str | None,
    session: AsyncSession,
) -> str:
    """Complete the connect flow Meta redirected back from, and say where the browser goes:
    the web app's page for the attempt, which shows the account connected or the error.

    A forged, expired or already used state connects nothing and lands on a page that says
    so; the admin who started must still be an admin of the workspace.
    """
    if len(state) > _MAX_PARAM:
        return _landing(settings, None, "state_invalid")
    try:
        attempt_id = read_state(settings, state)
    except UserError:
        return _landing(settings, None, "state_invalid")
    attempt, refused = await _claim(session, attempt_id, kind)
    if attempt is None:
        _log.warning("instagram connect state refused", reason=refused, attempt=str(attempt_id))
        return _landing(settings, None, refused)
    landing = _landing(settings, (attempt.id, attempt.workspace_id))
    verifier, attempt.code_verifier = attempt.code_verifier, None
    try:
        _check_answer(kind, code, error, error_reason, error_description)
        await _check_admin(session, attempt)
        assert code is not None  # checked above
        accounts = await _connect(settings, keys, kind, attempt, code, verifier, session)
    except Exception as exc:
        await session.rollback()
        await _record(session, attempt_id, kind, failure=exc)
    else:
        await _record(session, attempt_id, kind, accounts=accounts)
    return landing


def _check_answer(
    kind: LoginKind,
    code: str | None,
    error: str | None,
    error_reason: str | None,
    error_description: str | None,
) -> None:
    """Refuse a callback that brings no usable code: the person cancelled, or Meta refused."""
    login = "Facebook" if kind == LoginKind.FACEBOOK else "Instagram"
    if code is not None and len(code) > _MAX_PARAM:
        msg = f"{login} Login sent back an authorization code over {_MAX_PARAM} characters"
        raise UserError(msg, code="meta_refused")
    if error or not code:
        if error_reason == "user_denied" or error == "access_denied":
            raise UserError(_DENIED.format(login=login), code="user_denied")
        said = (error_description or error or "no authorization code was sent back")[:300]
        # the text came in a URL anyone can craft: keep printable characters only
        said = "".join(ch for ch in said if ch.isprintable())
        msg = f"{login} Login did not connect the account: {said}"
        raise UserError(msg, code="meta_refused")


async def _record(
    session: AsyncSession,
    attempt_id: uuid.UUID,
    kind: LoginKind,
    *,
    accounts: list[InstagramAccount] | None = None,
    failure: Exception | None = None,
) -> None:
    """Write how the attempt ended, for the landing page."""
    attempt = await session.get(ConnectAttempt, attempt_id)
    assert attempt is not None  # claimed by this request
    attempt.code_verifier = None
    attempt.finished_at = utcnow()
    if failure is None:
        attempt.status = ConnectStatus.CONNECTED
        attempt.accounts = [
            {"id": str(a.id), "ig_user_id": a.ig_user_id, "username": a.username}
            for a in accounts or []
        ]
    else:
        attempt.status = ConnectStatus.FAILED
        if isinstance(failure, TransientError):
            attempt.error_code = "meta_unreachable"
            attempt.error_message = f"Meta could not be reached; try again in a moment ({failure})"
        elif isinstance(failure, AppError):
            attempt.error_code, attempt.error_message = failure.code, failure.message
        else:
            # a bug: the admin still lands on a page that says it failed, not on a 500
            _log.error("instagram connect crashed", exc_info=failure)
            attempt.error_code = "connect_failed"
            attempt.error_message = "connecting failed unexpectedly; try again"
    await session.commit()
    _log.info(
        "instagram connect finished",
        workspace_id=str(attempt.workspace_id),
        login_kind=kind,
        status=attempt.status,
        code=attempt.error_code,
        accounts=[a["ig_user_id"] for a in attempt.accounts],
    )


async def _check_admin(session: AsyncSession, attempt: ConnectAttempt) -> None:
    role = await session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == attempt.workspace_id,
            Membership.user_id == attempt.user_id,
        )
    )
    if role is None or Role(role) != Role.ADMIN:
        msg = "only admins of the workspace can connect Instagram accounts"
        raise UserError(msg, code="not_admin", details={"required_role": "admin"})


async def _connect(
    settings: Settings,
    keys: KeyWrapper,
    kind: LoginKind,
    attempt: ConnectAttempt,
    code: str,
    verifier: str | None,
    session: AsyncSession,
) -> list[InstagramAccount]:
    async with httpx.AsyncClient(trust_env=False) as http:
        if kind == LoginKind.FACEBOOK:
            return await connect_facebook(
                session,
                http,
                settings.instagram,
                keys,
                workspace_id=attempt.workspace_id,
                code=code,
                redirect_uri=attempt.redirect_uri,
                code_verifier=verifier,
            )
        account = await connect_account(
            session,
            http,
            settings.instagram,
            keys,
            workspace_id=attempt.workspace_id,
            code=code,
            redirect_uri=attempt.redirect_uri,
        )
        return [account]


async def get_attempt(
    workspace_id: uuid.UUID, attempt_id: uuid.UUID, *, session: AsyncSession
) -> ConnectAttemptRead:
    """How one connect attempt of the workspace ended (or that it is still under way).

    Raises:
        NotFoundError: No such attempt in the workspace.
    """
    attempt = await session.get(ConnectAttempt, attempt_id)
    if attempt is None or attempt.workspace_id != workspace_id:
        msg = f"connect attempt {attempt_id} not found"
        raise NotFoundError(msg, code="instagram_connect_attempt_not_found")
    return ConnectAttemptRead.model_validate(attempt)
