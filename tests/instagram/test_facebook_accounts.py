"""Accounts connected through Facebook Login at work: webhooks whose entry id is the Page id
(SPEC U3) reach the account's flows, which answer on graph.facebook.com with the Page token;
DMs go out as the Page; the daily check finds a Page token Meta no longer accepts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.credentials import (
    Credential,
    InstagramSecret,
    key_wrapper,
    seal_credential,
)
from socialflow.core.settings import Settings
from socialflow.instagram import (
    GraphClient,
    InstagramAccount,
    build_comment,
    build_dm,
    encode_body,
    sign_sha256,
)
from socialflow.instagram._refresh import refresh_tokens
from socialflow.orchestration import EngineRuntime, FlowExecution, WebhookEvent, Worker
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import api_settings, make_team
from tests.fixtures.facebook_login import connect_facebook_account
from tests.fixtures.flows import publish
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    emulator_settings,
    graph_emulator,
    ledger,
    use_emulator,
)
from tests.instagram.test_webhook_dispatch import deliver, drain, executions, graph

SECRET = "facebook-accounts-test-secret"
#: nothing answers here: a call on the Instagram host would fail the run
DEAD_HOST = "http://127.0.0.1:9"

REPLY: dict[str, Any] = {
    "nodes": [
        {"id": "ig", "kind": "instagram.comment", "config": {"keywords": ["hours"]}},
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "config": {"message": "We open at 7, {{ trigger.from_username }}!"},
        },
    ],
    "edges": [{"source": "ig", "source_port": "event", "target": "reply"}],
}


@pytest.fixture
async def fb_client(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> AsyncIterator[httpx.AsyncClient]:
    use_emulator(runtime, graph_emulator, graph_instagram_url=DEAD_HOST)
    instagram = emulator_settings(
        graph_emulator, graph_instagram_url=DEAD_HOST, app_secrets=[SECRET]
    )
    settings = api_settings(runtime.db.url, instagram=instagram)
    app = create_app(settings, db=runtime.db, registry=runtime.registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.mark.timeout(300)
async def test_a_comment_addressed_to_the_page_runs_the_flow_and_is_answered_via_the_page(
    fb_client: httpx.AsyncClient,
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    team = await make_team(fb_client)
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await fb_client.post(
        base, json={"name": "Opening hours", "graph": REPLY}, headers=team.editor.headers
    )
    assert created.status_code == 201, created.text
    flow_id = uuid.UUID(created.json()["id"])
    published = await fb_client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert published.status_code == 201, published.text
    account, page, token = await connect_facebook_account(
        runtime, graph_emulator, workspace_id=uuid.UUID(team.workspace_id)
    )
    comment = graph_emulator.state.add_comment(
        {"account": page.ig_user_id, "from_username": "lena", "text": "opening hours?"}
    )
    # Meta names the Page, not the Instagram account, as the entry's id
    body = encode_body(
        build_comment(
            "What are your opening HOURS?",
            account_id=page.page_id,
            comment_id=comment["id"],
            from_username="lena",
        )
    )
    answer = await fb_client.post(
        "/webhooks/instagram",
        content=body,
        headers={"X-Hub-Signature-256": sign_sha256(SECRET, body)},
    )
    assert answer.status_code == 200 and answer.json()["stored"] == 1, answer.text

    worker = Worker(runtime, concurrency=1, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 180
        while True:
            runs = await executions(runtime.db, FlowExecution.flow_id == flow_id)
            if runs and all(r.status in ("completed", "failed") for r in runs):
                break
            assert asyncio.get_running_loop().time() < deadline, [r.status for r in runs]
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    [run] = await executions(runtime.db, FlowExecution.flow_id == flow_id)
    assert run.status == "completed", run.error
    assert run.trigger_payload is not None
    assert run.trigger_payload["account_id"] == page.ig_user_id
    assert run.trigger_payload["entry_id"] == page.page_id
    [reply] = graph_emulator.calls(f"{comment['id']}/replies", method="POST")
    assert reply["account"] == page.ig_user_id and "lena" in reply["body"]["message"]
    [row] = await ledger(runtime, target=comment["id"], flow_id=flow_id)
    assert row.status == "sent" and row.account_id == account.id
    assert token not in str(row.response)


async def test_page_entries_are_mapped_only_for_workspaces_that_connected_the_page(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    db, registry = runtime.db, runtime.registry
    mine, other = uuid.uuid4(), uuid.uuid4()
    flow_mine, _ = await publish(
        db, registry, runtime.settings, graph("instagram.comment"), workspace_id=mine
    )
    flow_other, _ = await publish(
        db, registry, runtime.settings, graph("instagram.comment"), workspace_id=other
    )
    _, page, _ = await connect_facebook_account(runtime, graph_emulator, workspace_id=mine)

    [event_id] = await deliver(db, build_comment("hello", account_id=page.page_id))
    # the account's own comment, sent with the Page id: never a reason to run anything
    [own_id] = await deliver(
        db, build_comment("thanks!", account_id=page.page_id, from_id=page.ig_user_id)
    )
    await drain(db, registry)
    runs = await executions(db, FlowExecution.trigger_event_id == event_id)
    assert [r.flow_id for r in runs] == [flow_mine]
    assert flow_other not in [r.flow_id for r in runs]
    assert await executions(db, FlowExecution.trigger_event_id == own_id) == []
    async with db.sessionmaker() as session:
        event = await session.get(WebhookEvent, event_id)
        own = await session.get(WebhookEvent, own_id)
    assert event is not None and event.account_id == page.ig_user_id
    assert own is not None and own.payload["is_self"] is True

    # a message whose recipient is the Page is a Messenger message to the Facebook Page: no
    # Instagram DM flow takes it
    dm_flow, _ = await publish(
        db, registry, runtime.settings, graph("instagram.dm"), workspace_id=mine
    )
    [to_page] = await deliver(db, build_dm("hi page", account_id=page.page_id))
    [to_account] = await deliver(db, build_dm("hi insta", account_id=page.ig_user_id))
    await drain(db, registry)
    assert await executions(db, FlowExecution.trigger_event_id == to_page) == []
    runs = await executions(db, FlowExecution.trigger_event_id == to_account)
    assert [r.flow_id for r in runs] == [dm_flow]


async def test_dms_of_a_facebook_login_account_go_out_as_the_page_on_graph_facebook_com(
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    from tests.fixtures.facebook_login import add_page_admin

    page = add_page_admin(graph_emulator)
    token = graph_emulator.state.facebook.page_token(page.page_id)
    graph_emulator.state.add_account(page.ig_user_id, page.username, token)
    graph_emulator.state.add_message(page.ig_user_id, "5551")
    settings = emulator_settings(graph_emulator, graph_instagram_url=DEAD_HOST)
    client = GraphClient(token, settings, ig_user_id=page.ig_user_id, login_kind="facebook")
    try:
        sent = await client.send_message("5551", text="Fresh bread at 7")
    finally:
        await client.aclose()
    assert sent["recipient_id"] == "5551"
    [call] = graph_emulator.calls("messages", method="POST")
    assert call["path"] == "me/messages" and call["account"] == page.ig_user_id


async def test_the_daily_check_flags_a_page_token_meta_no_longer_accepts(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator, graph_instagram_url=DEAD_HOST)
    workspace = uuid.uuid4()
    kept, _, _ = await connect_facebook_account(runtime, graph_emulator, workspace_id=workspace)
    lost, lost_page, _ = await connect_facebook_account(
        runtime, graph_emulator, workspace_id=workspace
    )
    unreadable, _, _ = await connect_facebook_account(
        runtime, graph_emulator, workspace_id=workspace
    )
    # a token sealed under a master key this process does not have
    other_keys = key_wrapper(Settings(secret_key="another-secret-key-that-is-long-enough"))
    async with runtime.db.sessionmaker() as session:
        credential = await session.get(Credential, unreadable.credential_id)
        assert credential is not None
        seal_credential(credential, InstagramSecret(access_token="EAApage-x"), other_keys)
        await session.commit()
    # the person changed their password: Meta forgets the Page's tokens
    async with httpx.AsyncClient(trust_env=False) as http:
        revoked = await http.post(
            f"{graph_emulator.url}/_emulator/facebook/revoke", json={"page_id": lost_page.page_id}
        )
        assert revoked.status_code == 200
        report = await refresh_tokens(
            runtime.db, runtime.settings.instagram, runtime.key_wrapper(), http
        )
    assert str(kept.id) in report.checked and str(kept.id) not in report.expired
    assert str(lost.id) in report.expired and str(lost.id) not in report.refreshed
    async with runtime.db.sessionmaker() as session:
        kept_row = await session.get(InstagramAccount, kept.id)
        lost_row = await session.get(InstagramAccount, lost.id)
    assert kept_row is not None and kept_row.token_status == "valid"
    assert kept_row.token_expires_at is None  # Page tokens from a long-lived user token
    assert str(unreadable.id) in report.failed
    async with runtime.db.sessionmaker() as session:
        unreadable_row = await session.get(InstagramAccount, unreadable.id)
    assert unreadable_row is not None and unreadable_row.token_status == "invalid"
    assert lost_row is not None and lost_row.token_status == "revoked"
    assert lost_row.last_error is not None and "reconnect with Facebook" in lost_row.last_error
