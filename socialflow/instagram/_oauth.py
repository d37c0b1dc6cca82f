"""Instagram Login: authorize URL, code exchange, long-lived tokens, and storing the account."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.credentials import Credential, InstagramSecret, seal_credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import utcnow
from socialflow.core.errors import TransientError, UserError
from socialflow.core.settings import InstagramSettings
from socialflow.instagram._errors import map_error
from socialflow.instagram._models import InstagramAccount, TokenStatus
from socialflow.instagram.client import GraphClient

__all__ = [
    "SCOPES",
    "WEBHOOK_FIELDS",
    "Token",
    "authorize_url",
    "connect_account",
    "exchange_code",
    "long_lived_token",
    "refresh_token",
    "store_token",
]

SCOPES = (
    "instagram_business_basic",
    "instagram_business_manage_comments",
    "instagram_business_manage_messages",
)
WEBHOOK_FIELDS = [
    "comments",
    "live_comments",
    "messages",
    "message_reactions",
    "messaging_postbacks",
    "messaging_seen",
    "messaging_referral",
    "message_edit",
]


@dataclass(frozen=True)
class Token:
    """An access token and, for long-lived ones, when it expires."""

    access_token: str
    user_id: str = ""
    expires_at: datetime | None = None


def _app(settings: InstagramSettings) -> tuple[str, str]:
    if not settings.app_id or settings.app_secret is None:
        msg = (
            "Instagram Login is not configured: set SOCIALFLOW_INSTAGRAM_APP_ID and "
            "SOCIALFLOW_INSTAGRAM_APP_SECRET (the Instagram app's id and secret)"
        )
        raise UserError(msg, code="instagram_not_configured")
    return settings.app_id, settings.app_secret.get_secret_value()


def authorize_url(settings: InstagramSettings, redirect_uri: str, state: str) -> str:
    """The Instagram Login page to send an admin to, asking for the business scopes."""
    app_id, _ = _app(settings)
    query = urlencode(
        {
            "client_id": app_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": ",".join(SCOPES),
            "state": state,
            "enable_fb_login": "false",
        }
    )
    return f"{settings.oauth_authorize_url}?{query}"


async def _json(response: httpx.Response, call: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict) and "error" not in body:
        return body
    if isinstance(body, dict) and "error_message" in body:  # Instagram Login's own shape
        msg = f"Instagram {call}: {body['error_message']}"
        raise UserError(msg, code="instagram_oauth_refused")
    raise map_error(response.status_code, body, response.headers, call=call)


def _expiry(body: dict[str, Any]) -> datetime | None:
    seconds = body.get("expires_in")
    return utcnow() + timedelta(seconds=int(seconds)) if isinstance(seconds, int) else None


async def exchange_code(
    http: httpx.AsyncClient, settings: InstagramSettings, code: str, redirect_uri: str
) -> Token:
    """Trade an authorization code (valid 1 h, once) for a short-lived token."""
    app_id, secret = _app(settings)
    try:
        response = await http.post(
            settings.oauth_token_url,
            data={
                "client_id": app_id,
                "client_secret": secret,
                "grant_type": "authorization_code",
                "redirect_uri": redirect_uri,
                "code": code.removesuffix("#_"),
            },
            timeout=settings.request_timeout_seconds,
        )
    except httpx.TransportError as exc:
        msg = f"Instagram code exchange: could not reach {settings.oauth_token_url}: {exc!r}"
        raise TransientError(msg) from exc
    body = await _json(response, "code exchange")
    data = body.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        body = data[0]
    return Token(str(body["access_token"]), str(body.get("user_id") or ""))


async def _token_call(
    http: httpx.AsyncClient, settings: InstagramSettings, path: str, params: dict[str, str]
) -> Token:
    url = f"{settings.graph_instagram_url.rstrip('/')}/{path}"
    try:
        response = await http.get(url, params=params, timeout=settings.request_timeout_seconds)
    except httpx.TransportError as exc:
        msg = f"Instagram {path}: could not reach the Graph API: {exc!r}"
        raise TransientError(msg) from exc
    body = await _json(response, path.replace("_", " "))
    return Token(str(body["access_token"]), expires_at=_expiry(body))


async def long_lived_token(
    http: httpx.AsyncClient, settings: InstagramSettings, short: str
) -> Token:
    """Trade a short-lived token for a long-lived one (60 days)."""
    _, secret = _app(settings)
    return await _token_call(
        http,
        settings,
        "access_token",
        {
            "grant_type": "ig_exchange_token",
            "client_secret": secret,
            "access_token": short,
        },
    )


async def refresh_token(http: httpx.AsyncClient, settings: InstagramSettings, token: str) -> Token:
    """Refresh a long-lived token at least 24 hours old; it is valid 60 days again."""
    return await _token_call(
        http,
        settings,
        "refresh_access_token",
        {
            "grant_type": "ig_refresh_token",
            "access_token": token,
        },
    )


async def store_token(
    session: AsyncSession, account: InstagramAccount, token: Token, keys: KeyWrapper
) -> None:
    """Seal ``token`` into the account's credential (created when missing) and note its expiry."""
    credential = (
        await session.get(Credential, account.credential_id) if account.credential_id else None
    )
    if credential is None:
        credential = Credential(
            workspace_id=account.workspace_id,
            kind="instagram",
            name=f"instagram-{account.ig_user_id}-{uuid.uuid4().hex[:6]}",
        )
        session.add(credential)
    seal_credential(credential, InstagramSecret(access_token=token.access_token), keys)
    await session.flush()
    account.credential_id = credential.id
    account.token_expires_at = token.expires_at
    account.token_refreshed_at = utcnow()
    account.token_status = TokenStatus.VALID
    account.last_error = None


async def connect_account(
    session: AsyncSession,
    http: httpx.AsyncClient,
    settings: InstagramSettings,
    keys: KeyWrapper,
    *,
    workspace_id: uuid.UUID,
    code: str,
    redirect_uri: str,
) -> InstagramAccount:
    """Finish Instagram Login: exchange the code, keep a long-lived token, identify the
    account, store it (sandbox mode when new) and subscribe its webhooks.

    Raises:
        UserError: The code was refused or the app is not configured.
        TransientError: Meta could not be reached.
    """
    short = await exchange_code(http, settings, code, redirect_uri)
    token = await long_lived_token(http, settings, short.access_token)
    graph = GraphClient(token.access_token, settings, http=http)
    me = await graph.me()
    ig_user_id = me["user_id"] or short.user_id
    account = await session.scalar(
        select(InstagramAccount).where(
            InstagramAccount.workspace_id == workspace_id, InstagramAccount.ig_user_id == ig_user_id
        )
    )
    if account is None:
        account = InstagramAccount(
            workspace_id=workspace_id, ig_user_id=ig_user_id, subscribed_fields=[]
        )
        session.add(account)
    account.username = me["username"]
    account.login_kind = "instagram"
    await store_token(session, account, token, keys)
    # subscribing again after a reconnect makes newly granted scopes take effect
    subscriber = GraphClient(token.access_token, settings, ig_user_id=ig_user_id, http=http)
    await subscriber.subscribe(WEBHOOK_FIELDS)
    account.subscribed_fields = list(WEBHOOK_FIELDS)
    await session.commit()
    await session.refresh(account)
    return account
