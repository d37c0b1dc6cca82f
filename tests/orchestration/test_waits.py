"""Ask and wait: a run asks a contact, parks without a worker, and the contact's next message
(or button tap) on that account resumes it, through real workers, Prefect and the emulator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from socialflow.core.db import Database, utcnow
from socialflow.core.settings import Settings
from socialflow.instagram import build_dm, build_postback, encode_body, parse_body
from socialflow.migrations import upgrade
from socialflow.orchestration import (
    ConversationWait,
    Dispatcher,
    EngineRuntime,
    EventIn,
    FlowExecution,
    GlobalKeyword,
    NodeRun,
    WaitStatus,
    WebhookEvent,
    Worker,
    set_runtime,
    store_events,
)
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.flows import publish
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)
from tests.fixtures.postgres_cluster import PostgresCluster, find_pg_bin

pytestmark = pytest.mark.timeout(300)

ASK_EMAIL: dict[str, Any] = {
    "nodes": [
        {"id": "dm", "kind": "instagram.dm", "config": {"keywords": ["hi"]}},
        {
            "id": "ask",
            "kind": "instagram.ask",
            "config": {
                "question": "What is your email?",
                "expects": "email",
                "max_tries": 2,
                "retry_prompt": "Hmm, {{ input.reason }}. Your email?",
            },
        },
        {
            "id": "thanks",
            "kind": "instagram.send_dm",
            "config": {"text": "Thanks, {{ nodes.ask.answer.answer }}"},
        },
        {"id": "gave_up", "kind": "instagram.send_dm", "config": {"text": "Never mind."}},
        {"id": "late", "kind": "instagram.send_dm", "config": {"text": "Too late, bye."}},
    ],
    "edges": [
        {"source": "dm", "source_port": "event", "target": "ask"},
        {"source": "ask", "source_port": "answer", "target": "thanks"},
        {"source": "ask", "source_port": "invalid", "target": "gave_up"},
        {"source": "ask", "source_port": "timeout", "target": "late"},
    ],
}


class Shop:
    """A workspace with its own Instagram account on the emulator and a published flow."""

    def __init__(self, runtime: EngineRuntime, emulator: GraphEmulator) -> None:
        self.runtime = runtime
        self.emulator = emulator
        self.account = f"1784{uuid.uuid4().int % 10**13:013d}"
        self.workspace_id = uuid.uuid4()
        self.flows: list[uuid.UUID] = []

    async def open(self, graph: dict[str, Any] = ASK_EMAIL) -> Shop:
        token = f"IGQ-{uuid.uuid4().hex}"
        self.emulator.state.add_account(self.account, "shop", token)
        await connect_account(
            self.runtime, ig_user_id=self.account, token=token, workspace_id=self.workspace_id
        )
        await self.publish(graph)
        return self

    async def publish(self, graph: dict[str, Any]) -> uuid.UUID:
        flow_id, _ = await publish(
            self.runtime.db,
            self.runtime.registry,
            self.runtime.settings,
            graph,
            name=f"ask-{uuid.uuid4().hex[:6]}",
            workspace_id=self.workspace_id,
        )
        self.flows.append(flow_id)
        return flow_id

    async def deliver(self, body: dict[str, Any]) -> uuid.UUID:
        """Store a webhook body as the webhook route does; the emulator learns the message
        (it opens the 24-hour window). Returns the stored event's id."""
        [parsed] = parse_body(encode_body(body))
        sender = str(parsed.event.model_dump().get("sender_id"))
        self.emulator.state.add_message(parsed.event.account_id, sender)
        async with self.runtime.db.sessionmaker() as session:
            [stored] = await store_events(
                session,
                [
                    EventIn(
                        source="instagram",
                        kind=parsed.inbox_kind,
                        dedupe_key=parsed.dedupe_key,
                        payload=parsed.event.model_dump(mode="json"),
                        account_id=parsed.event.account_id,
                        conversation_key=parsed.conversation_key,
                        conversation_at=parsed.event.occurred_at,
                        conversation_seq=0,
                    )
                ],
            )
        return stored.id

    async def say(self, text: str, contact: str, *, account: str | None = None) -> uuid.UUID:
        return await self.deliver(
            build_dm(text, account_id=account or self.account, sender_id=contact)
        )

    async def runs(self, flow_id: uuid.UUID | None = None) -> list[FlowExecution]:
        async with self.runtime.db.sessionmaker() as session:
            rows = await session.scalars(
                select(FlowExecution)
                .where(FlowExecution.flow_id == (flow_id or self.flows[0]))
                .order_by(FlowExecution.created_at)
                .execution_options(populate_existing=True)
            )
            return list(rows)

    async def waits(self) -> list[ConversationWait]:
        async with self.runtime.db.sessionmaker() as session:
            rows = await session.scalars(
                select(ConversationWait)
                .where(ConversationWait.workspace_id == self.workspace_id)
                .order_by(ConversationWait.created_at)
            )
            return list(rows)

    def sent(self, contact: str) -> list[dict[str, Any]]:
        """The messages the emulator received for ``contact``, oldest first."""
        return [
            call["body"]["message"]
            for call in self.emulator.calls("/messages")
            if call["method"] == "POST" and call["body"]["recipient"] == {"id": contact}
        ]

    def texts(self, contact: str) -> list[str | None]:
        return [m.get("text") or _template_text(m) for m in self.sent(contact)]

    async def status(self, status: str, flow_id: uuid.UUID | None = None) -> bool:
        runs = await self.runs(flow_id)
        return bool(runs) and all(r.status == status for r in runs)


