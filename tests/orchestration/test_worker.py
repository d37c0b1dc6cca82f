"""The worker runs each queued execution once, as a Prefect flow run, and recovers crashes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from socialflow.core.db import utcnow
from socialflow.orchestration import (
    Dispatcher,
    EngineRuntime,
    ExecutionStatus,
    FlowExecution,
    NodeRun,
    Worker,
    store_events,
)
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
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    # a first worker claims the execution, starts its Prefect flow run and "dies": the flow
    # run stays Running and the lease lapses with the run half done
    worker = Worker(runtime, concurrency=1, poll_interval=0.05, lease_seconds=60)
    [claim] = await worker.claims.claim(1)
    abandoned = await abandon(runtime, claim.execution_id, flow_id)
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
        assert row.prefect_flow_run_id not in (None, abandoned)
    assert await statuses(runtime, version_id) == {"completed": 1}
    # in Prefect: the abandoned attempt ended Crashed, the second one Completed, nothing else
    runs = await prefect_runs_of(flow_id)
    assert set(runs) == {claim.execution_id}
    assert {run.id: state_of(run) for run in runs[claim.execution_id]} == {
        abandoned: "CRASHED",
        row.prefect_flow_run_id: "COMPLETED",
    }


async def test_an_execution_abandoned_max_attempts_times_is_given_up(
    runtime: EngineRuntime,
) -> None:
    """Each of ``max_attempts`` claims died mid-run: the next claim does not run it again but
    gives it up, with the reason."""
    execution_id, _last, worker = await _given_up(runtime)
    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, execution_id)
        assert row is not None
        nodes = (await session.scalars(select(NodeRun).where(NodeRun.execution_id == row.id))).all()
    assert row.status == ExecutionStatus.CRASHED
    assert row.error == "gave up after 2 attempts: each worker stopped mid-run"
    assert row.attempt == 2 and row.finished_at is not None
    assert worker.completed == 0 and nodes == []


async def test_a_given_up_executions_last_flow_run_ends_crashed(runtime: EngineRuntime) -> None:
    execution_id, last, _worker = await _given_up(runtime)
    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, execution_id)
        assert row is not None and row.prefect_flow_run_id == last
        flow_id = row.flow_id
    assert flow_id is not None
    runs = await prefect_runs_of(flow_id)
    assert {run.id: state_of(run) for run in runs[execution_id]}[last] == "CRASHED"


async def _given_up(runtime: EngineRuntime) -> tuple[uuid.UUID, uuid.UUID, Worker]:
    """An execution whose two attempts (``max_attempts=2``) were abandoned mid-run, after a
    worker's claim gave it up. Returns its id, its last flow run's id, and that worker."""
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, 4)])
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    dead = Worker(runtime, concurrency=1, poll_interval=0.05, lease_seconds=60, max_attempts=2)
    [claim] = await dead.claims.claim(1)
    first = await abandon(runtime, claim.execution_id, flow_id)
    [again] = await dead.claims.claim(1)
    assert (again.execution_id, again.attempt, again.abandoned_flow_run_id) == (
        claim.execution_id,
        2,
        first,
    )
    last = await abandon(runtime, claim.execution_id, flow_id)
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, max_attempts=2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_for(lambda: _done(runtime, version_id, 1), timeout=30)
    finally:
        stop.set()
        await task
    return claim.execution_id, last, worker


async def abandon(runtime: EngineRuntime, execution_id: uuid.UUID, flow_id: uuid.UUID) -> uuid.UUID:
    """Leave the claimed execution as a worker killed mid-run leaves it: a Prefect flow run of
    the current attempt Running (named, tagged and with the parameters a real run has), its id
    on the row, the lease lapsed. Returns the flow run's id."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    from socialflow.orchestration import RunMeta, flow_for

    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, execution_id)
        assert row is not None and row.status == ExecutionStatus.RUNNING
        meta = RunMeta(
            execution_id=row.id,
            flow_name=row.flow_name,
            flow_id=row.flow_id,
            flow_version_id=row.flow_version_id,
            version=row.version_number,
            attempt=row.attempt,
        )
        async with get_client() as client:
            flow_run = await client.create_flow_run(
                flow_for(row.flow_name),
                parameters={"graph": "{}", "trigger": {}, "meta": meta.model_dump(mode="json")},
                tags=meta.tags("trigger.webhook"),
                state=Running(),
            )
        assert f"flow:{flow_id}" in flow_run.tags
        row.prefect_flow_run_id = flow_run.id
        row.lease_until = utcnow() - timedelta(seconds=1)
        await session.commit()
    return flow_run.id


async def prefect_runs_of(flow_id: uuid.UUID) -> dict[uuid.UUID, list[Any]]:
    """Every Prefect flow run tagged with the flow, by the execution id in its parameters."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    found: list[Any] = []
    async with get_client() as client:
        while True:
            page = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"flow:{flow_id}"])),
                limit=200,
                offset=len(found),
            )
            found += page
            if len(page) < 200:
                break
    by_execution: dict[uuid.UUID, list[Any]] = {}
    for run in found:
        execution_id = uuid.UUID(run.parameters["meta"]["execution_id"])
        by_execution.setdefault(execution_id, []).append(run)
    return by_execution


def state_of(run: Any) -> str:
    return str(run.state.type.value) if run.state is not None else "NONE"


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
    return not worker.inflight
