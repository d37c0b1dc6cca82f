"""Browser sign-in through OAuth2 / OpenID Connect providers, with PKCE (S256) and a state check.

The flow is: ``authorize`` answers the provider's authorization URL and keeps the state and the
PKCE verifier in a short-lived signed cookie; the provider sends the browser back to
``callback``, which checks the state against that cookie, exchanges the code with the verifier,
finds or creates the user and opens a browser session exactly as the password login does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Annotated, Any, Literal

import httpx
import jwt
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi_users.exceptions import UserAlreadyExists
from httpx_oauth.clients.github import GitHubOAuth2
from httpx_oauth.clients.google import GoogleOAuth2
from httpx_oauth.clients.openid import OpenID
from httpx_oauth.exceptions import GetIdEmailError
from httpx_oauth.oauth2 import BaseOAuth2, GetAccessTokenError, OAuth2RequestError
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.concurrency import run_in_threadpool

from socialflow.api.auth.models import User
from socialflow.api.auth.sessions import TokenStrategy
from socialflow.api.auth.users import (
    UserManager,
    cookie_transport,
    get_user_manager,
    token_strategy,
)
from socialflow.api.deps import SettingsDep
from socialflow.api.middleware import CSRF_COOKIE, SESSION_COOKIE
from socialflow.core.errors import NotFoundError, TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import OAuthProvider, Settings

__all__ = [
    "FLOW_COOKIE",
    "OAuthAuthorizeRead",
    "OAuthProviderRead",
    "router",
    "start_browser_session",
]

_log = get_logger(__name__)

FLOW_COOKIE = "sf_oauth"
_FLOW_PATH = "/api/auth/oauth"
_FLOW_SECONDS = 600
_FLOW_AUDIENCE = "socialflow:oauth-flow"
_SCOPES: dict[str, list[str]] = {
    "oidc": ["openid", "email", "profile"],
    "google": ["openid", "email", "profile"],
    "github": ["user:email"],
}

router = APIRouter(prefix="/auth/oauth")
ManagerDep = Annotated[UserManager, Depends(get_user_manager)]
StrategyDep = Annotated[TokenStrategy, Depends(token_strategy)]
ProviderName = Annotated[str, Path(max_length=64, description="A configured provider's name.")]


class OAuthProviderRead(BaseModel):
    """A login provider as the sign-in page shows it; never its secrets."""

    name: str
    title: str
    kind: Literal["github", "google", "oidc"]


class OAuthAuthorizeRead(BaseModel):
    """Where to send the browser to sign in at the provider."""

    authorization_url: str


class _Flow(BaseModel):
    """What the ``sf_oauth`` cookie carries between ``authorize`` and ``callback``."""

    state: str
    verifier: str
    provider: str


def _provider(settings: Settings, name: str) -> OAuthProvider:
    provider = settings.auth.oauth_providers.get(name)
    if provider is None:
        msg = f"no sign-in provider named {name!r}; GET /api/auth/oauth/providers lists them"
        raise NotFoundError(msg, code="oauth_provider_not_found")
    return provider


def _redirect_uri(settings: Settings, name: str) -> str:
    return f"{settings.api.public_url.rstrip('/')}{_FLOW_PATH}/{name}/callback"


def _flow_key(settings: Settings) -> bytes:
    # a key of its own, derived from the secret key: the cookie signature can never be
    # confused with another token signed by the secret key, and is always 256 bits long
    return hmac.new(settings.secret_key.encode(), b"socialflow oauth flow", hashlib.sha256).digest()


def _cookie_secure(settings: Settings) -> bool:
    if settings.auth.cookie_secure is not None:
        return settings.auth.cookie_secure
    return settings.api.public_url.startswith("https://")


def _code_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(verifier)) without padding (RFC 7636, method S256)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _write_flow(flow: _Flow, settings: Settings) -> str:
    now = int(time.time())
    claims = {**flow.model_dump(), "aud": _FLOW_AUDIENCE, "iat": now, "exp": now + _FLOW_SECONDS}
    return jwt.encode(claims, _flow_key(settings), algorithm="HS256")


def _read_flow(request: Request, settings: Settings) -> _Flow | None:
    raw = request.cookies.get(FLOW_COOKIE)
    if not raw:
        return None
    try:
        claims = jwt.decode(
            raw,
            _flow_key(settings),
            algorithms=["HS256"],
            audience=_FLOW_AUDIENCE,
            options={"require": ["exp", "aud"]},
        )
        return _Flow.model_validate(claims)
    except (jwt.PyJWTError, PydanticValidationError):
        return None


async def _build_client(name: str, provider: OAuthProvider) -> BaseOAuth2[Any]:
    if provider.kind == "github":
        return GitHubOAuth2(provider.client_id, provider.client_secret, name=name)
    if provider.kind == "google":
        return GoogleOAuth2(provider.client_id, provider.client_secret, name=name)
    assert provider.discovery_url is not None  # the settings refuse oidc without it
    try:
        # OpenID reads the discovery document in its constructor, with a blocking client
        return await run_in_threadpool(
            OpenID,
            provider.client_id,
            provider.client_secret,
            provider.discovery_url,
            name=name,
            base_scopes=_SCOPES["oidc"],
        )
    except (OAuth2RequestError, KeyError, ValueError) as exc:
        msg = f"the {name} sign-in provider cannot be reached at {provider.discovery_url}"
        raise TransientError(
            msg, code="oauth_provider_unavailable", details={"provider": name}
        ) from exc


async def _client(request: Request, name: str, provider: OAuthProvider) -> BaseOAuth2[Any]:
    """The provider's client, built on first use and kept for the life of the app."""
    clients: dict[str, BaseOAuth2[Any]] | None = getattr(request.app.state, "oauth_clients", None)
    if clients is None:
        clients = request.app.state.oauth_clients = {}
    client = clients.get(name)
    if client is None:
        # two first requests at once may each build a client; the last one stored wins, harmlessly
        client = clients[name] = await _build_client(name, provider)
    return client


