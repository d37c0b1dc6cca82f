"""Connecting Instagram accounts through Facebook Login, end to end against the emulator: the
dialog with PKCE and a signed state, the exchanges, the permission check, the Pages and their
linked accounts, the Page token sealed, the Page subscribed, the callback landing in the web
app; denied consent, missing permissions, no linked account, and state tampering and replay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import func, select, update

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.api.instagram.connect import sign_state
from socialflow.core.credentials import Credential, key_wrapper, open_credential
from socialflow.core.db import utcnow
from socialflow.instagram import ConnectAttempt, InstagramAccount
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import Team, api_settings, make_team
from tests.fixtures.facebook_login import add_page_admin, new_id
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    emulator_settings,
    graph_emulator,
)

REQUIRED = {
    "instagram_basic",
    "instagram_manage_comments",
    "instagram_manage_messages",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_metadata",
    "pages_messaging",
}
PUBLIC_URL = "https://app.socialflow.test"


@pytest.fixture
async def fb_api(
    db: Any,
    test_registry: Any,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = api_settings(
        db.url, instagram=emulator_settings(graph_emulator), api={"public_url": PUBLIC_URL}
    )
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def base(team: Team) -> str:
    return f"/api/workspaces/{team.workspace_id}/instagram"


async def start(client: httpx.AsyncClient, team: Team) -> dict[str, Any]:
    started = await client.post(
        f"{base(team)}/connect/facebook", json={}, headers=team.admin.headers
    )
    assert started.status_code == 200, started.text
    result: dict[str, Any] = started.json()
    return result


async def through_dialog(authorize_url: str) -> dict[str, str]:
    """What the browser does on Facebook's dialog (the emulator): it is sent back with a code
    or an error; returns the callback's query."""
    async with httpx.AsyncClient(trust_env=False) as browser:
        dialog = await browser.get(authorize_url)
    assert dialog.status_code == 302, dialog.text
    back = urlparse(dialog.headers["location"])
    assert back.path == "/api/instagram/oauth/facebook/callback"
    return {k: v[0] for k, v in parse_qs(back.query).items()}


async def land(client: httpx.AsyncClient, params: dict[str, str]) -> str:
    """Call the callback as the browser would; returns where it sends the browser."""
    answer = await client.get("/api/instagram/oauth/facebook/callback", params=params)
    assert answer.status_code == 303, answer.text
    assert "json" not in answer.headers.get("content-type", "")
    return answer.headers["location"]


async def attempt_of(client: httpx.AsyncClient, team: Team, location: str) -> dict[str, Any]:
    target = urlparse(location)
    assert f"{target.scheme}://{target.netloc}" == PUBLIC_URL
    assert target.path == f"/w/{team.workspace_id}/instagram/connected"
    (attempt_id,) = parse_qs(target.query)["attempt"]
    read = await client.get(
        f"{base(team)}/connect/attempts/{attempt_id}", headers=team.viewer.headers
    )
    assert read.status_code == 200, read.text
    result: dict[str, Any] = read.json()
    return result


async def test_facebook_login_connects_the_page_s_instagram_account_end_to_end(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
    db: Any,
) -> None:
    app, client = fb_api
    team = await make_team(client)
    no_instagram = {"page_id": new_id("11"), "name": "Side Project"}
    admin = add_page_admin(graph_emulator, extra_pages=[no_instagram])
    started = await start(client, team)
    dialog = urlparse(started["authorize_url"])
    query = {k: v[0] for k, v in parse_qs(dialog.query).items()}
    assert dialog.path == "/v25.0/dialog/oauth"
    assert query["client_id"] == "1234567890123456" and query["response_type"] == "code"
    assert REQUIRED <= set(query["scope"].split(",")) and query["state"] == started["state"]
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert started["redirect_uri"].endswith("/api/instagram/oauth/facebook/callback")

    location = await land(client, await through_dialog(started["authorize_url"]))
    attempt = await attempt_of(client, team, location)
    assert attempt["status"] == "connected" and attempt["login_kind"] == "facebook"
    assert [(a["ig_user_id"], a["username"]) for a in attempt["accounts"]] == [
        (admin.ig_user_id, admin.username)
    ]
    assert attempt["error_code"] is None

    listed = await client.get(f"{base(team)}/accounts", headers=team.viewer.headers)
    [account] = listed.json()
    assert account["login_kind"] == "facebook" and account["mode"] == "sandbox"
    assert (account["page_id"], account["page_name"]) == (admin.page_id, admin.page_name)
    assert account["token_status"] == "valid" and account["token_expires_at"] is None
    assert "messages" in account["subscribed_fields"]
    # the PKCE verifier went with the code exchange, and is gone from the database
    [dialog_query] = graph_emulator.state.facebook.dialogs
    assert dialog_query["code_challenge"] == query["code_challenge"]
    [exchange] = graph_emulator.calls("oauth/access_token", method="GET")[:1]
    assert len(exchange["params"]["code_verifier"]) >= 43
    async with db.sessionmaker() as session:
        row = await session.get(InstagramAccount, uuid.UUID(account["id"]))
        assert row is not None
        credential = await session.get(Credential, row.credential_id)
        stored = await session.get(ConnectAttempt, uuid.UUID(attempt["id"]))
    assert stored is not None and stored.code_verifier is None
    assert credential is not None and credential.kind == "instagram"
    token = open_credential(credential, key_wrapper(app.state.settings))["access_token"]
    assert token.startswith("EAApage") and token.encode() not in credential.ciphertext
    assert graph_emulator.state.facebook.page_tokens[token] == admin.page_id
    # the Page (not the Instagram account) was subscribed, with its own token
    assert (
        graph_emulator.state.facebook.subscriptions[admin.page_id] == account["subscribed_fields"]
    )
    [subscribe] = graph_emulator.calls("subscribed_apps", method="POST")
    assert subscribe["path"] == "me/subscribed_apps"
    assert subscribe["account"] == f"page:{admin.page_id}"
    # no answer of any route carries a token
    for answer in (started, attempt, listed.json()):
        assert "EAA" not in str(answer)

    # connecting again updates the same account
    again = await attempt_of(
        client,
        team,
        await land(client, await through_dialog((await start(client, team))["authorize_url"])),
    )
    assert again["accounts"][0]["id"] == account["id"]
    assert (
        len((await client.get(f"{base(team)}/accounts", headers=team.viewer.headers)).json()) == 1
    )


