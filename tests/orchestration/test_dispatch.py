"""The dispatcher queues exactly one execution per (event, version), however often it runs."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, update

from socialflow.core.db import Database
from socialflow.orchestration import (
    EngineRuntime,
    EventIn,
    EventStatus,
    FlowExecution,
    WebhookEvent,
    store_events,
)
from socialflow.orchestration._dispatch import Dispatcher, backoff_seconds
from tests.fixtures.flows import publish


def hook_event(flow_id: uuid.UUID, n: int, key: str | None = None) -> EventIn:
    return EventIn(
        source="webhook",
        kind="webhook.request",
        dedupe_key=key or f"test:{uuid.uuid4()}",
        payload={"body": {"n": n}},
        flow_id=flow_id,
    )


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_duplicates_are_acknowledged_and_stored_once(runtime: EngineRuntime) -> None:
    flow_id, _ = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        first = await store_events(session, [hook_event(flow_id, 1, "same-key")])
    async with runtime.db.sessionmaker() as session:
        again = await store_events(
            session, [hook_event(flow_id, 1, "same-key"), hook_event(flow_id, 2)]
        )
    assert not first[0].duplicate
    assert again[0].duplicate and again[0].id == first[0].id
    assert not again[1].duplicate
    assert await count(runtime.db, WebhookEvent, WebhookEvent.dedupe_key == "same-key") == 1


@pytest.mark.postgres
async def test_two_dispatchers_on_the_same_500_events_queue_500_runs(
    pg_runtime: EngineRuntime,
) -> None:
    runtime = pg_runtime
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, n) for n in range(500)])
    # two dispatchers with their own connection pools, as two processes would have
    engines = [Database(runtime.db.url), Database(runtime.db.url)]
    dispatchers = [Dispatcher(db, runtime.registry, batch=50) for db in engines]

    async def drain(dispatcher: Dispatcher) -> int:
        handled = 0
        while batch := await dispatcher.dispatch_once():
            handled += batch
        return handled

    try:
        handled = await asyncio.gather(*(drain(d) for d in dispatchers))
    finally:
        for db in engines:
            await db.dispose()
    executions = await count(runtime.db, FlowExecution, FlowExecution.flow_version_id == version_id)
    assert executions == 500
    assert min(handled) > 0, "both dispatchers took a share"
    # each event was claimed and dispatched by exactly one of them
    assert (
        await count(
            runtime.db, WebhookEvent, WebhookEvent.flow_id == flow_id, WebhookEvent.attempts == 1
        )
        == 500
    )
    assert (
        await count(
            runtime.db,
            WebhookEvent,
            WebhookEvent.flow_id == flow_id,
            WebhookEvent.status == EventStatus.DISPATCHED,
        )
        == 500
    )

    # running a dispatcher again, or re-opening the events, queues nothing more
    async with runtime.db.sessionmaker() as session:
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.flow_id == flow_id)
            .values(status=EventStatus.PENDING)
        )
        await session.commit()
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    assert (
        await count(runtime.db, FlowExecution, FlowExecution.flow_version_id == version_id) == 500
    )


async def test_events_for_no_active_flow_are_ignored_not_lost(runtime: EngineRuntime) -> None:
    async with runtime.db.sessionmaker() as session:
        [stored] = await store_events(session, [hook_event(uuid.uuid4(), 1)])
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    async with runtime.db.sessionmaker() as session:
        event = await session.get(WebhookEvent, stored.id)
    assert event is not None and event.status == EventStatus.IGNORED


async def test_a_failing_dispatch_keeps_the_event_pending_with_backoff(
    runtime: EngineRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        [stored] = await store_events(session, [hook_event(flow_id, 1)])
    dispatcher = Dispatcher(runtime.db, runtime.registry)

    def broken(*_: Any) -> bool:
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr(dispatcher, "verdict", broken)
    while await dispatcher.dispatch_once():
        pass
    async with runtime.db.sessionmaker() as session:
        event = await session.get(WebhookEvent, stored.id)
        assert event is not None
        assert event.status == EventStatus.PENDING
        assert event.attempts == 1 and "registry unavailable" in (event.last_error or "")
        assert event.next_attempt_at > event.received_at
        # once it is due again and the fault is gone, it is dispatched
        event.next_attempt_at = event.received_at
        await session.commit()
    monkeypatch.undo()
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    assert await count(runtime.db, FlowExecution, FlowExecution.flow_version_id == version_id) == 1


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert backoff_seconds(50) == 600
