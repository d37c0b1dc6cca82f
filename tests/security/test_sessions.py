"""Sessions and tokens end when they should, are stored hashed, and passwords follow the rules.

Bearer tokens are opaque, database-backed tokens (like the browser session): logout revokes the
one it is called with, a password change every other one of the user, a password reset all.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import select

from socialflow.api.app import create_app
from socialflow.api.auth.models import AccessToken, User
from socialflow.core.db import Database
from socialflow.migrations import upgrade
from tests.api.conftest import PASSWORD, Actor, api_settings, sign_up
from tests.conftest import POSTGRES_URL, _postgres_admin_dsn

NEW_PASSWORD = "a fresh passphrase 2"


async def _token(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    answer = await client.post("/api/auth/token", data={"username": email, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _me(client: httpx.AsyncClient, **kwargs: Any) -> int:
    return (await client.get("/api/users/me", **kwargs)).status_code


@asynccontextmanager
async def _browser(app: Any, actor: Actor) -> AsyncIterator[httpx.AsyncClient]:
    """A separate client signed in with the session cookie, as a browser is."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as browser:
        login = await browser.post(
            "/api/auth/login", data={"username": actor.email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        yield browser


async def _stored_tokens(app: Any, user_id: uuid.UUID) -> list[str]:
    async with app.state.db.sessionmaker() as session:
        rows = await session.scalars(select(AccessToken).where(AccessToken.user_id == user_id))
        return [row.token for row in rows]


# --- logout --------------------------------------------------------------------------------


async def test_logout_revokes_the_bearer_token_it_was_called_with(
    client: httpx.AsyncClient,
) -> None:
    actor = await sign_up(client)
    other = await _token(client, actor.email)
    assert await _me(client, headers=actor.headers) == 200
    out = await client.post("/api/auth/logout", headers=actor.headers)
    assert out.status_code == 204, out.text
    assert await _me(client, headers=actor.headers) == 401
    again = await client.post("/api/auth/logout", headers=actor.headers)
    assert again.status_code == 401
    # only that token: the same user's other script is still signed in
    assert await _me(client, headers=_bearer(other)) == 200


async def test_logout_with_the_cookie_ends_the_session(app: Any, client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    async with _browser(app, actor) as browser:
        stolen = browser.cookies["sf_session"]
        out = await browser.post(
            "/api/auth/logout", headers={"X-CSRF-Token": browser.cookies["sf_csrf"]}
        )
        assert out.status_code == 204
    assert await _me(client, headers={"Cookie": f"sf_session={stolen}"}) == 401
    assert await _me(client, headers=actor.headers) == 200  # the bearer token is another login


# --- password change -----------------------------------------------------------------------


async def test_changing_the_password_needs_the_current_one_and_ends_every_other_session(
    app: Any, client: httpx.AsyncClient
) -> None:
    actor = await sign_up(client)
    other_script = await _token(client, actor.email)
    changing = await _token(client, actor.email)
    url = "/api/auth/change-password"
    async with _browser(app, actor) as browser:
        wrong = await client.post(
            url,
            json={"current_password": "not my password", "new_password": NEW_PASSWORD},
            headers=_bearer(changing),
        )
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["code"] == "current_password_wrong"
        assert "current_password" in wrong.json()["message"]
        weak = await client.post(
            url,
            json={"current_password": PASSWORD, "new_password": "qwertyuiop"},
            headers=_bearer(changing),
        )
        assert weak.status_code == 422, weak.text
        assert weak.json()["code"] == "password_rejected"
        assert weak.json()["details"]["problems"][0]["field"] == "body.new_password"
        # nothing changed so far: every session still works
        assert await _me(browser) == 200
        assert await _me(client, headers=_bearer(other_script)) == 200

        changed = await client.post(
            url,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=_bearer(changing),
        )
        assert changed.status_code == 204, changed.text
        assert await _me(browser) == 401
        assert await _me(client, headers=_bearer(other_script)) == 401
        assert await _me(client, headers=actor.headers) == 401
        assert await _me(client, headers=_bearer(changing)) == 200  # the one that asked
    assert len(await _stored_tokens(app, actor.user_id)) == 1
    refused = await client.post(
        "/api/auth/token", data={"username": actor.email, "password": PASSWORD}
    )
    assert refused.status_code == 400
    await _token(client, actor.email, NEW_PASSWORD)


async def test_a_browser_session_changes_the_password_with_the_csrf_header(
    app: Any, client: httpx.AsyncClient
) -> None:
    actor = await sign_up(client)
    async with _browser(app, actor) as browser, _browser(app, actor) as laptop:
        body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        no_csrf = await browser.post("/api/auth/change-password", json=body)
        assert no_csrf.status_code == 403 and no_csrf.json()["code"] == "csrf_failed"
        changed = await browser.post(
            "/api/auth/change-password",
            json=body,
            headers={"X-CSRF-Token": browser.cookies["sf_csrf"]},
        )
        assert changed.status_code == 204, changed.text
        assert await _me(browser) == 200
        assert await _me(laptop) == 401


async def test_the_profile_route_cannot_change_the_password_or_email_without_the_current_one(
    client: httpx.AsyncClient,
) -> None:
    """A stolen session alone must not take the account: neither by setting a new password,
    nor by moving the email (where password resets go)."""
    actor = await sign_up(client)
    sneaky = await client.patch(
        "/api/users/me", json={"password": "attacker chosen 123"}, headers=actor.headers
    )
    assert sneaky.status_code == 422, sneaky.text
    assert "change-password" in sneaky.json()["message"]
    await _token(client, actor.email)  # the old password still works
    moved = f"attacker-{uuid.uuid4().hex[:8]}@example.com"
    refused = await client.patch("/api/users/me", json={"email": moved}, headers=actor.headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "current_password_wrong"
    wrong = await client.patch(
        "/api/users/me",
        json={"email": moved, "current_password": "guess guess"},
        headers=actor.headers,
    )
    assert wrong.status_code == 400
    assert (await client.get("/api/users/me", headers=actor.headers)).json()["email"] == actor.email
    ok = await client.patch(
        "/api/users/me",
        json={"email": moved, "current_password": PASSWORD, "display_name": "Moved"},
        headers=actor.headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["email"] == moved
    renamed = await client.patch(
        "/api/users/me", json={"display_name": "No password needed"}, headers=actor.headers
    )
    assert renamed.status_code == 200


async def test_a_password_reset_ends_every_session(app: Any, client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    async with _browser(app, actor) as browser:
        asked = await client.post("/api/auth/forgot-password", json={"email": actor.email})
        assert asked.status_code == 202
        reset_token = app.state.email.sent[-1].body.split("token=")[1].split(" ")[0]
        reset = await client.post(
            "/api/auth/reset-password", json={"token": reset_token, "password": NEW_PASSWORD}
        )
        assert reset.status_code == 200, reset.text
        assert await _me(browser) == 401
        assert await _me(client, headers=actor.headers) == 401
    assert await _stored_tokens(app, actor.user_id) == []


# --- password rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("nine char", "at least 10 characters"),
        ("password123", "most common passwords"),
        ("Qwertyuiop", "most common passwords"),
        ("1234567890", "most common passwords"),
        ("x" * 300, "at most 256 characters"),
    ],
)
async def test_weak_passwords_are_refused_with_a_clear_422(
    client: httpx.AsyncClient, password: str, problem: str
) -> None:
    email = f"rules-{uuid.uuid4().hex[:8]}@example.com"
    answer = await client.post("/api/auth/register", json={"email": email, "password": password})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "password_rejected"
    assert body["message"].startswith("password: ")
    assert problem in body["message"]
    assert [p["field"] for p in body["details"]["problems"]] == ["body.password"]
    assert (
        await client.post("/api/auth/token", data={"username": email, "password": password})
    ).status_code == 400  # nobody was created


async def test_reset_and_shell_apply_the_same_rules(app: Any, client: httpx.AsyncClient) -> None:
    actor = await sign_up(client)
    await client.post("/api/auth/forgot-password", json={"email": actor.email})
    reset_token = app.state.email.sent[-1].body.split("token=")[1].split(" ")[0]
    weak = await client.post(
        "/api/auth/reset-password", json={"token": reset_token, "password": "password123"}
    )
    assert weak.status_code == 422, weak.text
    assert weak.json()["code"] == "password_rejected"


# --- tokens stored hashed ------------------------------------------------------------------


async def test_tokens_are_stored_as_digests_that_sign_nobody_in(
    app: Any, client: httpx.AsyncClient
) -> None:
    actor = await sign_up(client)
    bearer = actor.headers["Authorization"].removeprefix("Bearer ")
    async with _browser(app, actor) as browser:
        session = browser.cookies["sf_session"]
    stored = await _stored_tokens(app, actor.user_id)
    digests = {hashlib.sha256(t.encode()).hexdigest() for t in (bearer, session)}
    assert set(stored) == digests
    for value in stored:
        # what a copy of the table holds is no credential, as a cookie or as a bearer token
        assert await _me(client, headers={"Cookie": f"sf_session={value}"}) == 401
        assert await _me(client, headers=_bearer(value)) == 401
    assert await _me(client, headers=actor.headers) == 200


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """An empty database of this test's own, to migrate step by step."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"socialflow_test_tok_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_sessions_from_before_the_upgrade_are_hashed_and_keep_working(
    fresh_url: str, test_registry: Any
) -> None:
    await upgrade(fresh_url, "0008")
    db = Database(fresh_url)
    # a user signed in before the upgrade: the session token stored in clear
    user_id, old_session = uuid.uuid4(), "s" * 20 + uuid.uuid4().hex[:23]
    helper_app = create_app(api_settings(fresh_url), db=db, registry=test_registry)
    try:
        # the user and token tables are the same at 0008, but for the stored value
        async with db.sessionmaker() as session:
            session.add(
                User(id=user_id, email="before@example.com", hashed_password="x", is_verified=True)
            )
            await session.flush()
            session.add(AccessToken(token=old_session, user_id=user_id))
            await session.commit()
        await upgrade(fresh_url)
        assert await _stored_tokens(helper_app, user_id) == [
            hashlib.sha256(old_session.encode()).hexdigest()
        ]
        async with helper_app.router.lifespan_context(helper_app):
            transport = httpx.ASGITransport(app=helper_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert await _me(client, headers={"Cookie": f"sf_session={old_session}"}) == 200
    finally:
        await db.dispose()
