"""Instagram accounts over the API: connect through Instagram Login (emulated), list, switch
mode, disconnect, read the send ledger; admin-only where it matters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.credentials import Credential, key_wrapper, open_credential
from socialflow.instagram import InstagramAccount, OutboxMessage
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import Team, api_settings, make_team
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    TOKEN,
    emulator_settings,
    graph_emulator,
)


@pytest.fixture
async def ig_api(
    db: Any,
    test_registry: Any,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    settings = api_settings(db.url, instagram=emulator_settings(graph_emulator))
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def base(team: Team) -> str:
    return f"/api/workspaces/{team.workspace_id}/instagram"


async def connect(client: httpx.AsyncClient, team: Team) -> dict[str, Any]:
    started = await client.post(f"{base(team)}/connect", json={}, headers=team.admin.headers)
    assert started.status_code == 200, started.text
    start = started.json()
    query = parse_qs(urlparse(start["authorize_url"]).query)
    assert query["scope"][0].split(",") == [
        "instagram_business_basic",
        "instagram_business_manage_comments",
        "instagram_business_manage_messages",
    ]
    assert query["response_type"] == ["code"] and query["state"] == [start["state"]]
    # the browser visits Instagram Login (the emulator), which redirects back with a code
    async with httpx.AsyncClient(trust_env=False) as browser:
        login = await browser.get(f"{start['authorize_url']}&ig_user_id={ACCOUNT}")
    assert login.status_code == 302
    back = urlparse(login.headers["location"])
    assert back.path == "/api/instagram/oauth/callback"
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    return await finish(client, team, params)


async def finish(client: httpx.AsyncClient, team: Team, params: dict[str, str]) -> dict[str, Any]:
    """The callback sends the browser to the web app's page for the attempt (not a JSON body);
    returns the account the attempt connected, as the accounts list shows it."""
    answer = await client.get("/api/instagram/oauth/callback", params=params)
    assert answer.status_code == 303, answer.text
    landing = urlparse(answer.headers["location"])
    assert landing.path == f"/w/{team.workspace_id}/instagram/connected"
    attempt_id = parse_qs(landing.query)["attempt"][0]
    attempt = await client.get(
        f"{base(team)}/connect/attempts/{attempt_id}", headers=team.viewer.headers
    )
    assert attempt.status_code == 200, attempt.text
    outcome = attempt.json()
    assert "token" not in str(outcome).replace("token_", "")
    if outcome["status"] != "connected":
        return {"failed": outcome}
    assert outcome["login_kind"] == "instagram" and len(outcome["accounts"]) == 1
    listed = await client.get(f"{base(team)}/accounts", headers=team.viewer.headers)
    [account] = [a for a in listed.json() if a["id"] == outcome["accounts"][0]["id"]]
    result: dict[str, Any] = account
    return result


async def test_connect_stores_the_account_an_encrypted_long_lived_token_and_subscribes(
    ig_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
    db: Any,
) -> None:
    app, client = ig_api
    team = await make_team(client)
    account = await connect(client, team)
    assert (account["ig_user_id"], account["username"]) == (ACCOUNT, "shop")
    assert account["mode"] == "sandbox" and account["token_status"] == "valid"
    assert "messages" in account["subscribed_fields"] and account["token_expires_at"]
    assert "token" not in str(account).replace("token_", "")
    async with db.sessionmaker() as session:
        row = await session.get(InstagramAccount, uuid.UUID(account["id"]))
        assert row is not None and row.workspace_id == uuid.UUID(team.workspace_id)
        credential = await session.get(Credential, row.credential_id)
    assert credential is not None and credential.kind == "instagram"
    token = open_credential(credential, key_wrapper(app.state.settings))["access_token"]
    assert token.startswith("IGQ-long-") and token.encode() not in credential.ciphertext
    (subscription,) = graph_emulator.calls("subscribed_apps")
    assert subscription["path"] == f"{ACCOUNT}/subscribed_apps"
    assert "comments" in subscription["params"]["subscribed_fields"].split(",")
    # connecting again updates the same account instead of adding one
    again = await connect(client, team)
    assert again["id"] == account["id"]
    listed = await client.get(f"{base(team)}/accounts", headers=team.viewer.headers)
    assert [a["id"] for a in listed.json()] == [account["id"]]


async def test_connect_reads_the_documented_data_list_answers_too(
    ig_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """SPEC U9: Meta's pages show the code exchange and /me answering ``{"data": [{…}]}``
    where code in the wild reads a flat object; both connect the same account."""
    _, client = ig_api
    graph_emulator.state.data_list_answers = True
    async with httpx.AsyncClient(trust_env=False) as raw:
        me = await raw.get(
            f"{graph_emulator.url}/v23.0/me", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert me.json()["data"][0]["username"] == "shop"  # the emulator answers in that shape
    team = await make_team(client)
    account = await connect(client, team)
    assert (account["ig_user_id"], account["username"]) == (ACCOUNT, "shop")
    assert account["token_status"] == "valid"
    assert graph_emulator.calls("subscribed_apps")[0]["path"] == f"{ACCOUNT}/subscribed_apps"


async def test_a_code_used_twice_or_a_forged_state_is_refused(
    ig_api: tuple[Any, httpx.AsyncClient],
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    _, client = ig_api
    team = await make_team(client)
    started = (
        await client.post(f"{base(team)}/connect", json={}, headers=team.admin.headers)
    ).json()
    code = graph_emulator.state.issue_code(ACCOUNT, "shop")
    first = await finish(client, team, {"code": code, "state": started["state"]})
    assert first["ig_user_id"] == ACCOUNT
    # the same state again: spent, refused before Meta is asked anything
    again = await client.get(
        "/api/instagram/oauth/callback", params={"code": code, "state": started["state"]}
    )
    assert again.status_code == 303
    assert again.headers["location"].endswith("/instagram/connected?error=state_used")
    # the same code with a fresh state: Meta refuses it, and the page says so in words
    fresh = (await client.post(f"{base(team)}/connect", json={}, headers=team.admin.headers)).json()
    second = await finish(client, team, {"code": code, "state": fresh["state"]})
    assert second["failed"]["status"] == "failed"
    assert "already used" in second["failed"]["error_message"]
    forged = started["state"][:-4] + "AAAA"
    bad = await client.get("/api/instagram/oauth/callback", params={"code": "x", "state": forged})
    assert bad.status_code == 303
    assert bad.headers["location"].endswith("/instagram/connected?error=state_invalid")


async def test_a_cancelled_instagram_login_lands_on_a_page_that_says_so(
    ig_api: tuple[Any, httpx.AsyncClient],
) -> None:
    _, client = ig_api
    team = await make_team(client)
    started = (
        await client.post(f"{base(team)}/connect", json={}, headers=team.admin.headers)
    ).json()
    cancelled = await finish(
        client,
        team,
        {
            "error": "access_denied",
            "error_reason": "user_denied",
            "error_description": "The user denied your request",
            "state": started["state"],
        },
    )
    assert cancelled["failed"]["error_code"] == "user_denied"
    assert "cancelled the Instagram login" in cancelled["failed"]["error_message"]


async def test_viewers_and_editors_cannot_manage_accounts(
    ig_api: tuple[Any, httpx.AsyncClient],
) -> None:
    _, client = ig_api
    team = await make_team(client)
    account = await connect(client, team)
    target = f"{base(team)}/accounts/{account['id']}"
    for who in (team.viewer, team.editor):
        assert (
            await client.post(f"{base(team)}/connect", json={}, headers=who.headers)
        ).status_code == 403
        assert (
            await client.patch(target, json={"mode": "live"}, headers=who.headers)
        ).status_code == 403
        assert (await client.delete(target, headers=who.headers)).status_code == 403
    outsider = await client.get(f"{base(team)}/accounts", headers=team.outsider.headers)
    assert outsider.status_code == 404
    live = await client.patch(target, json={"mode": "live"}, headers=team.admin.headers)
    assert live.status_code == 200 and live.json()["mode"] == "live"
    wrong = await client.patch(target, json={"mode": "loud"}, headers=team.admin.headers)
    assert wrong.status_code == 422
    gone = await client.delete(target, headers=team.admin.headers)
    assert gone.status_code == 204
    assert (await client.get(f"{base(team)}/accounts", headers=team.admin.headers)).json() == []
    assert (await client.delete(target, headers=team.admin.headers)).status_code == 404


async def test_the_ledger_lists_per_workspace_with_filters(
    ig_api: tuple[Any, httpx.AsyncClient], db: Any
) -> None:
    _, client = ig_api
    team = await make_team(client)
    workspace = uuid.UUID(team.workspace_id)
    account_a, account_b, flow_a = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    run = uuid.uuid4()
    rows = [
        (workspace, account_a, flow_a, "sent"),
        (workspace, account_a, uuid.uuid4(), "sandboxed"),
        (workspace, account_b, flow_a, "refused"),
        (uuid.UUID(team.other_workspace_id), account_a, flow_a, "sent"),
    ]
    async with db.sessionmaker() as session:
        for i, (ws, account, flow, status) in enumerate(rows):
            session.add(
                OutboxMessage(
                    idempotency_key=f"test:{uuid.uuid4()}",
                    workspace_id=ws,
                    account_id=account,
                    flow_id=flow,
                    execution_id=run if i == 1 else uuid.uuid4(),
                    node_id="n",
                    action="private_reply",
                    target=f"c{i}",
                    payload={"text": "hi"},
                    status=status,
                    policy_verdict="refused" if status == "refused" else "allowed",
                    policy_reason="already got a private reply" if status == "refused" else None,
                )
            )
        await session.commit()
    url = f"{base(team)}/outbox"
    everything = (await client.get(url, headers=team.viewer.headers)).json()
    assert sorted(i["target"] for i in everything["items"]) == ["c0", "c1", "c2"]
    by_account = await client.get(
        url, params={"account_id": str(account_a)}, headers=team.viewer.headers
    )
    assert sorted(i["target"] for i in by_account.json()["items"]) == ["c0", "c1"]
    by_flow = await client.get(url, params={"flow_id": str(flow_a)}, headers=team.viewer.headers)
    assert sorted(i["target"] for i in by_flow.json()["items"]) == ["c0", "c2"]
    refused = (
        await client.get(url, params={"status": "refused"}, headers=team.viewer.headers)
    ).json()
    assert [(i["target"], i["policy_reason"]) for i in refused["items"]] == [
        ("c2", "already got a private reply")
    ]
    by_run = await client.get(url, params={"execution_id": str(run)}, headers=team.viewer.headers)
    assert [i["target"] for i in by_run.json()["items"]] == ["c1"]
    page = (await client.get(url, params={"limit": 2}, headers=team.viewer.headers)).json()
    assert len(page["items"]) == 2 and page["next_before"]
    rest = await client.get(
        url, params={"limit": 2, "before": page["next_before"]}, headers=team.viewer.headers
    )
    assert len(rest.json()["items"]) == 1
    assert (
        await client.get(url, params={"status": "lost"}, headers=team.viewer.headers)
    ).status_code == 422


async def test_sample_events_parse_like_real_webhooks_and_name_the_connected_account(
    ig_api: tuple[Any, httpx.AsyncClient],
) -> None:
    _, client = ig_api
    team = await make_team(client)
    url = f"{base(team)}/sample-events"
    before = (await client.get(url, headers=team.viewer.headers)).json()
    assert [s["kind"] for s in before] == ["comment", "dm", "mention"]
    comment = before[0]["payload"]
    assert comment["kind"] == "comment" and comment["text"] and comment["from_username"]
    assert comment["comment_id"] and comment["media_id"] and not comment["is_test"]
    assert before[1]["payload"]["sender_id"] and before[1]["payload"]["message_id"]
    assert {s["payload"]["account_id"] for s in before} == {"17841400000000001"}
    await connect(client, team)
    after = (await client.get(url, headers=team.viewer.headers)).json()
    assert {s["payload"]["account_id"] for s in after} == {ACCOUNT}
    other = await client.get(
        url.replace(team.workspace_id, team.other_workspace_id), headers=team.viewer.headers
    )
    assert other.status_code in (403, 404)
