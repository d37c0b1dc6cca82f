"""Instagram events as Meta delivers them: one comment or message for two connected accounts is
two events, each running its own account's flows once; the events of one conversation run in
timestamp order, one after another, whatever the body's order and however many workers and
slots; keys stored before migration 0010 still recognise a redelivery."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.db import Database, JSONType, UTCDateTime, utcnow
from socialflow.core.settings import Settings
from socialflow.instagram import encode_body, parse_payload, sign_sha256
from socialflow.migrations import upgrade
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import (
    Dispatcher,
    EngineRuntime,
    FlowExecution,
    GraphSpec,
    WebhookEvent,
    Worker,
    compile_graph,
    set_runtime,
    upsert_trigger,
)
from tests.api.conftest import api_settings, make_team
from tests.conftest import POSTGRES_URL, _postgres_admin_dsn
from tests.instagram.test_webhook_dispatch import connect, new_account_id

SECRET = "instagram-events-test-secret"
URL = "/webhooks/instagram"


# -- a database of each kind per test, so dispatch batches and claims see only this test ------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no tables) on SQLite or PostgreSQL, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'events.db'}"
        return
    import psycopg

    name = f"socialflow_test_ev_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(empty_url: str, test_registry: NodeRegistry) -> AsyncIterator[EngineRuntime]:
    """The engine runtime on a migrated database of this test's own."""
    await upgrade(empty_url)
    runtime = EngineRuntime(
        settings=Settings(database={"url": empty_url}, http={"allowed_hosts": []}),
        db=Database(empty_url),
        registry=test_registry,
    )
    set_runtime(runtime)
    try:
        yield runtime
    finally:
        set_runtime(None)
        await runtime.aclose()
        await runtime.db.dispose()


