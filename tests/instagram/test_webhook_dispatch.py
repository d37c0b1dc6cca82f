"""From a signed webhook to flow runs: owners resolved through connected accounts, no reply
loops, and one run however often Meta delivers the same comment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

import httpx
import pytest
from sqlalchemy import func, select

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.api.webhooks.service import store_webhook
from socialflow.core.db import Database
from socialflow.instagram import InstagramAccount, build_comment, build_dm, encode_body, sign_sha256
from socialflow.nodes import BaseNode, NodeConfig, NodeRegistry, Port
from socialflow.nodes.builtins import BUILTIN_NODES
from socialflow.orchestration import (
    Dispatcher,
    EngineRuntime,
    EventStatus,
    FlowExecution,
    InboxWriter,
    WebhookEvent,
    Worker,
)
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.conftest import api_settings, make_team
from tests.fixtures.flows import publish
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)

SECRET = "dispatch-test-secret"


def graph(trigger: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "ig", "kind": trigger, "config": config or {}},
            {"id": "note", "kind": "data.set", "config": {"values": {"t": "{{ trigger.kind }}"}}},
        ],
        "edges": [{"source": "ig", "source_port": "event", "target": "note"}],
    }


def new_account_id() -> str:
    return f"1784{uuid.uuid4().int % 10**13:013d}"


async def connect(
    db: Database, workspace_id: uuid.UUID, ig_user_id: str, *, login_kind: str = "instagram"
) -> None:
    """Connect an account to a workspace the way the connection flow leaves it."""
    async with db.sessionmaker() as session:
        session.add(
            InstagramAccount(
                workspace_id=workspace_id,
                ig_user_id=ig_user_id,
                username=f"shop_{ig_user_id[-4:]}",
                login_kind=login_kind,
                credential_id=uuid.uuid4(),
            )
        )
        await session.commit()


async def deliver(db: Database, payload: dict[str, Any]) -> list[uuid.UUID]:
    inbox = InboxWriter(db)
    try:
        receipt = await store_webhook(inbox, encode_body(payload))
    finally:
        await inbox.close()
    assert receipt.received >= 1
    from socialflow.instagram import parse_payload

    keys = [p.dedupe_key for p in parse_payload(payload)]
    async with db.sessionmaker() as session:
        found = await session.scalars(
            select(WebhookEvent.id).where(WebhookEvent.dedupe_key.in_(keys))
        )
        return list(found.all())


async def drain(db: Database, registry: NodeRegistry) -> None:
    while await Dispatcher(db, registry).dispatch_once():
        pass


async def executions(db: Database, *where: Any) -> list[FlowExecution]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(FlowExecution).where(*where))).all())


async def status(db: Database, event_id: uuid.UUID) -> str:
    async with db.sessionmaker() as session:
        event = await session.get(WebhookEvent, event_id)
        assert event is not None
        return event.status


async def test_an_account_of_workspace_a_never_starts_a_flow_of_workspace_b(
    runtime: EngineRuntime,
) -> None:
    db, registry = runtime.db, runtime.registry
    a, b = uuid.uuid4(), uuid.uuid4()
    flow_a, _ = await publish(
        db, registry, runtime.settings, graph("instagram.comment"), workspace_id=a
    )
    flow_b, _ = await publish(
        db, registry, runtime.settings, graph("instagram.comment"), workspace_id=b
    )
    account_a, nobody = new_account_id(), new_account_id()
    await connect(db, a, account_a)

    [event] = await deliver(db, build_comment("price?", account_id=account_a))
    [orphan] = await deliver(db, build_comment("price?", account_id=nobody))
    await drain(db, registry)

    runs = await executions(db, FlowExecution.trigger_event_id == event)
    assert [(r.flow_id, r.workspace_id) for r in runs] == [(flow_a, a)]
    assert await executions(db, FlowExecution.flow_id == flow_b) == []
    assert await status(db, event) == EventStatus.DISPATCHED
    # an account connected nowhere starts nothing, in any workspace
    assert await executions(db, FlowExecution.trigger_event_id == orphan) == []
    assert await status(db, orphan) == EventStatus.IGNORED

    # the trigger's own account filter narrows further inside the owning workspace
    account_a2 = new_account_id()
    await connect(db, a, account_a2)
    flow_a2, _ = await publish(
        db,
        registry,
        runtime.settings,
        graph("instagram.comment", {"account": account_a2}),
        workspace_id=a,
    )
    [second] = await deliver(db, build_comment("hello", account_id=account_a2))
    await drain(db, registry)
    runs = await executions(db, FlowExecution.trigger_event_id == second)
    assert sorted(str(r.flow_id) for r in runs) == sorted([str(flow_a), str(flow_a2)])


class EverythingTrigger(BaseNode):
    """A trigger that accepts every Instagram event, as a careless plugin might."""

    kind = "test.ig_everything"
    title = "Everything"
    category = "trigger"
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs = (Port(name="event"),)
    event_kinds = ("instagram.comment", "instagram.echo", "instagram.dm")

    @classmethod
    def accepts(cls, config: NodeConfig, event: Mapping[str, Any]) -> bool:
        return True

    async def run(self, ctx: Any, *args: Any, **inputs: Any) -> dict[str, Any]:
        return {"event": dict(ctx.trigger)}


async def test_echoes_self_comments_and_dashboard_tests_are_dispatched_to_nothing(
    runtime: EngineRuntime,
) -> None:
    db = runtime.db
    registry = NodeRegistry([*BUILTIN_NODES, EverythingTrigger])
    workspace = uuid.uuid4()
    account = new_account_id()
    await connect(db, workspace, account)
    flows = [
        (await publish(db, registry, runtime.settings, graph(kind), workspace_id=workspace))[0]
        for kind in ("instagram.comment", "instagram.dm", EverythingTrigger.kind)
    ]

    echo = build_dm("Thanks, sent you the link!", account_id=account)
    item = echo["entry"][0]["messaging"][0]
    item["sender"], item["recipient"] = item["recipient"], item["sender"]
    item["message"]["is_echo"] = True
    own_comment = build_comment("Link in bio!", account_id=account, from_id=account)
    scoped = build_comment("Thanks!", account_id=account)
    scoped["entry"][0]["changes"][0]["value"]["from"]["self_ig_scoped_id"] = "5550001"
    test_event = build_dm("random_text", account_id=account)
    test_event["entry"][0]["id"] = "0"

    quiet = [await deliver(db, p) for p in (echo, own_comment, scoped, test_event)]
    [loud] = await deliver(db, build_comment("what price?", account_id=account))
    await drain(db, registry)

    for [event_id] in quiet:
        assert await status(db, event_id) == EventStatus.IGNORED  # stored, never run
        assert await executions(db, FlowExecution.trigger_event_id == event_id) == []
    # the same flows do run for a comment from someone else
    runs = await executions(db, FlowExecution.trigger_event_id == loud)
    assert sorted(str(r.flow_id) for r in runs) == sorted(str(f) for f in flows[::2])


async def test_instagram_login_mentions_in_comments_start_mention_flows(
    runtime: EngineRuntime,
) -> None:
    """Instagram Login sends @mentions as ordinary comments (SPEC U6): a comment whose text
    @mentions the connected account's handle starts mention flows as well as comment flows;
    any other comment, and any comment to a Facebook Login account (which has a mentions
    field of its own), starts only comment flows."""
    db, registry = runtime.db, runtime.registry
    workspace = uuid.uuid4()
    account, fb_account = new_account_id(), new_account_id()
    await connect(db, workspace, account)
    await connect(db, workspace, fb_account, login_kind="facebook")
    handle, fb_handle = f"shop_{account[-4:]}", f"shop_{fb_account[-4:]}"
    mention_flow, _ = await publish(
        db, registry, runtime.settings, graph("instagram.mention"), workspace_id=workspace
    )
    comment_flow, _ = await publish(
        db, registry, runtime.settings, graph("instagram.comment"), workspace_id=workspace
    )

    async def flows_started(text: str, to: str = account) -> list[uuid.UUID]:
        [event] = await deliver(db, build_comment(text, account_id=to))
        await drain(db, registry)
        runs = await executions(db, FlowExecution.trigger_event_id == event)
        return sorted((r.flow_id for r in runs), key=str)

    both = sorted([mention_flow, comment_flow], key=str)
    assert await flows_started(f"love this @{handle}!") == both
    assert await flows_started(f"@{handle.upper()}.") == both
    assert await flows_started("love this") == [comment_flow]
    assert await flows_started(f"@{handle}x and @{handle}.eu are not us") == [comment_flow]
    assert await flows_started(f"me@{handle} is an address") == [comment_flow]
    assert await flows_started(f"hey @{fb_handle}", to=fb_account) == [comment_flow]
    # the mention flow's own filters still apply to such comments
    only_captions, _ = await publish(
        db,
        registry,
        runtime.settings,
        graph("instagram.mention", {"include_comments": False}),
        workspace_id=workspace,
    )
    assert only_captions not in await flows_started(f"cc @{handle}")


@pytest.fixture
async def ig_client(runtime: EngineRuntime) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(runtime.db.url, instagram={"app_secrets": [SECRET]})
    app = create_app(settings, db=runtime.db, registry=runtime.registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


REPLY_TO_PRICE: dict[str, Any] = {
    "nodes": [
        {"id": "ig", "kind": "instagram.comment", "config": {"keywords": ["price"]}},
        {
            "id": "reply",
            "kind": "instagram.reply_comment",
            "config": {"message": "Thanks {{ trigger.from_username }}, prices are in your DMs"},
        },
    ],
    "edges": [{"source": "ig", "source_port": "event", "target": "reply"}],
}


@pytest.mark.timeout(300)
async def test_a_comment_delivered_three_times_runs_once_and_is_answered_once(
    ig_client: httpx.AsyncClient,
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """Meta delivering the same comment three times (two at once, one after the run):
    one stored event, one run, one reply accepted by the Graph API, one ledger row."""
    team = await make_team(ig_client)
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await ig_client.post(
        base,
        json={"name": "Price replies", "graph": REPLY_TO_PRICE},
        headers=team.editor.headers,
    )
    assert created.status_code == 201, created.text
    flow_id = uuid.UUID(created.json()["id"])
    published = await ig_client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert published.status_code == 201, published.text
    # a live account (replies reach the Graph API emulator) with the comment on its post
    use_emulator(runtime, graph_emulator)
    await connect_account(runtime, mode="live", workspace_id=uuid.UUID(team.workspace_id))
    comment = graph_emulator.state.add_comment(
        {"id": f"179{uuid.uuid4().int % 10**14:014d}", "account": ACCOUNT, "from_username": "ana"}
    )

    body = encode_body(
        build_comment(
            "What's the PRICE?", account_id=ACCOUNT, comment_id=comment["id"], from_username="ana"
        )
    )
    headers = {"X-Hub-Signature-256": sign_sha256(SECRET, body)}
    answers = await asyncio.gather(
        *(ig_client.post("/webhooks/instagram", content=body, headers=headers) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.json()["duplicates"] for a in answers) == [0, 1, 1]

    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
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
        # a late fourth delivery, after the run: still nothing new
        late = await ig_client.post("/webhooks/instagram", content=body, headers=headers)
        assert late.json()["duplicates"] == 1
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await task
    runs = await executions(runtime.db, FlowExecution.flow_id == flow_id)
    assert [r.status for r in runs] == ["completed"], [r.error for r in runs]
    async with runtime.db.sessionmaker() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.dedupe_key.contains(comment["id"]))
        )
    assert stored == 1
    replies = graph_emulator.calls(f"{comment['id']}/replies", method="POST")
    assert len(replies) == 1
    # (other tests may have connected the same account to workspaces of their own)
    [row] = await ledger(runtime, target=comment["id"], flow_id=flow_id)
    assert row.status == "sent" and row.action == "reply_comment"
    [run] = await executions(runtime.db, FlowExecution.flow_id == flow_id)
    assert run.trigger_kind == "instagram.comment"
    assert run.trigger_payload is not None and run.trigger_payload["text"] == "What's the PRICE?"
    execution = await ig_client.get(
        f"/api/workspaces/{team.workspace_id}/executions/{run.id}", headers=team.viewer.headers
    )
    nodes = {n["node_id"]: n for n in execution.json()["node_runs"]}
    assert nodes["reply"]["status"] == "completed"
