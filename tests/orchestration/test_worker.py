"""The worker runs each queued execution once, as a Prefect flow run, and recovers crashes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from socialflow.core.db import utcnow
from socialflow.orchestration import EngineRuntime
from socialflow.orchestration._inbox import store_events
from socialflow.orchestration._models import ExecutionStatus, FlowExecution, NodeRun
from socialflow.orchestration._worker import Worker
from tests.fixtures.flows import publish
from tests.orchestration.test_dispatch import hook_event


async def wait_for(predicate: Any, *, timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.2)


async def statuses(runtime: EngineRuntime, version_id: uuid.UUID) -> dict[str, int]:
    async with runtime.db.sessionmaker() as session:
        rows = await session.execute(
            select(FlowExecution.status, func.count())
            .where(FlowExecution.flow_version_id == version_id)
            .group_by(FlowExecution.status)
        )
        return dict(rows.tuples().all())


async def test_each_event_runs_once_to_completion(runtime: EngineRuntime) -> None:
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        await store_events(
            session, [hook_event(flow_id, n, key=f"w:{flow_id}:{n % 20}") for n in range(30)]
        )
    worker = Worker(runtime, concurrency=4, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_for(lambda: _done(runtime, version_id, 20))
    finally:
        stop.set()
        await task
    assert await statuses(runtime, version_id) == {"completed": 20}
    async with runtime.db.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(FlowExecution).where(FlowExecution.flow_version_id == version_id)
            )
        ).all()
        assert all(r.attempt == 1 and r.prefect_flow_run_id is not None for r in rows)
        even = await session.scalar(
            select(func.count())
            .select_from(NodeRun)
            .where(
                NodeRun.execution_id.in_([r.id for r in rows]),
                NodeRun.node_id == "even",
                NodeRun.status == "completed",
            )
        )
    assert even == 10  # n in 0..19: the even half took the true branch


async def _done(runtime: EngineRuntime, version_id: uuid.UUID, expected: int) -> bool:
    found = await statuses(runtime, version_id)
    return sum(n for s, n in found.items() if s in ("completed", "failed", "crashed")) >= expected


async def test_an_abandoned_run_is_claimed_again_and_completes_once(runtime: EngineRuntime) -> None:
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        [stored] = await store_events(session, [hook_event(flow_id, 4)])
    # a first worker claims the execution and "dies": its lease lapses with the run half done
    worker = Worker(runtime, concurrency=1, poll_interval=0.05, lease_seconds=60)
    from socialflow.orchestration._dispatch import Dispatcher

    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    [claim] = await worker._claim(1)
    async with runtime.db.sessionmaker() as session:
        await session.execute(
            update(FlowExecution)
            .where(FlowExecution.id == claim.execution_id)
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    # a second worker takes it over
    second = Worker(runtime, concurrency=2, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        await wait_for(lambda: _done(runtime, version_id, 1))
    finally:
        stop.set()
        await task
    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, claim.execution_id)
        assert row is not None
        assert row.status == ExecutionStatus.COMPLETED
        assert row.attempt == 2
        assert row.claimed_by == second.name
        assert row.trigger_event_id == stored.id
    assert await statuses(runtime, version_id) == {"completed": 1}


SLOW: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
        {"id": "nap", "kind": "test.sleep", "label": "Nap", "config": {"seconds": 30}},
    ],
    "edges": [{"source": "hook", "source_port": "event", "target": "nap"}],
}


async def test_a_worker_that_lost_its_lease_stops_and_writes_nothing(
    runtime: EngineRuntime,
) -> None:
    """While this worker runs an execution, another claims it (the lease lapsed, e.g. while
    the database was away): this one notices at its next renewal, stops the run, and leaves
    the row to the new owner."""
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings, SLOW)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, 1)])
    worker = Worker(runtime, concurrency=1, poll_interval=0.05, lease_seconds=1.5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def napping() -> bool:
            async with runtime.db.sessionmaker() as session:
                return bool(
                    await session.scalar(
                        select(func.count())
                        .select_from(NodeRun)
                        .join(FlowExecution, FlowExecution.id == NodeRun.execution_id)
                        .where(
                            FlowExecution.flow_version_id == version_id,
                            NodeRun.node_id == "nap",
                            NodeRun.status == "running",
                        )
                    )
                )

        await wait_for(napping)
        async with runtime.db.sessionmaker() as session:
            row = await session.scalar(
                select(FlowExecution).where(FlowExecution.flow_version_id == version_id)
            )
            assert row is not None and row.claimed_by == worker.name and row.attempt == 1
            execution_id = row.id
            # what another worker's claim writes
            await session.execute(
                update(FlowExecution)
                .where(FlowExecution.id == execution_id)
                .values(
                    claimed_by="another-worker",
                    attempt=2,
                    lease_until=utcnow() + timedelta(minutes=5),
                )
            )
            await session.commit()
        await wait_for(lambda: _idle(worker), timeout=30)
    finally:
        stop.set()
        await task
    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, execution_id)
        assert row is not None
        # untouched by the stopped run: neither failed nor cancelled nor finished by it
        assert (row.status, row.claimed_by, row.attempt) == ("running", "another-worker", 2)
        assert row.finished_at is None and row.error is None
    assert worker.completed == 0 and worker.cancelled == 0
    assert execution_id not in runtime.lease_lost


async def _idle(worker: Worker) -> bool:
    return not worker._inflight
