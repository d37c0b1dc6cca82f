"""Sign-in through an OpenID Connect provider on loopback: PKCE S256, the state check, sessions."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import func, select, update

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.api.auth.models import User
from tests.api.conftest import api_settings, sign_up
from tests.fixtures.oidc_provider import OIDCProvider, serve_oidc_provider

PUBLIC_URL = "http://testserver"
CLIENT_ID = "socialflow-web"
CLIENT_SECRET = "acme-client-secret-never-shown"
GITHUB_SECRET = "github-client-secret-never-shown"
CALLBACK = f"{PUBLIC_URL}/api/auth/oauth/acme/callback"
OAUTH = "/api/auth/oauth"


def oauth_settings(database_url: str, discovery_url: str, *, trust_email: bool = True) -> Any:
    return api_settings(
        database_url,
        api={"public_url": PUBLIC_URL},
        auth={
            "oauth_providers": {
                "acme": {
                    "kind": "oidc",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "discovery_url": discovery_url,
                    "title": "Acme SSO",
                    "trust_email": trust_email,
                },
                "gh": {"kind": "github", "client_id": "gh-id", "client_secret": GITHUB_SECRET},
            }
        },
    )


@pytest.fixture
def provider() -> Iterator[OIDCProvider]:
    with serve_oidc_provider(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, redirect_uris=[CALLBACK]
    ) as idp:
        yield idp


@pytest.fixture
async def oauth_app(db: Any, test_registry: Any, provider: OIDCProvider) -> AsyncIterator[Any]:
    app = create_app(
        oauth_settings(db.url, provider.discovery_url),
        db=db,
        registry=test_registry,
        email=LogEmailSender(),
    )
    async with app.router.lifespan_context(app):
        yield app


def browser(app: Any) -> httpx.AsyncClient:
    """One browser's view of the app (its own cookie jar)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_URL)


def provider_browser(provider: OIDCProvider) -> httpx.AsyncClient:
    """The same browser's view of the provider: real HTTP to loopback."""
    return httpx.AsyncClient(base_url=provider.base_url, trust_env=False)