async def start_browser_session(
    response: Response,
    user: User,
    strategy: TokenStrategy,
) -> str:
    """Open a browser session as ``POST /api/auth/login`` does.

    Args:
        response: The answer that carries the cookies.
        user: Who signs in.
        strategy: The token strategy; the session row (a digest of the token) is what logout
            deletes.

    Returns:
        The CSRF token, also set in the readable ``sf_csrf`` cookie.
    """
    token = await strategy.write_token(user)
    csrf = secrets.token_urlsafe(32)
    transport = cookie_transport
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=transport.cookie_max_age,
        path="/",
        secure=transport.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    # readable by the page's script, which echoes it in X-CSRF-Token (double submit)
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=transport.cookie_max_age,
        path="/",
        secure=transport.cookie_secure,
        httponly=False,
        samesite="strict",
    )
    return csrf


@router.get("/providers", name="oauth_providers")
async def providers(settings: SettingsDep) -> list[OAuthProviderRead]:
    """The configured sign-in providers, for the sign-in page's buttons."""
    return [
        OAuthProviderRead(name=name, title=provider.title or name, kind=provider.kind)
        for name, provider in settings.auth.oauth_providers.items()
    ]


@router.get("/{provider}/authorize", name="oauth_authorize")
async def authorize(
    request: Request, response: Response, provider: ProviderName, settings: SettingsDep
) -> OAuthAuthorizeRead:
    """Start signing in at a provider: answers the URL to send the browser to.

    Sets the short-lived ``sf_oauth`` cookie that ``callback`` checks.
    """
    config = _provider(settings, provider)
    client = await _client(request, provider, config)
    # 64 random bytes give an 86-character verifier of unreserved characters (RFC 7636: 43-128)
    flow = _Flow(
        state=secrets.token_urlsafe(32), verifier=secrets.token_urlsafe(64), provider=provider
    )
    url = await client.get_authorization_url(
        _redirect_uri(settings, provider),
        state=flow.state,
        scope=_SCOPES[config.kind],
        code_challenge=_code_challenge(flow.verifier),
        code_challenge_method="S256",
    )
    response.set_cookie(
        FLOW_COOKIE,
        _write_flow(flow, settings),
        max_age=_FLOW_SECONDS,
        path=_FLOW_PATH,
        secure=_cookie_secure(settings),
        httponly=True,
        # lax: the cookie must come back on the provider's top-level redirect to the callback
        samesite="lax",
    )
    return OAuthAuthorizeRead(authorization_url=url)


