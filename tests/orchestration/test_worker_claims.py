"""The worker's claims alone, without Prefect: who holds an execution, and for how long."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, update

from socialflow.core.db import Database, utcnow
from socialflow.migrations import upgrade
from socialflow.orchestration import ExecutionStatus, FlowExecution
from socialflow.orchestration._runner import CANCELLED_MESSAGE
from socialflow.orchestration._worker._claims import ExecutionClaims
from socialflow.orchestration._worker._inflight import InFlight


@pytest.fixture(scope="module")
async def claims_db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    """A migrated SQLite database of this module's own: claims take whatever is queued."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('claims') / 'claims.db'}"
    await upgrade(url)
    db = Database(url)
    yield db
    await db.dispose()


@pytest.fixture
async def fresh_db(claims_db: Database) -> Database:
    """That database with no executions."""
    async with claims_db.sessionmaker() as session:
        await session.execute(delete(FlowExecution))
        await session.commit()
    return claims_db


async def _queue(db: Database, n: int) -> list[uuid.UUID]:
    now = utcnow()
    rows = [
        FlowExecution(
            flow_name="claims",
            trigger_kind="trigger.manual",
            status=ExecutionStatus.QUEUED,
            created_at=now + timedelta(milliseconds=i),
        )
        for i in range(n)
    ]
    async with db.sessionmaker() as session:
        session.add_all(rows)
        await session.commit()
    return [row.id for row in rows]


async def _row(db: Database, execution_id: uuid.UUID) -> FlowExecution:
    async with db.sessionmaker() as session:
        row = await session.get(FlowExecution, execution_id)
    assert row is not None
    return row


def _claims(db: Database, owner: str, lease: float = 60) -> ExecutionClaims:
    return ExecutionClaims(db, owner=owner, lease=timedelta(seconds=lease), max_attempts=3)


async def test_a_claim_takes_the_oldest_queued_executions(fresh_db: Database) -> None:
    ids = await _queue(fresh_db, 3)
    claims = await _claims(fresh_db, "a").claim(2)
    assert [(c.execution_id, c.attempt, c.abandoned_flow_run_id) for c in claims] == [
        (ids[0], 1, None),
        (ids[1], 1, None),
    ]
    row = await _row(fresh_db, ids[0])
    assert (row.status, row.claimed_by, row.attempt) == ("running", "a", 1)
    assert row.lease_until is not None and row.lease_until > utcnow() + timedelta(seconds=50)
    assert [c.execution_id for c in await _claims(fresh_db, "b").claim(5)] == [ids[2]]


async def test_a_given_back_claim_is_taken_again_with_its_abandoned_flow_run(
    fresh_db: Database,
) -> None:
    [execution_id] = await _queue(fresh_db, 1)
    first = _claims(fresh_db, "a")
    [claim] = await first.claim(1)
    flow_run_id = uuid.uuid4()
    async with fresh_db.sessionmaker() as session:
        await session.execute(
            update(FlowExecution)
            .where(FlowExecution.id == execution_id)
            .values(prefect_flow_run_id=flow_run_id)
        )
        await session.commit()
    await first.give_back(claim)
    [again] = await _claims(fresh_db, "b").claim(1)
    assert (again.execution_id, again.attempt, again.abandoned_flow_run_id) == (
        execution_id,
        2,
        flow_run_id,
    )
    # the first claim no longer holds it: it can neither renew nor give it back
    assert await first.renew([claim.held]) == set()
    await first.give_back(claim)
    lease_until = (await _row(fresh_db, execution_id)).lease_until
    assert lease_until is not None and lease_until > utcnow()


async def test_a_requested_cancel_settles_the_execution_instead_of_running_it(
    fresh_db: Database,
) -> None:
    cancelled, runnable = await _queue(fresh_db, 2)
    async with fresh_db.sessionmaker() as session:
        await session.execute(
            update(FlowExecution)
            .where(FlowExecution.id == cancelled)
            .values(cancel_requested_at=utcnow())
        )
        await session.commit()
    claims = await _claims(fresh_db, "a").claim(5)
    assert [c.execution_id for c in claims] == [runnable]
    row = await _row(fresh_db, cancelled)
    assert (row.status, row.error) == (ExecutionStatus.CANCELLED, CANCELLED_MESSAGE)
    assert row.finished_at is not None


async def test_keeping_leases_stops_a_run_whose_execution_was_taken_over(
    fresh_db: Database,
) -> None:
    kept, taken = await _queue(fresh_db, 2)
    mine = _claims(fresh_db, "a", lease=0.6)
    claims = {c.execution_id: c for c in await mine.claim(2)}
    inflight = InFlight(2)
    tasks = {i: asyncio.create_task(asyncio.sleep(30)) for i in (kept, taken)}
    for execution_id, task in tasks.items():
        inflight.add(claims[execution_id].held, task)
    async with fresh_db.sessionmaker() as session:
        # what another worker's claim writes once the lease lapsed
        await session.execute(
            update(FlowExecution)
            .where(FlowExecution.id == taken)
            .values(claimed_by="b", attempt=2, lease_until=utcnow() + timedelta(minutes=5))
        )
        await session.commit()
    lost: set[uuid.UUID] = set()
    stop = asyncio.Event()
    keeper = asyncio.create_task(mine.keep(inflight, lost, stop))
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(tasks[taken], 10)
        assert lost == {taken}
        before = (await _row(fresh_db, kept)).lease_until
        await asyncio.sleep(0.5)
        after = (await _row(fresh_db, kept)).lease_until
        assert before is not None and after is not None and after > before
        assert not tasks[kept].done()
    finally:
        stop.set()
        keeper.cancel()
        tasks[kept].cancel()
        await asyncio.gather(keeper, tasks[kept], return_exceptions=True)
    row = await _row(fresh_db, taken)
    assert (row.claimed_by, row.attempt) == ("b", 2)