@pytest.fixture
async def web(oauth_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(oauth_app) as client:
        yield client


@pytest.fixture
async def idp(provider: OIDCProvider) -> AsyncIterator[httpx.AsyncClient]:
    async with provider_browser(provider) as client:
        yield client


async def sign_in_at_provider(idp: httpx.AsyncClient, email: str) -> str:
    sub = f"acme-{uuid.uuid4().hex[:12]}"
    answer = await idp.post("/login", data={"sub": sub, "email": email})
    assert answer.status_code == 200, answer.text
    return sub


def new_email() -> str:
    return f"sso-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Started:
    """An authorization the app started: the provider URL, its query and the flow cookie."""

    url: str
    query: dict[str, str]
    cookie: str


async def start(web: httpx.AsyncClient, name: str = "acme") -> Started:
    answer = await web.get(f"{OAUTH}/{name}/authorize")
    assert answer.status_code == 200, answer.text
    url = answer.json()["authorization_url"]
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    cookie = web.cookies.get("sf_oauth")
    assert cookie
    return Started(url, query, cookie)


async def consent(idp: httpx.AsyncClient, started: Started) -> str:
    """The person approves at the provider; returns where the provider sends the browser."""
    answer = await idp.get(started.url)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{CALLBACK}?")
    return location


async def oauth_login(web: httpx.AsyncClient, idp: httpx.AsyncClient) -> httpx.Response:
    location = await consent(idp, await start(web))
    return await web.get(location)


def set_cookies(answer: httpx.Response) -> dict[str, str]:
    return {raw.split("=", 1)[0]: raw for raw in answer.headers.get_list("set-cookie")}


def callback_query(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


async def people(db: Any, email: str) -> list[tuple[uuid.UUID, bool, list[tuple[str, str, str]]]]:
    """Users with ``email``: id, verified, and their linked (provider, account id, token)."""
    async with db.session() as session:
        users = (await session.scalars(select(User).where(User.__table__.c.email == email))).all()
        return [
            (
                user.id,
                user.is_verified,
                [(a.oauth_name, a.account_id, a.access_token) for a in user.oauth_accounts],
            )
            for user in users
        ]


def assert_refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["code"] == code
    assert set(body) == {"code", "message", "details"}
    assert "sf_session" not in set_cookies(answer)


async def test_providers_are_listed_without_secrets(
    web: httpx.AsyncClient, provider: OIDCProvider
) -> None:
    answer = await web.get(f"{OAUTH}/providers")
    assert answer.status_code == 200
    assert answer.json() == [
        {"name": "acme", "title": "Acme SSO", "kind": "oidc"},
        {"name": "gh", "title": "gh", "kind": "github"},
    ]
    assert CLIENT_SECRET not in answer.text and GITHUB_SECRET not in answer.text
    # clients are built on first use: listing reads no discovery document
    assert provider.discovery_hits == 0


async def test_authorization_url_carries_pkce_s256_and_a_signed_short_lived_cookie(
    web: httpx.AsyncClient, provider: OIDCProvider
) -> None:
    answer = await web.get(f"{OAUTH}/acme/authorize")
    assert answer.status_code == 200, answer.text
    url = answer.json()["authorization_url"]
    assert url.startswith(f"{provider.base_url}/authorize?")
    query = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"].split() == ["openid", "email", "profile"]
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) >= 43
    assert len(query["state"]) >= 32
    assert CLIENT_SECRET not in url

    raw = set_cookies(answer)["sf_oauth"]
    assert "HttpOnly" in raw and "SameSite=lax" in raw
    assert "Max-Age=600" in raw and "Path=/api/auth/oauth" in raw
    cookie = web.cookies["sf_oauth"]
    claims = jwt.decode(cookie, options={"verify_signature": False})
    verifier = claims["verifier"]
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert query["code_challenge"] == challenge.rstrip(b"=").decode()
    assert claims["state"] == query["state"] and claims["provider"] == "acme"
    assert claims["exp"] - claims["iat"] == 600

    again = await start(web)
    assert again.query["state"] != query["state"]
    assert again.query["code_challenge"] != query["code_challenge"]
    assert provider.discovery_hits == 1  # the client (and its discovery) is kept per app

    github = await start(web, "gh")
    assert github.url.startswith("https://github.com/login/oauth/authorize?")
    assert github.query["scope"] == "user:email"
    assert github.query["code_challenge_method"] == "S256"
    assert github.query["redirect_uri"] == f"{PUBLIC_URL}/api/auth/oauth/gh/callback"


async def test_full_login_signs_the_browser_in_and_reuses_the_user(
    db: Any,
    oauth_app: Any,
    web: httpx.AsyncClient,
    idp: httpx.AsyncClient,
    provider: OIDCProvider,
) -> None:
    email = new_email()
    sub = await sign_in_at_provider(idp, email)
    answer = await oauth_login(web, idp)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"] == "/"
    cookies = set_cookies(answer)
    assert "HttpOnly" in cookies["sf_session"] and "SameSite=lax" in cookies["sf_session"]
    assert "HttpOnly" not in cookies["sf_csrf"]
    assert "Max-Age=0" in cookies["sf_oauth"]  # the flow cookie is spent
    assert "sf_oauth" not in web.cookies
    # the exchange sent the verifier, and the provider refused nothing
    assert [len(r["code_verifier"]) >= 43 for r in provider.token_requests] == [True]
    assert provider.refusals == []

    me = await web.get("/api/users/me")
    assert me.status_code == 200, me.text
    assert me.json()["email"] == email
    assert me.json()["is_verified"] is True
    # the same session as a password login: state changes need the CSRF header
    csrf = web.cookies["sf_csrf"]
    assert (await web.post("/api/workspaces", json={"name": "x"})).status_code == 403
    created = await web.post("/api/workspaces", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 201, created.text

    [(user_id, verified, accounts)] = await people(db, email)
    assert verified is True
    assert accounts == [("acme", sub, "")]  # the provider's token is not stored

    async with browser(oauth_app) as other:  # another device of the same person
        second = await oauth_login(other, idp)
        assert second.status_code == 302, second.text
        assert (await other.get("/api/users/me")).json()["id"] == str(user_id)
    assert await people(db, email) == [(user_id, True, [("acme", sub, "")])]


async def test_an_existing_password_account_is_linked_by_email(
    db: Any, web: httpx.AsyncClient, idp: httpx.AsyncClient
) -> None:
    email = new_email()
    actor = await sign_up(web, email)
    sub = await sign_in_at_provider(idp, email)
    answer = await oauth_login(web, idp)
    assert answer.status_code == 302, answer.text
    me = await web.get("/api/users/me")
    assert me.json()["id"] == str(actor.user_id)
    assert await people(db, email) == [(actor.user_id, False, [("acme", sub, "")])]


async def test_a_wrong_state_is_refused_before_any_exchange(
    db: Any, web: httpx.AsyncClient, idp: httpx.AsyncClient, provider: OIDCProvider
) -> None:
    email = new_email()
    await sign_in_at_provider(idp, email)
    location = await consent(idp, await start(web))
    query = callback_query(location)
    for state in ("x" + query["state"][1:], "", "é" * 10):
        answer = await web.get(f"{OAUTH}/acme/callback", params={**query, "state": state})
        assert_refused(answer, 400, "oauth_state_mismatch")
    missing = await web.get(f"{OAUTH}/acme/callback", params={"code": query["code"]})
    assert_refused(missing, 400, "oauth_state_mismatch")
    assert provider.token_requests == []  # the code was never sent to the provider
    assert (await web.get("/api/users/me")).status_code == 401
    assert await people(db, email) == []


async def test_a_missing_forged_or_foreign_cookie_is_refused(
    oauth_app: Any, web: httpx.AsyncClient, idp: httpx.AsyncClient, provider: OIDCProvider
) -> None:
    await sign_in_at_provider(idp, new_email())
    started = await start(web)
    location = await consent(idp, started)

    async with browser(oauth_app) as stranger:  # a browser that never started this sign-in
        assert_refused(await stranger.get(location), 400, "oauth_state_mismatch")

    claims = jwt.decode(started.cookie, options={"verify_signature": False})
    forged = jwt.encode(claims, "a-key-that-is-not-the-secret-key-!!", algorithm="HS256")
    header, _payload, signature = started.cookie.split(".")
    other_claims = {**claims, "provider": "gh"}
    payload = base64.urlsafe_b64encode(json.dumps(other_claims).encode())
    tampered = f"{header}.{payload.rstrip(b'=').decode()}.{signature}"
    for cookie in (forged, tampered, "not-a-token"):
        web.cookies.clear()
        web.cookies.set("sf_oauth", cookie)
        assert_refused(await web.get(location), 400, "oauth_state_mismatch")

    # a genuine cookie for another provider does not open this provider's callback
    web.cookies.clear()
    github = await start(web, "gh")
    answer = await web.get(
        f"{OAUTH}/acme/callback", params={"code": "any", "state": github.query["state"]}
    )
    assert_refused(answer, 400, "oauth_state_mismatch")
    assert provider.token_requests == []


async def test_an_injected_code_fails_pkce_at_the_provider(
    db: Any, oauth_app: Any, provider: OIDCProvider
) -> None:
    # the attacker starts a sign-in as themselves and stops before the callback: the code
    # they hold is bound to their own challenge
    attacker_email, victim_email = new_email(), new_email()
    async with browser(oauth_app) as attacker, provider_browser(provider) as attacker_idp:
        await sign_in_at_provider(attacker_idp, attacker_email)
        stolen_code = callback_query(await consent(attacker_idp, await start(attacker)))["code"]
    # the victim's browser started its own sign-in; the injected code arrives with its state
    async with browser(oauth_app) as victim:
        victim_flow = await start(victim)
        answer = await victim.get(
            f"{OAUTH}/acme/callback",
            params={"code": stolen_code, "state": victim_flow.query["state"]},
        )
        assert_refused(answer, 400, "oauth_exchange_failed")
        assert answer.json()["details"] == {"provider": "acme", "error": "invalid_grant"}
        assert (await victim.get("/api/users/me")).status_code == 401
    assert provider.refusals == ["code_verifier does not match code_challenge"]
    assert await people(db, attacker_email) == []
    assert await people(db, victim_email) == []


async def test_a_replayed_callback_is_refused(
    web: httpx.AsyncClient, idp: httpx.AsyncClient, provider: OIDCProvider
) -> None:
    await sign_in_at_provider(idp, new_email())
    started = await start(web)
    location = await consent(idp, started)
    assert (await web.get(location)).status_code == 302
    # the flow cookie was cleared: the same callback no longer matches this browser
    assert_refused(await web.get(location), 400, "oauth_state_mismatch")
    # and with the old cookie put back, the provider refuses the spent code
    web.cookies.set("sf_oauth", started.cookie)
    replay = await web.get(location)
    assert_refused(replay, 400, "oauth_exchange_failed")
    assert provider.refusals == ["unknown or already used code"]


async def test_a_denied_consent_is_reported(web: httpx.AsyncClient) -> None:
    started = await start(web)
    answer = await web.get(
        f"{OAUTH}/acme/callback", params={"error": "access_denied", "state": started.query["state"]}
    )
    assert_refused(answer, 400, "oauth_denied")
    assert answer.json()["details"] == {"provider": "acme", "error": "access_denied"}


async def test_an_inactive_user_is_refused(
    db: Any, web: httpx.AsyncClient, idp: httpx.AsyncClient
) -> None:
    email = new_email()
    actor = await sign_up(web, email)
    async with db.session() as session:
        await session.execute(
            update(User).where(User.__table__.c.id == actor.user_id).values(is_active=False)
        )
    await sign_in_at_provider(idp, email)
    answer = await oauth_login(web, idp)
    assert_refused(answer, 400, "oauth_user_inactive")
    assert (await web.get("/api/users/me")).status_code == 401
    async with db.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.__table__.c.email == email)
        )
    assert count == 1


