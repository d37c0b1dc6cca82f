"""Sign-up, browser sessions with CSRF, API tokens, logout, password reset, rate limits."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from socialflow.api.app import create_app
from tests.api.conftest import PASSWORD, api_settings, sign_up


async def test_register_and_token_login(client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    me = await client.get("/api/users/me", headers=actor.headers)
    assert me.status_code == 200
    assert me.json()["email"] == actor.email
    assert "hashed_password" not in me.text


async def test_duplicate_registration_and_weak_password_use_the_error_body(
    client: httpx.AsyncClient,
) -> None:
    actor = await sign_up(client)
    again = await client.post(
        "/api/auth/register", json={"email": actor.email, "password": PASSWORD}
    )
    assert again.status_code == 400
    assert again.json()["code"] == "register_user_already_exists"
    weak = await client.post(
        "/api/auth/register", json={"email": "w@example.com", "password": "short"}
    )
    assert weak.status_code == 422
    body = weak.json()
    assert body["code"] == "password_rejected"
    assert "at least 10 characters" in body["message"]
    assert body["details"]["problems"][0]["field"] == "body.password"
    bad = await client.post(
        "/api/auth/register", json={"email": "not-an-email", "password": PASSWORD}
    )
    assert bad.status_code == 422
    assert bad.json()["details"]["problems"][0]["field"] == "body.email"


async def test_wrong_password_is_refused_without_saying_which_part(
    client: httpx.AsyncClient,
) -> None:
    actor = await sign_up(client)
    for username in (actor.email, "nobody@example.com"):
        answer = await client.post(
            "/api/auth/token", data={"username": username, "password": "wrong password"}
        )
        assert answer.status_code == 400
        assert answer.json() == {
            "code": "login_bad_credentials",
            "message": "wrong email or password",
            "details": {},
        }


async def test_browser_session_cookie_needs_csrf_header_and_logout_revokes_it(
    client: httpx.AsyncClient,
) -> None:
    actor = await sign_up(client)
    login = await client.post(
        "/api/auth/login", data={"username": actor.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    set_cookie = login.headers.get_list("set-cookie")
    session_cookie = next(c for c in set_cookie if c.startswith("sf_session="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    csrf = login.json()["csrf_token"]
    assert client.cookies.get("sf_csrf") == csrf

    assert (await client.get("/api/users/me")).status_code == 200  # reads need no CSRF header
    refused = await client.post("/api/workspaces", json={"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "csrf_failed"
    wrong = await client.post(
        "/api/workspaces", json={"name": "x"}, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403
    created = await client.post(
        "/api/workspaces", json={"name": "x"}, headers={"X-CSRF-Token": csrf}
    )
    assert created.status_code == 201

    stolen = client.cookies.get("sf_session")
    out = await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    # the server forgot the session: replaying the old cookie no longer works
    client.cookies.set("sf_session", stolen)
    assert (await client.get("/api/users/me")).status_code == 401


async def test_password_reset_by_emailed_token(app: Any, client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    asked = await client.post("/api/auth/forgot-password", json={"email": actor.email})
    assert asked.status_code == 202
    message = app.state.email.sent[-1]
    assert message.to == actor.email
    token = message.body.split("token=")[1].split(" ")[0]
    reset = await client.post(
        "/api/auth/reset-password", json={"token": token, "password": "a brand new secret"}
    )
    assert reset.status_code == 200
    old = await client.post("/api/auth/token", data={"username": actor.email, "password": PASSWORD})
    assert old.status_code == 400
    new = await client.post(
        "/api/auth/token", data={"username": actor.email, "password": "a brand new secret"}
    )
    assert new.status_code == 200


async def test_email_verification(app: Any, client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    assert (
        await client.post("/api/auth/request-verify-token", json={"email": actor.email})
    ).status_code == 202
    token = app.state.email.sent[-1].body.split("token=")[1].split(" ")[0]
    verified = await client.post("/api/auth/verify", json={"token": token})
    assert verified.status_code == 200
    assert verified.json()["is_verified"] is True


async def test_login_is_rate_limited_per_account_with_retry_after(
    db: Any, test_registry: Any
) -> None:
    settings = api_settings(
        db.url,
        auth={
            "login_attempts_per_account": 3,
            "login_attempts_per_ip": 100_000,
            "login_window_seconds": 60,
        },
    )
    app = create_app(settings, db=db, registry=test_registry)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            actor = await sign_up(client)
            for _ in range(3):
                bad = await client.post(
                    "/api/auth/token", data={"username": actor.email, "password": "wrong password"}
                )
                assert bad.status_code == 400
            limited = await client.post(
                "/api/auth/token", data={"username": actor.email, "password": PASSWORD}
            )
            assert limited.status_code == 429
            assert limited.json()["code"] == "rate_limited"
            assert 1 <= int(limited.headers["retry-after"]) <= 60
            # another account from the same address is not affected
            other = await sign_up(client)
            assert other.headers


async def test_login_is_rate_limited_per_address(db: Any, test_registry: Any) -> None:
    settings = api_settings(
        db.url,
        auth={
            "login_attempts_per_account": 100,
            "login_attempts_per_ip": 4,
            "login_window_seconds": 60,
        },
    )
    app = create_app(settings, db=db, registry=test_registry)
    # attempts are counted in the database other tests share: an address of this test's own
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://t"
        ) as client:
            codes = [
                (
                    await client.post(
                        "/api/auth/token",
                        data={"username": f"u{i}@example.com", "password": "x" * 9},
                    )
                ).status_code
                for i in range(6)
            ]
    assert codes[:4] == [400] * 4
    assert codes[4:] == [429, 429]


async def test_replicas_share_one_login_limit(db: Any, test_registry: Any) -> None:
    """Two API replicas on one database count the same attempts: failures spread across both
    reach the per-account limit, and a success on either forgets them."""
    settings = api_settings(
        db.url,
        auth={
            "login_attempts_per_account": 3,
            "login_attempts_per_ip": 100_000,
            "login_window_seconds": 60,
        },
    )
    apps = [create_app(settings, db=db, registry=test_registry) for _ in range(2)]
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            for app in apps
        ]
        try:
            actor = await sign_up(clients[0])
            good = {"username": actor.email, "password": PASSWORD}
            wrong = {"username": actor.email.upper(), "password": "wrong password"}
            assert (await clients[0].post("/api/auth/token", data=wrong)).status_code == 400
            assert (await clients[1].post("/api/auth/token", data=good)).status_code == 200
            # the success on replica 1 cleared replica 0's failure: three more fit
            for client in (clients[0], clients[1], clients[0]):
                assert (await client.post("/api/auth/token", data=wrong)).status_code == 400
            for client in clients:
                limited = await client.post("/api/auth/token", data=good)
                assert limited.status_code == 429, limited.text
                assert "this account" in limited.json()["message"]
        finally:
            for client in clients:
                await client.aclose()


@pytest.mark.parametrize("path", ["/healthz", "/api/users/me", "/nope"])
async def test_security_headers_on_every_response(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path, headers={"X-Request-ID": "req-123"})
    assert answer.headers["x-request-id"] == "req-123"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in answer.headers
    https = await client.get(path, headers={"X-Forwarded-Proto": "https"})
    assert "max-age" in https.headers["strict-transport-security"]


@pytest.mark.prefect
async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "prefect": "ok"}


async def test_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/auth/register",
        content=b"{" + b" " * 2_000_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["code"] == "payload_too_large"