def _template_text(message: dict[str, Any]) -> str | None:
    payload = (message.get("attachment") or {}).get("payload") or {}
    return payload.get("text")


@pytest.fixture
async def shop(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> Shop:
    use_emulator(runtime, graph_emulator)
    return await Shop(runtime, graph_emulator).open()


class Workers:
    """Workers running in this process, started and stopped by the test."""

    def __init__(self, runtime: EngineRuntime) -> None:
        self.runtime = runtime
        self.running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    def start(self, n: int = 1) -> None:
        for _ in range(n):
            worker = Worker(self.runtime, concurrency=2, poll_interval=0.05, wait_poll=0.2)
            stop = asyncio.Event()
            self.running.append((stop, asyncio.create_task(worker.run(stop))))

    async def stop(self) -> None:
        for stop, _ in self.running:
            stop.set()
        await asyncio.gather(*(task for _, task in self.running))
        self.running.clear()


@pytest.fixture
async def workers(runtime: EngineRuntime) -> AsyncIterator[Workers]:
    started = Workers(runtime)
    try:
        yield started
    finally:
        await started.stop()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def flow_run_state(flow_run_id: uuid.UUID | None) -> Any:
    from prefect.client.orchestration import get_client

    assert flow_run_id is not None
    async with get_client() as client:
        return (await client.read_flow_run(flow_run_id)).state


async def _prefect_state_is(flow_run_id: uuid.UUID | None, state_type: str) -> bool:
    return bool((await flow_run_state(flow_run_id)).type.value == state_type)


async def node_runs(runtime: EngineRuntime, execution_id: uuid.UUID) -> dict[str, NodeRun]:
    async with runtime.db.sessionmaker() as session:
        rows = await session.scalars(select(NodeRun).where(NodeRun.execution_id == execution_id))
        return {row.node_id: row for row in rows}


async def test_invalid_answer_is_re_asked_then_the_valid_one_runs_the_next_node(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    workers.start()
    await shop.say("hi there", "5550001")
    await until(lambda: shop.status("waiting"))
    [run] = await shop.runs()
    # the question went out once; the run holds no worker and Prefect shows it Paused
    assert shop.texts("5550001") == ["What is your email?"]
    assert run.lease_until is None and run.finished_at is None
    paused = await flow_run_state(run.prefect_flow_run_id)
    assert paused.type.value == "PAUSED", paused
    assert "waiting for a reply (email) from contact 5550001" in (paused.message or "")
    [wait] = await shop.waits()
    assert (wait.account_id, wait.contact_id, wait.status) == (shop.account, "5550001", "waiting")
    assert wait.window_expires_at is not None and wait.expires_at > utcnow()

    first_reply = await shop.say("nope", "5550001")
    await until(lambda: _waits_in(shop, 2))
    await until(lambda: shop.status("waiting"))
    assert shop.texts("5550001") == [
        "What is your email?",
        "Hmm, that is not an email address. Your email?",
    ]
    await shop.say("Ana@Example.com", "5550001")
    await until(lambda: shop.status("completed"))

    # one run for the whole conversation: the replies resumed it, started nothing new
    [done] = await shop.runs()
    assert done.id == run.id and done.prefect_flow_run_id == run.prefect_flow_run_id
    assert shop.texts("5550001") == [
        "What is your email?",
        "Hmm, that is not an email address. Your email?",
        "Thanks, Ana@example.com",
    ]
    nodes = await node_runs(runtime, run.id)
    assert nodes["ask"].status == "completed" and nodes["ask"].fired_ports == ["answer"]
    assert nodes["ask"].output["answer"] | {"answered_at": None} == {
        "answer": "Ana@example.com",
        "valid": True,
        "attempts": 2,
        "text": "Ana@Example.com",
        "payload": None,
        "question": "What is your email?",
        "contact_id": "5550001",
        "account_id": shop.account,
        "answered_at": None,
    }
    assert nodes["dm"].status == "completed"  # the trigger's record from before the wait stands
    assert {nodes[n].status for n in ("gave_up", "late")} == {"skipped"}
    # the sends are in the ledger once each, under keys a resumed run reuses
    rows = await ledger(runtime, workspace_id=shop.workspace_id)
    assert [(r.action, r.status) for r in rows] == [("send_dm", "sent")] * 3
    assert len({r.idempotency_key for r in rows}) == 3
    # Prefect: the same flow run went on and completed (reported just after the row)
    await until(lambda: _prefect_state_is(run.prefect_flow_run_id, "COMPLETED"))
    # the event log says the replies resumed the run
    async with runtime.db.sessionmaker() as session:
        event = await session.get(WebhookEvent, first_reply)
        assert event is not None and event.status == "dispatched"
    waits = await shop.waits()
    assert [w.status for w in waits] == ["answered", "answered"]
    assert waits[0].event_id == first_reply


async def _waits_in(shop: Shop, n: int) -> bool:
    return len(await shop.waits()) >= n


async def test_too_many_invalid_answers_fire_the_invalid_port(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    workers.start()
    await shop.say("hi", "5550002")
    await until(lambda: shop.status("waiting"))
    await shop.say("no", "5550002")
    await until(lambda: _waits_in(shop, 2))
    await until(lambda: shop.status("waiting"))
    await shop.say("still no", "5550002")
    await until(lambda: shop.status("completed"))
    assert shop.texts("5550002")[-1] == "Never mind."
    [run] = await shop.runs()
    ask = (await node_runs(runtime, run.id))["ask"]
    assert ask.fired_ports == ["invalid"]
    assert ask.output["invalid"]["attempts"] == 2 and ask.output["invalid"]["valid"] is False


async def test_no_answer_in_time_fires_the_timeout_port(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    workers.start()
    await shop.say("hi", "5550003")
    await until(lambda: shop.status("waiting"))
    [run] = await shop.runs()
    # the deadline (a day by default) has come: the workers' sweep resumes the run
    async with runtime.db.sessionmaker() as session:
        await session.execute(
            update(ConversationWait)
            .where(ConversationWait.execution_id == run.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    await until(lambda: shop.status("completed"))
    assert shop.texts("5550003") == ["What is your email?", "Too late, bye."]
    ask = (await node_runs(runtime, run.id))["ask"]
    assert ask.fired_ports == ["timeout"]
    [wait] = await shop.waits()
    assert wait.status == WaitStatus.TIMED_OUT
    # a reply after the timeout is a new conversation, not an answer
    await shop.say("late@example.com", "5550003")
    await asyncio.sleep(1.0)
    assert len(await shop.runs()) == 1 and len(shop.texts("5550003")) == 2


async def test_a_worker_stopped_while_the_run_waits_then_the_reply_continues_it_once(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    workers.start()
    await shop.say("hi", "5550004")
    await until(lambda: shop.status("waiting"))
    await workers.stop()  # no worker at all while the contact thinks it over
    await shop.say("bo@example.com", "5550004")
    workers.start(2)  # two fresh workers race for the continuation
    await until(lambda: shop.status("completed"))
    await asyncio.sleep(1.0)  # a second continuation, if any, would have sent by now
    assert shop.texts("5550004") == ["What is your email?", "Thanks, bo@example.com"]
    [run] = await shop.runs()
    assert run.attempt == 1  # the continuation ran once, from its first claim
    rows = await ledger(runtime, workspace_id=shop.workspace_id)
    assert len(rows) == 2 and all(r.attempts == 1 for r in rows)


async def test_a_global_keyword_ends_the_wait_and_goes_to_the_flows(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    stop_flow = await shop.publish(
        {
            "nodes": [
                {
                    "id": "dm",
                    "kind": "instagram.dm",
                    "config": {"keywords": ["stop"], "mode": "exact"},
                },
                {"id": "bye", "kind": "instagram.send_dm", "config": {"text": "Unsubscribed."}},
            ],
            "edges": [{"source": "dm", "source_port": "event", "target": "bye"}],
        }
    )
    async with runtime.db.sessionmaker() as session:
        session.add(GlobalKeyword(workspace_id=shop.workspace_id, keyword="stop"))
        await session.commit()
    workers.start()
    await shop.say("hi", "5550005")
    await until(lambda: shop.status("waiting"))
    [asking] = await shop.runs()
    await shop.say("  STOP ", "5550005")
    await until(lambda: shop.status("completed", stop_flow))
    [cancelled] = await shop.runs()
    assert cancelled.status == "cancelled"
    assert cancelled.error == (
        "cancelled: the contact sent the global keyword 'stop' while it waited"
    )
    assert shop.texts("5550005") == ["What is your email?", "Unsubscribed."]
    [wait] = await shop.waits()
    assert wait.status == WaitStatus.CANCELLED
    await until(lambda: _prefect_state_is(asking.prefect_flow_run_id, "CANCELLED"))


async def test_a_postback_answers_the_question_its_buttons_asked(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    workers: Workers,
) -> None:
    use_emulator(runtime, graph_emulator)
    graph = {
        "nodes": [
            {"id": "dm", "kind": "instagram.dm", "config": {"keywords": ["menu"]}},
            {
                "id": "ask",
                "kind": "instagram.ask",
                "config": {
                    "question": "Want the guide?",
                    "expects": "choice",
                    "choices": ["YES", "NO"],
                    "buttons": [
                        {"type": "postback", "title": "Yes please", "payload": "YES"},
                        {"type": "postback", "title": "No", "payload": "NO"},
                    ],
                },
            },
            {
                "id": "ok",
                "kind": "instagram.send_dm",
                "config": {"text": "You chose {{ nodes.ask.answer.answer }}"},
            },
        ],
        "edges": [
            {"source": "dm", "source_port": "event", "target": "ask"},
            {"source": "ask", "source_port": "answer", "target": "ok"},
        ],
    }
    shop = await Shop(runtime, graph_emulator).open(graph)
    # a flow listening for a payload: a tap with no question pending starts it
    promo = await shop.publish(
        {
            "nodes": [
                {
                    "id": "tap",
                    "kind": "instagram.dm",
                    "config": {
                        "keywords": ["PROMO"],
                        "mode": "exact",
                        "include_postbacks": True,
                    },
                },
                {"id": "code", "kind": "instagram.send_dm", "config": {"text": "Code: SAVE10"}},
            ],
            "edges": [{"source": "tap", "source_port": "event", "target": "code"}],
        }
    )
    workers.start()
    await shop.say("menu", "5550006")
    await until(lambda: shop.status("waiting"))
    [question] = shop.sent("5550006")
    assert question["attachment"]["payload"]["template_type"] == "button"
    assert [b["payload"] for b in question["attachment"]["payload"]["buttons"]] == ["YES", "NO"]
    await shop.deliver(
        build_postback("YES", title="Yes please", account_id=shop.account, sender_id="5550006")
    )
    await until(lambda: shop.status("completed"))
    assert shop.texts("5550006")[-1] == "You chose YES"

    await shop.deliver(
        build_postback("PROMO", title="Promo", account_id=shop.account, sender_id="5550007")
    )
    await until(lambda: shop.status("completed", promo))
    assert shop.texts("5550007") == ["Code: SAVE10"]


async def test_another_contact_or_account_never_answers_someone_else_s_wait(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    other = await Shop(runtime, shop.emulator).open()  # another workspace and account
    workers.start()
    await shop.say("hi", "5550008")
    await until(lambda: shop.status("waiting"))
    # the same person's id on another account; another person on this account; a forged
    # event naming this account but sent as if from the account itself (an echo)
    await other.say("x@example.com", "5550008")
    await shop.say("y@example.com", "5550009")
    echo = build_dm("z@example.com", account_id=shop.account, sender_id="5550008")
    echo["entry"][0]["messaging"][0]["message"]["is_echo"] = True
    await shop.deliver(echo)
    await asyncio.sleep(1.5)
    [wait] = await shop.waits()
    assert wait.status == WaitStatus.WAITING
    [run] = await shop.runs()
    assert run.status == "waiting"
    assert shop.texts("5550008") == ["What is your email?"]

    # a huge reply is cut before it is kept, refused by the check, and re-asked
    await shop.say("@" * 100_000, "5550008")
    await until(lambda: _waits_in(shop, 2))
    first, _ = await shop.waits()
    assert first.reply is not None and len(first.reply["text"]) == 2000
    await until(lambda: shop.status("waiting"))
    assert "longer than 1000 characters" in (shop.texts("5550008")[-1] or "")


async def test_a_continuation_whose_worker_died_is_run_again_from_the_wait(
    shop: Shop, workers: Workers, runtime: EngineRuntime
) -> None:
    """The worker that took the resumed run died before running it: the next claim (attempt
    2) crashes the Paused flow run it left, resumes from the same wait in a new flow run, and
    the question is not asked again."""
    workers.start()
    await shop.say("hi", "5550010")
    await until(lambda: shop.status("waiting"))
    await workers.stop()
    [parked] = await shop.runs()
    await shop.say("cy@example.com", "5550010")
    # a worker claims the continuation and dies at once: its lease (1 s) lapses
    dead = Worker(runtime, concurrency=1, poll_interval=0.05, lease_seconds=1, dispatch=False)
    await Dispatcher(runtime.db, runtime.registry).dispatch_once()
    [claim] = await dead.claims.claim(1)
    assert (claim.execution_id, claim.attempt) == (parked.id, 1)
    await asyncio.sleep(1.2)
    workers.start()
    await until(lambda: shop.status("completed"))
    [done] = await shop.runs()
    assert done.attempt == 2 and done.prefect_flow_run_id != parked.prefect_flow_run_id
    assert shop.texts("5550010") == ["What is your email?", "Thanks, cy@example.com"]
    await until(lambda: _prefect_state_is(parked.prefect_flow_run_id, "CRASHED"))
    nodes = await node_runs(runtime, done.id)
    assert nodes["ask"].output["answer"]["answer"] == "cy@example.com"
    assert nodes["dm"].status == "completed" and nodes["thanks"].status == "completed"


@pytest.mark.skipif(find_pg_bin() is None, reason="needs PostgreSQL's server binaries")
@pytest.mark.postgres
@pytest.mark.prefect
@pytest.mark.slow
async def test_a_wait_outlives_a_postgresql_restart_with_no_worker_running(
    test_registry: Any,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """The run waits in rows only: PostgreSQL (a cluster of the test's own) restarts while no
    worker runs; the reply, stored after it is back, resumes the run once."""
    cluster = await asyncio.to_thread(PostgresCluster.create)
    db = Database(cluster.url)
    try:
        await upgrade(cluster.url)
        runtime = EngineRuntime(
            settings=Settings(database={"url": cluster.url}), db=db, registry=test_registry
        )
        use_emulator(runtime, graph_emulator)
        set_runtime(runtime)
        shop = await Shop(runtime, graph_emulator).open()
        workers = Workers(runtime)
        workers.start()
        try:
            await shop.say("hi", "5550011")
            await until(lambda: shop.status("waiting"))
        finally:
            await workers.stop()
        await asyncio.to_thread(cluster.restart, 1.0)
        for _ in range(60):  # the pool's connections died with the server
            try:
                await shop.say("di@example.com", "5550011")
                break
            except Exception:
                await asyncio.sleep(0.5)
        workers.start()
        try:
            await until(lambda: shop.status("completed"))
        finally:
            await workers.stop()
        assert shop.texts("5550011") == ["What is your email?", "Thanks, di@example.com"]
        [run] = await shop.runs()
        assert run.attempt == 1
    finally:
        set_runtime(None)
        await db.dispose()
        await asyncio.to_thread(cluster.destroy)