async def test_unknown_provider_is_404_with_the_error_body(web: httpx.AsyncClient) -> None:
    for path in (f"{OAUTH}/nope/authorize", f"{OAUTH}/nope/callback?code=c&state=s"):
        answer = await web.get(path)
        assert_refused(answer, 404, "oauth_provider_not_found")
        assert "sf_oauth" not in set_cookies(answer)


async def test_an_unreachable_provider_is_a_transient_error(db: Any, test_registry: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = oauth_settings(db.url, f"http://127.0.0.1:{port}/.well-known/openid-configuration")
    app = create_app(settings, db=db, registry=test_registry)
    async with app.router.lifespan_context(app), browser(app) as client:
        answer = await client.get(f"{OAUTH}/acme/authorize")
        assert_refused(answer, 503, "oauth_provider_unavailable")
        assert "sf_oauth" not in set_cookies(answer)


async def test_routes_are_named(oauth_app: Any) -> None:
    paths = oauth_app.openapi()["paths"]
    assert paths[f"{OAUTH}/providers"]["get"]["operationId"] == "oauth_providers"
    assert paths[f"{OAUTH}/{{provider}}/authorize"]["get"]["operationId"] == "oauth_authorize"
    assert paths[f"{OAUTH}/{{provider}}/callback"]["get"]["operationId"] == "oauth_callback"


async def test_an_untrusted_provider_cannot_take_over_an_existing_account(
    db: Any, test_registry: Any, provider: OIDCProvider, idp: httpx.AsyncClient
) -> None:
    settings = oauth_settings(db.url, provider.discovery_url, trust_email=False)
    app = create_app(settings, db=db, registry=test_registry)
    async with app.router.lifespan_context(app), browser(app) as client:
        email = new_email()
        victim = await sign_up(client, email)
        await sign_in_at_provider(idp, email)  # someone shows the victim's email at the provider
        answer = await oauth_login(client, idp)
        assert_refused(answer, 400, "oauth_account_exists")
        assert (await client.get("/api/users/me")).status_code == 401
        assert await people(db, email) == [(victim.user_id, False, [])]
        # a new person is still welcome, as an unverified account
        newcomer = new_email()
        await sign_in_at_provider(idp, newcomer)
        assert (await oauth_login(client, idp)).status_code == 302
        me = await client.get("/api/users/me")
        assert me.json()["email"] == newcomer and me.json()["is_verified"] is False