async def test_a_missing_permission_is_named_and_nothing_is_connected(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    _, client = fb_api
    team = await make_team(client)
    add_page_admin(
        graph_emulator,
        granted=sorted(REQUIRED - {"instagram_manage_messages", "pages_manage_metadata"}),
    )
    started = await start(client, team)
    attempt = await attempt_of(
        client, team, await land(client, await through_dialog(started["authorize_url"]))
    )
    assert attempt["status"] == "failed"
    assert attempt["error_code"] == "facebook_permission_missing"
    assert "instagram_manage_messages" in attempt["error_message"]
    assert "pages_manage_metadata" in attempt["error_message"]
    assert "instagram_basic" not in attempt["error_message"]
    assert (await client.get(f"{base(team)}/accounts", headers=team.admin.headers)).json() == []
    assert graph_emulator.calls("me/accounts") == []


async def test_denied_consent_lands_on_a_page_that_says_so(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    _, client = fb_api
    team = await make_team(client)
    add_page_admin(graph_emulator)
    graph_emulator.state.facebook.deny = True
    started = await start(client, team)
    params = await through_dialog(started["authorize_url"])
    assert params["error_reason"] == "user_denied" and "code" not in params
    attempt = await attempt_of(client, team, await land(client, params))
    assert attempt["status"] == "failed" and attempt["error_code"] == "user_denied"
    assert "cancelled the Facebook login" in attempt["error_message"]
    assert graph_emulator.calls("oauth/access_token") == []


async def test_pages_without_a_linked_instagram_account_are_named(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    _, client = fb_api
    team = await make_team(client)
    admin = add_page_admin(graph_emulator, linked=False)
    started = await start(client, team)
    attempt = await attempt_of(
        client, team, await land(client, await through_dialog(started["authorize_url"]))
    )
    assert attempt["error_code"] == "facebook_no_instagram_account"
    assert admin.page_name in attempt["error_message"]


async def test_state_is_signed_expiring_and_single_use(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
    db: Any,
) -> None:
    app, client = fb_api
    team = await make_team(client)
    add_page_admin(graph_emulator)
    started = await start(client, team)
    params = await through_dialog(started["authorize_url"])

    def error_of(location: str) -> str:
        target = urlparse(location)
        assert (target.netloc, target.path) == (urlparse(PUBLIC_URL).netloc, "/instagram/connected")
        return parse_qs(target.query)["error"][0]

    forged = params["state"][:-4] + ("AAAA" if not params["state"].endswith("AAAA") else "BBBB")
    assert error_of(await land(client, {**params, "state": forged})) == "state_invalid"
    assert error_of(await land(client, {**params, "state": ""})) == "state_invalid"
    assert error_of(await land(client, {**params, "state": "x" * 5000})) == "state_invalid"
    # a state signed for an attempt that does not exist, and one past its time
    settings = app.state.settings
    nobody = sign_state(settings, uuid.uuid4())
    assert error_of(await land(client, {**params, "state": nobody})) == "state_invalid"
    stale = sign_state(settings, uuid.uuid4(), seconds=-1)
    assert error_of(await land(client, {**params, "state": stale})) == "state_invalid"
    # an Instagram Login state is no Facebook Login state
    ig_started = await client.post(f"{base(team)}/connect", json={}, headers=team.admin.headers)
    ig_state = ig_started.json()["state"]
    assert error_of(await land(client, {**params, "state": ig_state})) == "state_invalid"
    assert graph_emulator.calls("oauth/access_token") == []

    first = await attempt_of(client, team, await land(client, params))
    assert first["status"] == "connected"
    exchanges = len(graph_emulator.calls("me/permissions"))
    # the same callback again (a replayed URL): refused before any call to Meta
    assert error_of(await land(client, params)) == "state_used"
    assert len(graph_emulator.calls("me/permissions")) == exchanges

    # a signed state whose attempt timed out in the database
    late = await start(client, team)
    late_params = await through_dialog(late["authorize_url"])
    async with db.sessionmaker() as session:
        await session.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.workspace_id == uuid.UUID(team.workspace_id))
            .where(ConnectAttempt.status == "pending")
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert error_of(await land(client, late_params)) == "state_expired"


async def test_a_code_exchanged_without_the_right_pkce_verifier_is_refused(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
    db: Any,
) -> None:
    _, client = fb_api
    team = await make_team(client)
    add_page_admin(graph_emulator)
    started = await start(client, team)
    params = await through_dialog(started["authorize_url"])
    # someone holding the code but not the verifier kept server-side cannot redeem it
    async with db.sessionmaker() as session:
        await session.execute(
            update(ConnectAttempt)
            .where(ConnectAttempt.workspace_id == uuid.UUID(team.workspace_id))
            .values(code_verifier="not-the-verifier-" + "x" * 40)
        )
        await session.commit()
    attempt = await attempt_of(client, team, await land(client, params))
    assert attempt["status"] == "failed" and "code_verifier" in attempt["error_message"]
    assert (await client.get(f"{base(team)}/accounts", headers=team.admin.headers)).json() == []


async def test_only_admins_start_and_attempts_stay_in_their_workspace(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
    db: Any,
) -> None:
    _, client = fb_api
    team = await make_team(client)
    add_page_admin(graph_emulator)
    for who in (team.viewer, team.editor):
        refused = await client.post(f"{base(team)}/connect/facebook", json={}, headers=who.headers)
        assert refused.status_code == 403
    bad = await client.post(
        f"{base(team)}/connect/facebook",
        json={"redirect_uri": "javascript:alert(1)"},
        headers=team.admin.headers,
    )
    assert bad.status_code == 422 and "redirect_uri" in bad.text
    huge = await client.post(
        f"{base(team)}/connect/facebook",
        json={"redirect_uri": "https://x.test/" + "a" * 3000},
        headers=team.admin.headers,
    )
    assert huge.status_code == 422
    started = await start(client, team)
    location = await land(client, await through_dialog(started["authorize_url"]))
    attempt_id = parse_qs(urlparse(location).query)["attempt"][0]
    other = f"/api/workspaces/{team.other_workspace_id}/instagram/connect/attempts/{attempt_id}"
    assert (await client.get(other, headers=team.outsider.headers)).status_code == 404
    assert (
        await client.get(
            f"{base(team)}/connect/attempts/{attempt_id}", headers=team.outsider.headers
        )
    ).status_code == 404
    async with db.sessionmaker() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(ConnectAttempt)
            .where(ConnectAttempt.workspace_id == uuid.UUID(team.workspace_id))
        )
    assert count == 1


async def test_an_admin_demoted_before_the_callback_connects_nothing(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
    db: Any,
) -> None:
    from socialflow.api.workspaces.models import Membership

    _, client = fb_api
    team = await make_team(client)
    add_page_admin(graph_emulator)
    started = await start(client, team)
    params = await through_dialog(started["authorize_url"])
    async with db.sessionmaker() as session:
        await session.execute(
            update(Membership)
            .where(
                Membership.workspace_id == uuid.UUID(team.workspace_id),
                Membership.user_id == team.admin.user_id,
            )
            .values(role="viewer")
        )
        await session.commit()
    attempt = await attempt_of(client, team, await land(client, params))
    assert attempt["error_code"] == "not_admin"
    assert graph_emulator.calls("oauth/access_token") == []


async def test_facebook_login_not_configured_is_refused_with_the_settings_to_set(
    db: Any, test_registry: Any
) -> None:
    settings = api_settings(db.url)
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            team = await make_team(client)
            answer = await client.post(
                f"{base(team)}/connect/facebook", json={}, headers=team.admin.headers
            )
    assert answer.status_code == 400
    assert answer.json()["code"] == "facebook_not_configured"
    assert "SOCIALFLOW_INSTAGRAM_FACEBOOK_APP_ID" in answer.json()["message"]


async def test_crafted_callback_values_are_bounded_and_never_break_the_landing(
    fb_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """The callback's query is written by whoever crafts the URL: a NUL byte and a long text
    in Meta's error fields, or an oversized code, end as a failed attempt in words."""
    _, client = fb_api
    team = await make_team(client)
    add_page_admin(graph_emulator)
    started = await start(client, team)
    params = {
        "state": started["state"],
        "error": "server_error",
        "error_description": "bad\x00thing " + "x" * 5000,
    }
    attempt = await attempt_of(client, team, await land(client, params))
    assert attempt["error_code"] == "meta_refused"
    assert "\x00" not in attempt["error_message"] and "badthing" in attempt["error_message"]
    assert len(attempt["error_message"]) < 400
    again = await start(client, team)
    oversized = await attempt_of(
        client, team, await land(client, {"state": again["state"], "code": "A" * 5000})
    )
    assert oversized["error_code"] == "meta_refused"
    assert "over 2000 characters" in oversized["error_message"]
    assert graph_emulator.calls("oauth/access_token") == []
