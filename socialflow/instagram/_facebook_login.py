"""Facebook Login for Business: the dialog URL (with PKCE), code and long-lived token exchanges,
the permission check, the user's Pages and their linked Instagram accounts, Page tokens stored
as the accounts' credentials, and the Page webhook subscription."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.crypto import KeyWrapper
from socialflow.core.errors import TransientError, UserError
from socialflow.core.settings import InstagramSettings
from socialflow.instagram._errors import map_error
from socialflow.instagram._models import InstagramAccount, LoginKind
from socialflow.instagram._oauth import Token, _expiry, store_token
from socialflow.instagram.client import GraphClient

__all__ = [
    "FACEBOOK_SCOPES",
    "PAGE_WEBHOOK_FIELDS",
    "REQUIRED_PERMISSIONS",
    "connect_facebook",
    "facebook_authorize_url",
    "pkce_pair",
]

#: what the connect flow cannot work without (SPEC §7.2, §5.8)
REQUIRED_PERMISSIONS = (
    "instagram_basic",
    "instagram_manage_comments",
    "instagram_manage_messages",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_metadata",
    "pages_messaging",
)
#: asked for too: Pages a person reaches through Business Manager need it
FACEBOOK_SCOPES = (*REQUIRED_PERMISSIONS, "business_management")
#: the Page's subscription (Messenger webhooks page: ``subscribed_fields=messages``, which
#: needs pages_messaging and pages_manage_metadata); the Instagram fields themselves are
#: chosen on the app (App Dashboard or ``/{app-id}/subscriptions``)
PAGE_WEBHOOK_FIELDS = ["messages", "messaging_postbacks", "message_reactions", "messaging_seen"]
_PAGE_FIELDS = "id,name,access_token,tasks,instagram_business_account{id,username}"
_MAX_PAGES = 100


@dataclass(frozen=True)
class _Page:
    page_id: str
    name: str
    token: str
    ig_user_id: str | None
    username: str


def pkce_pair() -> tuple[str, str]:
    """A PKCE ``(code_verifier, code_challenge)`` with the S256 method (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _app(settings: InstagramSettings) -> tuple[str, str]:
    if not settings.facebook_app_id or settings.facebook_app_secret is None:
        msg = (
            "Facebook Login is not configured: set SOCIALFLOW_INSTAGRAM_FACEBOOK_APP_ID and "
            "SOCIALFLOW_INSTAGRAM_FACEBOOK_APP_SECRET (the Meta app's id and secret)"
        )
        raise UserError(msg, code="facebook_not_configured")
    return settings.facebook_app_id, settings.facebook_app_secret.get_secret_value()


def facebook_authorize_url(
    settings: InstagramSettings, redirect_uri: str, state: str, code_challenge: str | None
) -> str:
    """Facebook Login's dialog, asking for the Instagram and Page permissions.

    Raises:
        UserError: Facebook Login is not configured.
    """
    app_id, _ = _app(settings)
    query = {"client_id": app_id, "redirect_uri": redirect_uri, "response_type": "code"}
    if settings.facebook_config_id:
        query["config_id"] = settings.facebook_config_id
    else:
        query["scope"] = ",".join(FACEBOOK_SCOPES)
    query["state"] = state
    if code_challenge:
        query |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    host = settings.facebook_dialog_url.rstrip("/")
    return f"{host}/{settings.api_version}/dialog/oauth?{urlencode(query)}"


async def _get(
    http: httpx.AsyncClient,
    settings: InstagramSettings,
    path: str,
    params: dict[str, str],
    *,
    call: str,
    token: str | None = None,
) -> dict[str, Any]:
    url = f"{settings.graph_facebook_url.rstrip('/')}/{settings.api_version}/{path}"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = await http.get(
            url, params=params, headers=headers, timeout=settings.request_timeout_seconds
        )
    except httpx.TransportError as exc:
        msg = f"Facebook {call}: could not reach the Graph API: {exc!r}"
        raise TransientError(msg) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success and isinstance(body, dict) and "error" not in body:
        return body
    raise map_error(response.status_code, body, response.headers, call=f"Facebook {call}")


async def _exchange(
    http: httpx.AsyncClient,
    settings: InstagramSettings,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
) -> Token:
    app_id, secret = _app(settings)
    params = {
        "client_id": app_id,
        "client_secret": secret,
        "redirect_uri": redirect_uri,
        "code": code.removesuffix("#_"),
    }
    if code_verifier:
        params["code_verifier"] = code_verifier
    body = await _get(http, settings, "oauth/access_token", params, call="code exchange")
    short = str(body["access_token"])
    body = await _get(
        http,
        settings,
        "oauth/access_token",
        {
            "grant_type": "fb_exchange_token",
            "client_id": app_id,
            "client_secret": secret,
            "fb_exchange_token": short,
        },
        call="long-lived token",
    )
    return Token(str(body["access_token"]), expires_at=_expiry(body))


async def _check_permissions(
    http: httpx.AsyncClient, settings: InstagramSettings, user_token: str
) -> None:
    body = await _get(
        http, settings, "me/permissions", {}, call="read permissions", token=user_token
    )
    granted = {
        str(p.get("permission"))
        for p in body.get("data") or []
        if isinstance(p, dict) and p.get("status") == "granted"
    }
    missing = [p for p in REQUIRED_PERMISSIONS if p not in granted]
    if missing:
        msg = (
            f"Facebook did not grant {', '.join(missing)}; connect again and keep every "
            "permission switched on (Socialflow needs them to read and answer comments and "
            "messages of the Instagram account linked to your Page)"
        )
        raise UserError(msg, code="facebook_permission_missing", details={"missing": missing})


async def _pages(
    http: httpx.AsyncClient, settings: InstagramSettings, user_token: str
) -> list[_Page]:
    body = await _get(
        http,
        settings,
        "me/accounts",
        {"fields": _PAGE_FIELDS, "limit": str(_MAX_PAGES)},
        call="list Pages",
        token=user_token,
    )
    pages: list[_Page] = []
    for item in body.get("data") or []:
        if not isinstance(item, dict) or not item.get("id") or not item.get("access_token"):
            continue
        linked = item.get("instagram_business_account")
        linked = linked if isinstance(linked, dict) and linked.get("id") else None
        pages.append(
            _Page(
                page_id=str(item["id"]),
                name=str(item.get("name") or "")[:200],
                token=str(item["access_token"]),
                ig_user_id=str(linked["id"]) if linked else None,
                username=str(linked.get("username") or "")[:100] if linked else "",
            )
        )
    return pages


async def connect_facebook(
    session: AsyncSession,
    http: httpx.AsyncClient,
    settings: InstagramSettings,
    keys: KeyWrapper,
    *,
    workspace_id: uuid.UUID,
    code: str,
    redirect_uri: str,
    code_verifier: str | None = None,
) -> list[InstagramAccount]:
    """Finish Facebook Login: code → user token → long-lived user token → permissions checked →
    the user's Pages → each Page's Instagram professional account, stored (sandbox mode when
    new) with the Page token sealed as its credential, and the Page subscribed to webhooks.

    A Page token taken from a long-lived user token has no expiry (SPEC §7.2); it stops working
    when the person changes password, loses the Page role or removes the app (code 190).

    Returns:
        The connected accounts, one per Page with a linked Instagram account.

    Raises:
        UserError: The code was refused, a permission is missing, no Page has an Instagram
            account, or Facebook Login is not configured.
        TransientError: Meta could not be reached.
    """
    user = await _exchange(http, settings, code, redirect_uri, code_verifier)
    await _check_permissions(http, settings, user.access_token)
    pages = await _pages(http, settings, user.access_token)
    if not pages:
        msg = (
            "your Facebook account shared no Page with Socialflow; connect again and select "
            "the Page your Instagram professional account is linked to"
        )
        raise UserError(msg, code="facebook_no_pages")
    linked = [p for p in pages if p.ig_user_id]
    if not linked:
        names = ", ".join(p.name or p.page_id for p in pages)
        msg = (
            f"no Instagram professional account is linked to the Pages you shared ({names}); "
            "link one in the Page's settings (Linked accounts → Instagram), then connect again"
        )
        raise UserError(msg, code="facebook_no_instagram_account")
    accounts: list[InstagramAccount] = []
    for page in linked:
        assert page.ig_user_id is not None  # filtered above
        account = await session.scalar(
            select(InstagramAccount).where(
                InstagramAccount.workspace_id == workspace_id,
                InstagramAccount.ig_user_id == page.ig_user_id,
            )
        )
        if account is None:
            account = InstagramAccount(
                workspace_id=workspace_id, ig_user_id=page.ig_user_id, subscribed_fields=[]
            )
            session.add(account)
        account.username = page.username or account.username
        account.login_kind = LoginKind.FACEBOOK
        account.page_id = page.page_id
        account.page_name = page.name
        await store_token(session, account, Token(page.token), keys)
        # the Page token acts as the Page: me/subscribed_apps subscribes the Page
        subscriber = GraphClient(page.token, settings, login_kind=LoginKind.FACEBOOK, http=http)
        await subscriber.subscribe(PAGE_WEBHOOK_FIELDS)
        account.subscribed_fields = list(PAGE_WEBHOOK_FIELDS)
        accounts.append(account)
    await session.commit()
    for account in accounts:
        await session.refresh(account)
    return accounts
