"""Cancelling executions, and live updates relayed from a worker to another process's hub."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from socialflow.core.errors import ConflictError, NotFoundError
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionEvent,
    ExecutionEvents,
    FlowExecution,
    NodeEvent,
    NodeRun,
    UpdateFeed,
    Worker,
    enqueue_run,
    request_cancel,
    store_events,
)
from tests.fixtures.flows import FOUR_NODES, publish
from tests.fixtures.prefect import flow_run
from tests.orchestration.test_dispatch import hook_event
from tests.orchestration.test_worker import wait_for

# webhook → wait 60 s → set: a run that stays in the middle until it is cancelled
SLOW: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
        {"id": "wait", "kind": "logic.delay", "label": "Wait", "config": {"seconds": 60}},
        {"id": "after", "kind": "data.set", "label": "After", "config": {"values": {"x": "1"}}},
    ],
    "edges": [
        {"source": "hook", "source_port": "event", "target": "wait"},
        {"source": "wait", "target": "after"},
    ],
}


async def _execution(runtime: EngineRuntime, execution_id: uuid.UUID) -> FlowExecution:
    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, execution_id)
        assert row is not None
        return row


async def _nodes(runtime: EngineRuntime, execution_id: uuid.UUID) -> dict[str, NodeRun]:
    async with runtime.db.sessionmaker() as session:
        rows = await session.scalars(select(NodeRun).where(NodeRun.execution_id == execution_id))
        return {r.node_id: r for r in rows}


async def test_a_queued_execution_is_cancelled_at_once_and_never_runs(
    runtime: EngineRuntime,
) -> None:
    workspace_id = uuid.uuid4()
    flow_id, version_id = await publish(
        runtime.db, runtime.registry, runtime.settings, workspace_id=workspace_id
    )
    async with runtime.db.sessionmaker() as session:
        execution_id = await enqueue_run(
            session,
            workspace_id=workspace_id,
            flow_id=flow_id,
            flow_name="four nodes",
            trigger_kind="trigger.webhook",
            payload={"body": {"n": 2}},
            version_id=version_id,
            version_number=1,
        )
        row = await request_cancel(workspace_id, execution_id, session=session)
        assert row.status == "cancelled"
        assert row.cancel_requested_at is not None
        # asking twice is harmless; another workspace cannot see it
        again = await request_cancel(workspace_id, execution_id, session=session)
        assert again.status == "cancelled"
        with pytest.raises(NotFoundError):
            await request_cancel(uuid.uuid4(), execution_id, session=session)

    worker = Worker(runtime, concurrency=2, poll_interval=0.05, relay=False)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(1.0)  # several claim rounds
    stop.set()
    await task
    row = await _execution(runtime, execution_id)
    assert row.status == "cancelled"
    assert row.prefect_flow_run_id is None  # never started
    assert await _nodes(runtime, execution_id) == {}


async def test_a_running_execution_is_stopped_by_its_worker(runtime: EngineRuntime) -> None:
    workspace_id = uuid.uuid4()
    flow_id, _version_id = await publish(
        runtime.db, runtime.registry, runtime.settings, SLOW, name="slow", workspace_id=workspace_id
    )
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, 1, key=f"c:{flow_id}")])
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, cancel_poll=0.2, relay=False)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        found: list[uuid.UUID] = []

        async def waiting() -> bool:
            async with runtime.db.sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(NodeRun.execution_id).where(
                            NodeRun.node_id == "wait", NodeRun.status == "running"
                        )
                    )
                ).all()
            found[:] = [r[0] for r in rows]
            return bool(found)

        await wait_for(waiting)
        execution_id = found[0]
        async with runtime.db.sessionmaker() as session:
            row = await request_cancel(workspace_id, execution_id, session=session)
            assert row.status == "running"
            assert row.cancel_requested_at is not None

        async def cancelled() -> bool:
            return (await _execution(runtime, execution_id)).status == "cancelled"

        await wait_for(cancelled, timeout=30)
    finally:
        stop.set()
        await task
    assert worker.cancelled == 1
    row = await _execution(runtime, execution_id)
    assert row.error == "cancelled on request"
    nodes = await _nodes(runtime, execution_id)
    assert nodes["hook"].status == "completed"
    assert nodes["wait"].status == "cancelled"
    assert nodes["after"].status == "cancelled"
    assert row.prefect_flow_run_id is not None
    assert (await flow_run(row.prefect_flow_run_id)).state.type.value == "CANCELLED"
    async with runtime.db.sessionmaker() as session:  # asking again changes nothing
        assert (await request_cancel(workspace_id, execution_id, session=session)).status == (
            "cancelled"
        )


async def test_a_cancel_request_outlives_the_worker_that_held_the_run(
    runtime: EngineRuntime,
) -> None:
    """A worker died after the request but before it noticed: the next claim does not rerun."""
    from datetime import timedelta

    from sqlalchemy import update

    from socialflow.core.db import utcnow

    workspace_id = uuid.uuid4()
    flow_id, version_id = await publish(
        runtime.db, runtime.registry, runtime.settings, workspace_id=workspace_id
    )
    async with runtime.db.sessionmaker() as session:
        execution_id = await enqueue_run(
            session,
            workspace_id=workspace_id,
            flow_id=flow_id,
            flow_name="four nodes",
            trigger_kind="trigger.webhook",
            payload={"body": {"n": 2}},
            version_id=version_id,
            version_number=1,
        )
        # as a worker that claimed it and then died would leave it
        await session.execute(
            update(FlowExecution)
            .where(FlowExecution.id == execution_id)
            .values(status="running", attempt=1, lease_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
        await request_cancel(workspace_id, execution_id, session=session)
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, relay=False)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def cancelled() -> bool:
            return (await _execution(runtime, execution_id)).status == "cancelled"

        await wait_for(cancelled, timeout=30)
    finally:
        stop.set()
        await task
    assert worker.completed == 0
    assert await _nodes(runtime, execution_id) == {}


async def test_a_workers_live_updates_reach_another_processs_hub(runtime: EngineRuntime) -> None:
    """The worker's hub and the API's hub are separate (as in two processes); the relay table
    carries every node and execution update from one to the other, in order."""
    workspace_id = uuid.uuid4()
    flow_id, _ = await publish(
        runtime.db, runtime.registry, runtime.settings, FOUR_NODES, workspace_id=workspace_id
    )
    api_hub = ExecutionEvents()
    assert api_hub.origin != runtime.events.origin
    feed = UpdateFeed(runtime.db, api_hub, poll_interval=0.05)
    await feed.read_once()  # sets the starting mark, as at API start-up
    subscription = api_hub.subscribe(workspace_id)
    stop = asyncio.Event()
    feed_task = asyncio.create_task(feed.run(stop))
    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
    worker_task = asyncio.create_task(worker.run(stop))
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, 4, key=f"r:{flow_id}")])
    received: list[Any] = []
    try:
        async with asyncio.timeout(60):
            async for event in subscription:
                received.append(event)
                if isinstance(event, ExecutionEvent) and not event.active:
                    break
    finally:
        subscription.close()
        stop.set()
        await asyncio.gather(worker_task, feed_task)
    executions = [e for e in received if isinstance(e, ExecutionEvent)]
    nodes = [e for e in received if isinstance(e, NodeEvent)]
    assert executions[0].status == "running"
    assert executions[-1].status == "completed"
    assert executions[-1].flow_id == flow_id
    final = {e.node_id: e.status for e in nodes}
    assert final == {
        "hook": "completed",
        "greet": "completed",
        "check": "completed",
        "even": "completed",
    }
    # the feed never re-publishes into the hub of the process that wrote the rows
    assert feed.published == len(received)
    # a finished run cannot be cancelled
    async with runtime.db.sessionmaker() as session:
        with pytest.raises(ConflictError, match=r"already finished \(completed\)"):
            await request_cancel(workspace_id, executions[-1].execution_id, session=session)