async def api_client(runtime: EngineRuntime) -> AsyncIterator[httpx.AsyncClient]:
    settings = api_settings(runtime.db.url, instagram={"app_secrets": [SECRET]})
    app = create_app(settings, db=runtime.db, registry=runtime.registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def meta(engine: EngineRuntime) -> AsyncIterator[httpx.AsyncClient]:
    """The API of ``engine``'s database, which Meta's signed webhooks reach."""
    async for http in api_client(engine):
        yield http


async def deliver(http: httpx.AsyncClient, payload: dict[str, Any]) -> dict[str, int]:
    """POST a body signed as Meta signs it; the receipt."""
    body = encode_body(payload)
    answer = await http.post(
        URL, content=body, headers={"X-Hub-Signature-256": sign_sha256(SECRET, body)}
    )
    assert answer.status_code == 200, answer.text
    receipt: dict[str, int] = answer.json()
    return receipt


async def publish_flow(
    http: httpx.AsyncClient, workspace_id: str, headers: dict[str, str], graph: dict[str, Any]
) -> uuid.UUID:
    base = f"/api/workspaces/{workspace_id}/flows"
    created = await http.post(base, json={"name": "Flow", "graph": graph}, headers=headers)
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    published = await http.post(f"{base}/{flow_id}/publish", headers=headers)
    assert published.status_code == 201, published.text
    return uuid.UUID(flow_id)


async def runs_of(db: Database, flow_id: uuid.UUID) -> list[FlowExecution]:
    async with db.sessionmaker() as session:
        query = select(FlowExecution).where(FlowExecution.flow_id == flow_id)
        return list((await session.scalars(query)).all())


async def work_until(
    runtime: EngineRuntime,
    flows: list[uuid.UUID],
    expected: int,
    *,
    workers: int = 1,
    slots: int = 2,
) -> None:
    """Run ``workers`` workers of ``slots`` slots each until ``flows`` have ``expected`` ended
    runs, then stop them."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(Worker(runtime, concurrency=slots, poll_interval=0.05).run(stop))
        for _ in range(workers)
    ]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 240
    try:
        while True:
            runs = [r for f in flows for r in await runs_of(runtime.db, f)]
            ended = [r for r in runs if r.status in ("completed", "failed", "crashed")]
            if len(ended) >= expected:
                break
            assert loop.time() < deadline, [r.status for r in runs]
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*tasks)


def flow_graph(trigger: str, then: dict[str, Any] | None = None) -> dict[str, Any]:
    step = then or {"kind": "data.set", "config": {"values": {"t": "{{ trigger.kind }}"}}}
    return {
        "nodes": [{"id": "ig", "kind": trigger, "config": {}}, {"id": "step", **step}],
        "edges": [{"source": "ig", "source_port": "event", "target": "step"}],
    }


def dm_item(account: str, sender: str, mid: str, at_ms: int, text: str = "hi") -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": account},
        "timestamp": at_ms,
        "message": {"mid": mid, "text": text},
    }


def new_mid() -> str:
    return f"aWdfZAG1{uuid.uuid4().hex}{uuid.uuid4().hex}"


# -- one comment or message, two connected accounts ------------------------------------------


def comment_for_both(accounts: tuple[str, str]) -> dict[str, Any]:
    """A comment tagging two connected accounts: one entry per account, the same comment."""
    value = {
        "from": {"id": "9911122233", "username": "ana"},
        "media": {"id": "18011122233344455", "media_product_type": "FEED"},
        "id": f"179{uuid.uuid4().int % 10**14:014d}",
        "text": f"@shop_{accounts[0][-4:]} @shop_{accounts[1][-4:]} which one is cheaper?",
    }
    now = int(time.time())
    return {
        "object": "instagram",
        "entry": [
            {"id": account, "time": now, "changes": [{"field": "comments", "value": value}]}
            for account in accounts
        ],
    }


def dm_for_both(accounts: tuple[str, str]) -> dict[str, Any]:
    """One message (one mid) received by two connected accounts: two recipients."""
    mid, now_ms = new_mid(), int(time.time() * 1000)
    return {
        "object": "instagram",
        "entry": [
            {"id": account, "time": now_ms, "messaging": [dm_item(account, "99123", mid, now_ms)]}
            for account in accounts
        ],
    }


@pytest.mark.timeout(360)
@pytest.mark.parametrize(
    ("trigger", "build"),
    [("instagram.comment", comment_for_both), ("instagram.dm", dm_for_both)],
    ids=["comment", "dm"],
)
@pytest.mark.prefect
async def test_one_event_for_two_connected_accounts_runs_each_accounts_flow_once(
    meta: httpx.AsyncClient, engine: EngineRuntime, trigger: str, build: Any
) -> None:
    accounts = (new_account_id(), new_account_id())
    flows = []
    for account in accounts:
        team = await make_team(meta)
        await connect(engine.db, uuid.UUID(team.workspace_id), account)
        flows.append(
            await publish_flow(meta, team.workspace_id, team.editor.headers, flow_graph(trigger))
        )
    payload = build(accounts)

    assert await deliver(meta, payload) == {"received": 2, "stored": 2, "duplicates": 0}
    await work_until(engine, flows, 2)
    # Meta retries the body: nothing new is stored, nothing runs again
    assert await deliver(meta, payload) == {"received": 2, "stored": 0, "duplicates": 2}
    while await Dispatcher(engine.db, engine.registry).dispatch_once():
        pass

    for flow_id, account in zip(flows, accounts, strict=True):
        [run] = await runs_of(engine.db, flow_id)
        assert run.status == "completed", run.error
        assert run.trigger_payload is not None
        assert run.trigger_payload["account_id"] == account
    async with engine.db.sessionmaker() as session:
        stored = (await session.scalars(select(WebhookEvent.account_id))).all()
    assert sorted(stored) == sorted(accounts)


# -- the events of one conversation run in order ---------------------------------------------


NAP: dict[str, Any] = {"kind": "test.sleep", "config": {"seconds": 0.3}}


async def dm_flow(meta: httpx.AsyncClient, engine: EngineRuntime) -> tuple[uuid.UUID, str]:
    """A workspace with a connected account and a published DM flow that takes a while."""
    team = await make_team(meta)
    account = new_account_id()
    await connect(engine.db, uuid.UUID(team.workspace_id), account)
    flow_id = await publish_flow(
        meta, team.workspace_id, team.editor.headers, flow_graph("instagram.dm", NAP)
    )
    return flow_id, account


def by_message(runs: list[FlowExecution]) -> dict[str, FlowExecution]:
    return {str((r.trigger_payload or {})["message_id"]): r for r in runs}


def assert_one_after_another(runs: list[FlowExecution]) -> None:
    """``runs``, in their messages' order, each started after the previous one finished."""
    for run in runs:
        assert run.status == "completed", run.error
        assert run.started_at is not None and run.finished_at is not None
    started = sorted(runs, key=lambda r: r.started_at or utcnow())
    assert [r.id for r in started] == [r.id for r in runs]
    for before, after in pairwise(runs):
        assert before.finished_at is not None and after.started_at is not None
        assert after.started_at >= before.finished_at, "a later message's run overlapped"


@pytest.mark.prefect
@pytest.mark.timeout(360)
async def test_messages_of_one_conversation_run_in_timestamp_order_never_overlapping(
    meta: httpx.AsyncClient, engine: EngineRuntime
) -> None:
    """One body, two people's messages interleaved and each person's in reverse time order,
    two workers of four slots: each person's runs go one at a time in the order the messages
    were sent, while the two conversations do not wait for each other."""
    flow_id, account = await dm_flow(meta, engine)
    start_ms = int(time.time() * 1000) - 60_000
    sent: dict[str, list[str]] = {"ana": [], "ben": []}  # mids, in the order they were sent
    items = []
    for n in range(4):
        for person, sender in (("ana", "9900001"), ("ben", "9900002")):
            mid = new_mid()
            sent[person].append(mid)
            items.append(dm_item(account, sender, mid, start_ms + n * 1000, f"{person} {n}"))
    items.reverse()  # Meta does not promise order in a batch (SPEC §4)
    body = {"object": "instagram", "entry": [{"id": account, "time": start_ms, "messaging": items}]}
    assert (await deliver(meta, body))["stored"] == 8
    while await Dispatcher(engine.db, engine.registry).dispatch_once():
        pass

    # with eight free slots, a claim takes the first message of each conversation, no more
    first = Worker(engine, concurrency=8, dispatch=False, lease_seconds=1)
    claimed = {claim.execution_id for claim in await first.claims.claim(8)}
    runs = by_message(await runs_of(engine.db, flow_id))
    assert claimed == {runs[sent["ana"][0]].id, runs[sent["ben"][0]].id}

    # that worker stops; its claims lapse and two workers run everything
    await work_until(engine, [flow_id], 8, workers=2, slots=4)
    runs = by_message(await runs_of(engine.db, flow_id))
    assert_one_after_another([runs[mid] for mid in sent["ana"]])
    assert_one_after_another([runs[mid] for mid in sent["ben"]])


@pytest.mark.prefect
@pytest.mark.timeout(360)
async def test_an_earlier_message_still_in_the_inbox_holds_the_later_ones(
    meta: httpx.AsyncClient, engine: EngineRuntime
) -> None:
    """The dispatcher queues a body's events in batches (and several dispatchers share them):
    runs of later messages queued before an earlier message is dispatched wait for it, and
    then all run in the order the messages were sent."""
    flow_id, account = await dm_flow(meta, engine)
    start_ms = int(time.time() * 1000) - 60_000
    mids = [new_mid() for _ in range(3)]
    items = [dm_item(account, "9900003", mid, start_ms + n * 1000) for n, mid in enumerate(mids)]
    items.reverse()
    body = {"object": "instagram", "entry": [{"id": account, "time": start_ms, "messaging": items}]}
    assert (await deliver(meta, body))["stored"] == 3

    # the first round takes the first two events of the body: the two latest messages
    assert await Dispatcher(engine.db, engine.registry, batch=2).dispatch_once() == 2
    queued = by_message(await runs_of(engine.db, flow_id))
    assert set(queued) == set(mids[1:])
    claimer = Worker(engine, concurrency=8, dispatch=False)
    claimed = await claimer.claims.claim(8)
    assert claimed == [], "a later message ran before an earlier one was queued"

    await work_until(engine, [flow_id], 3, workers=2, slots=4)
    runs = by_message(await runs_of(engine.db, flow_id))
    assert_one_after_another([runs[mid] for mid in mids])


@pytest.mark.prefect
@pytest.mark.timeout(360)
async def test_an_older_message_arriving_late_waits_for_the_run_in_progress(
    meta: httpx.AsyncClient, engine: EngineRuntime
) -> None:
    """A message sent earlier but delivered in a later body does not start while a run of
    its conversation is in progress."""
    flow_id, account = await dm_flow(meta, engine)
    start_ms = int(time.time() * 1000) - 60_000
    older, newer = new_mid(), new_mid()
    for mid, at in ((newer, start_ms + 1000), (older, start_ms)):
        body = {
            "object": "instagram",
            "entry": [{"id": account, "messaging": [dm_item(account, "9900004", mid, at)]}],
        }
        assert (await deliver(meta, body))["stored"] == 1
        while await Dispatcher(engine.db, engine.registry).dispatch_once():
            pass
        if mid == newer:
            # a worker starts the newer message's run (and, for this test, dies with it)
            first = Worker(engine, concurrency=8, dispatch=False, lease_seconds=2)
            [claim] = await first.claims.claim(8)
    second = Worker(engine, concurrency=8, dispatch=False)
    assert await second.claims.claim(8) == [], "two runs of one conversation at once"

    # the abandoned run's lease lapses: the older message goes first, then the newer one again
    await work_until(engine, [flow_id], 2, workers=1, slots=4)
    runs = by_message(await runs_of(engine.db, flow_id))
    assert runs[newer].id == claim.execution_id and runs[newer].attempt == 2
    assert_one_after_another([runs[older], runs[newer]])


# -- keys stored before migration 0010 -------------------------------------------------------

_EVENTS = sa.table(
    "webhook_event",
    sa.column("id", sa.Uuid()),
    sa.column("source", sa.String()),
    sa.column("kind", sa.String()),
    sa.column("dedupe_key", sa.String()),
    sa.column("account_id", sa.String()),
    sa.column("flow_id", sa.Uuid()),
    sa.column("workspace_id", sa.Uuid()),
    sa.column("payload", JSONType),
    sa.column("headers", JSONType),
    sa.column("status", sa.String()),
    sa.column("attempts", sa.Integer()),
    sa.column("received_at", UTCDateTime()),
    sa.column("next_attempt_at", UTCDateTime()),
)


def account_less_key(prefix: str, kind: str, natural: str) -> str:
    """The key format before migration 0010: ``<prefix><kind>:<natural>``, hashed past 300."""
    full = f"{prefix}{kind}:{natural}"
    if len(full) <= 300:
        return full
    text = json.dumps(full, sort_keys=True, separators=(",", ":"))
    return f"{prefix}{kind}:h:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


async def activate_comment_flow(runtime: EngineRuntime, flow_id: uuid.UUID) -> None:
    spec = GraphSpec.model_validate(flow_graph("instagram.comment"))
    async with runtime.db.session() as session:
        await upsert_trigger(
            session,
            settings=runtime.settings,
            flow_id=flow_id,
            workspace_id=uuid.uuid4(),
            flow_name="scoped",
            version_id=uuid.uuid4(),
            version_number=1,
            graph=compile_graph(spec, runtime.registry),
            graph_json=spec.model_dump_json(),
        )


@pytest.mark.timeout(360)
async def test_events_stored_under_the_old_keys_still_dedupe_after_the_upgrade(
    empty_url: str, test_registry: NodeRegistry
) -> None:
    """Events stored by a version before 0010, then the upgrade, then Meta's retries: nothing
    is stored twice (short keys, a key hashed only once the account is in it, a key hashed
    already, a per-flow endpoint's key), and the second account of a comment stored for one
    account only is stored now."""
    await upgrade(empty_url, "0008")
    a, b = new_account_id(), new_account_id()
    comment = comment_for_both((a, b))
    only_a = {**comment, "entry": comment["entry"][:1]}
    start_ms = int(time.time() * 1000)
    dms = [
        {
            "object": "instagram",
            "entry": [{"id": a, "messaging": [dm_item(a, "9900005", mid, start_ms)]}],
        }
        for mid in (new_mid(), "aWdf" + "x" * 286, "aWdf" + "y" * 316)
    ]
    flow_id = uuid.uuid4()
    scoped = comment_for_both((a, b))
    scoped = {**scoped, "entry": scoped["entry"][:1]}
    old = [(only_a, ""), *((dm, "") for dm in dms), (scoped, f"flow:{flow_id}")]

    old_version = create_async_engine(empty_url)
    try:
        async with old_version.begin() as connection:
            for payload, scope in old:
                [parsed] = parse_payload(payload)
                prefix = f"ig:{scope}:" if scope else "ig:"
                event = parsed.event
                natural = getattr(event, "comment_id", None) or getattr(event, "message_id", "")
                await connection.execute(
                    _EVENTS.insert().values(
                        id=uuid.uuid4(),
                        source="instagram",
                        kind=parsed.inbox_kind,
                        dedupe_key=account_less_key(prefix, event.kind, str(natural)),
                        account_id=event.account_id,
                        flow_id=flow_id if scope else None,
                        payload=event.model_dump(mode="json"),
                        headers={},
                        status="dispatched",
                        attempts=1,
                        received_at=utcnow(),
                        next_attempt_at=utcnow(),
                    )
                )
    finally:
        await old_version.dispose()

    await upgrade(empty_url)
    runtime = EngineRuntime(
        settings=Settings(database={"url": empty_url}),
        db=Database(empty_url),
        registry=test_registry,
    )
    try:
        async for http in api_client(runtime):
            for payload, scope in old:
                if scope:
                    continue
                assert await deliver(http, payload) == {"received": 1, "stored": 0, "duplicates": 1}
            # the comment again, now with the second account's entry Meta sent alongside
            assert await deliver(http, comment) == {"received": 2, "stored": 1, "duplicates": 1}
            # a per-flow endpoint's event (the route answers once the flow has its trigger)
            await activate_comment_flow(runtime, flow_id)
            body = encode_body(scoped)
            answer = await http.post(
                f"{URL}/{flow_id}",
                content=body,
                headers={"X-Hub-Signature-256": sign_sha256(SECRET, body)},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"received": 1, "stored": 0, "duplicates": 1}
        async with runtime.db.sessionmaker() as session:
            rows = (
                await session.execute(select(WebhookEvent.account_id, WebhookEvent.flow_id))
            ).all()
        assert sorted((r.account_id, r.flow_id is not None) for r in rows) == sorted(
            [(a, False)] * 4 + [(b, False), (a, True)]
        )
    finally:
        await runtime.db.dispose()
