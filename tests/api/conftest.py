"""API fixtures: the app on each database, an httpx client over ASGI, and people with roles."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.settings import Settings

PASSWORD = "correct horse battery"


def api_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "secret_key": "test-secret-key-that-is-long-enough",
        "database": {"url": database_url},
        "auth": {"login_attempts_per_ip": 100_000, "login_attempts_per_account": 1000},
    }
    # login attempts are counted in the database every test shares: keep the high limits
    # unless a test sets them
    overrides = {**overrides}
    values["auth"] = {**values["auth"], **overrides.pop("auth", {})}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
async def app(db: Any, test_registry: Any) -> AsyncIterator[Any]:
    """The API on the parametrized database, with its lifespan running."""
    application = create_app(
        api_settings(db.url), db=db, registry=test_registry, email=LogEmailSender()
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Actor:
    """A signed-up user and the headers that authenticate them (bearer token)."""

    email: str
    user_id: uuid.UUID
    headers: dict[str, str] = field(default_factory=dict)


async def sign_up(client: httpx.AsyncClient, email: str | None = None) -> Actor:
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    registered = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    token = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return Actor(email=email, user_id=uuid.UUID(registered.json()["id"]), headers=headers)


@dataclass
class Team:
    """A workspace with one member of each role, and an outsider with a workspace of their own."""

    workspace_id: str
    admin: Actor
    editor: Actor
    viewer: Actor
    outsider: Actor
    other_workspace_id: str

    def by_role(self, role: str) -> Actor:
        return {
            "admin": self.admin,
            "editor": self.editor,
            "viewer": self.viewer,
            "outsider": self.outsider,
        }[role]


async def make_team(client: httpx.AsyncClient) -> Team:
    admin, editor, viewer, outsider = [await sign_up(client) for _ in range(4)]
    created = await client.post("/api/workspaces", json={"name": "Acme"}, headers=admin.headers)
    assert created.status_code == 201, created.text
    workspace_id = created.json()["id"]
    for actor, role in ((editor, "editor"), (viewer, "viewer")):
        added = await client.post(
            f"/api/workspaces/{workspace_id}/members",
            json={"email": actor.email, "role": role},
            headers=admin.headers,
        )
        assert added.status_code == 201, added.text
    other = await client.post("/api/workspaces", json={"name": "Other"}, headers=outsider.headers)
    return Team(workspace_id, admin, editor, viewer, outsider, other.json()["id"])


@pytest.fixture
async def team(client: httpx.AsyncClient) -> Team:
    return await make_team(client)