def _check_state(flow: _Flow | None, provider: str, state: str | None) -> _Flow:
    if (
        flow is None
        or state is None
        or flow.provider != provider
        or not secrets.compare_digest(flow.state.encode(), state.encode())
    ):
        msg = (
            "this sign-in does not match the one this browser started, or it expired; "
            "start again from the sign-in page"
        )
        raise UserError(msg, code="oauth_state_mismatch")
    return flow


def _provider_error(response: httpx.Response | None) -> str:
    """The OAuth ``error`` code the provider answered (``invalid_grant``, …), when it said one."""
    if response is None:
        return "unreachable"
    try:
        body = response.json()
    except ValueError:
        return f"http_{response.status_code}"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error) if error else f"http_{response.status_code}"


async def _identity(
    client: BaseOAuth2[Any], name: str, code: str, flow: _Flow, settings: Settings
) -> tuple[str, str]:
    """Exchange the code (with the PKCE verifier) and read who signed in."""
    try:
        token = await client.get_access_token(
            code, _redirect_uri(settings, name), code_verifier=flow.verifier
        )
    except GetAccessTokenError as exc:
        error = _provider_error(exc.response)
        msg = f"the {name} provider refused the sign-in ({error}); start again"
        raise UserError(
            msg, code="oauth_exchange_failed", details={"provider": name, "error": error}
        ) from exc
    # some providers (GitHub) answer a refused exchange with 200 and an error field
    if not token.get("access_token"):
        error = str(token.get("error") or "no_access_token")
        msg = f"the {name} provider refused the sign-in ({error}); start again"
        raise UserError(
            msg, code="oauth_exchange_failed", details={"provider": name, "error": error}
        )
    try:
        account_id, email = await client.get_id_email(token["access_token"])
    except (GetIdEmailError, httpx.HTTPError, KeyError) as exc:
        msg = f"the {name} provider did not say who signed in; start again"
        raise UserError(msg, code="oauth_profile_failed", details={"provider": name}) from exc
    if not email:
        msg = f"the {name} account has no email address Socialflow may read"
        raise UserError(msg, code="oauth_email_missing", details={"provider": name})
    return account_id, email


@router.get(
    "/{provider}/callback",
    name="oauth_callback",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Signed in; the browser goes to the app."}},
)
async def callback(
    request: Request,
    provider: ProviderName,
    manager: ManagerDep,
    strategy: StrategyDep,
    settings: SettingsDep,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=512)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> RedirectResponse:
    """Where the provider sends the browser back: checks the state, signs the person in.

    Sets the session and CSRF cookies as the password login does, then redirects to ``/``.
    """
    config = _provider(settings, provider)
    flow = _check_state(_read_flow(request, settings), provider, state)
    if error is not None or not code:
        msg = f"the sign-in at {provider} was not completed ({error or 'no code'})"
        raise UserError(msg, code="oauth_denied", details={"provider": provider, "error": error})
    client = await _client(request, provider, config)
    account_id, email = await _identity(client, provider, code, flow, settings)
    # the provider's tokens are not kept (see OAuthAccount): only who signed in is stored
    try:
        user = await manager.oauth_callback(
            oauth_name=provider,
            access_token="",
            account_id=account_id,
            account_email=email,
            expires_at=None,
            refresh_token=None,
            request=request,
            # linking to an existing account by email is safe only when the provider vouches
            # for the address; otherwise anyone showing a victim's email there takes the account
            associate_by_email=config.trust_email,
            is_verified_by_default=config.trust_email,
        )
    except UserAlreadyExists as exc:
        msg = (
            f"an account with the email {email} exists; sign in with its password "
            f"(the {provider} sign-in does not vouch for email addresses)"
        )
        raise UserError(msg, code="oauth_account_exists") from exc
    if not user.is_active:
        msg = "this account is disabled; ask an administrator"
        raise UserError(msg, code="oauth_user_inactive")
    response = RedirectResponse("/", status_code=302)
    response.delete_cookie(
        FLOW_COOKIE, path=_FLOW_PATH, secure=_cookie_secure(settings), httponly=True, samesite="lax"
    )
    await start_browser_session(response, user, strategy)
    await manager.on_after_login(user, request, response)
    _log.info("oauth sign-in", provider=provider, user_id=str(user.id))
    return response
