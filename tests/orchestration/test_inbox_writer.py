"""Group commit of inbox events: shared commits, never an answer before the commit, a failed
commit fails exactly its calls, refused data fails only its own call, duplicates reported."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from socialflow.core.db import Database
from socialflow.migrations import upgrade
from socialflow.orchestration import InboxWriter, WebhookEvent
from socialflow.orchestration._inbox import EventIn


def event(flow_id: uuid.UUID, n: int, *, key: str | None = None, kind: str = "webhook.request"):
    return EventIn(
        source="webhook",
        kind=kind,
        dedupe_key=key or f"writer:{uuid.uuid4()}",
        payload={"body": {"n": n, "text": "ünïcode ✓"}},
        flow_id=flow_id,
        raw_body=f'{{"n": {n}}}'.encode(),
        headers={"x-shop": "acme"},
    )


async def stored(db: Database, flow_id: uuid.UUID) -> int:
    async with db.sessionmaker() as session:
        found = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.flow_id == flow_id)
        )
    return int(found or 0)


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Database]:
    await upgrade(postgres_url)
    database = Database(postgres_url, pool_size=2)
    yield database
    await database.dispose()


def admin_dsn(db: Database) -> str:
    return db.url.replace("postgresql+psycopg://", "postgresql://", 1)


async def test_rows_duplicates_and_ids_match_one_at_a_time_storage(db: Database) -> None:
    writer = InboxWriter(db)
    flow_id = uuid.uuid4()
    try:
        [first] = await writer.store([event(flow_id, 1, key=f"same:{flow_id}")])
        [again] = await writer.store([event(flow_id, 1, key=f"same:{flow_id}")])
        # two events with one key in one call, and two calls with one key in one group
        pair = await writer.store(
            [event(flow_id, 2, key=f"pair:{flow_id}"), event(flow_id, 2, key=f"pair:{flow_id}")]
        )
        racing = await asyncio.gather(
            *(writer.store([event(flow_id, 3, key=f"race:{flow_id}")]) for _ in range(5))
        )
    finally:
        await writer.close()
    assert not first.duplicate and again.duplicate and again.id == first.id
    assert [p.duplicate for p in pair] == [False, True] and pair[0].id == pair[1].id
    flat = [r for [r] in racing]
    assert sum(not r.duplicate for r in flat) == 1 and len({r.id for r in flat}) == 1
    assert await stored(db, flow_id) == 3
    async with db.sessionmaker() as session:
        row = await session.get(WebhookEvent, first.id)
    assert row is not None
    assert row.payload == {"body": {"n": 1, "text": "ünïcode ✓"}}
    assert row.headers == {"x-shop": "acme"} and row.raw_body == b'{"n": 1}'
    assert row.status == "pending" and row.attempts == 0 and row.received_at is not None


async def hold_inserts(db: Database) -> psycopg.AsyncConnection[Any]:
    """A transaction that blocks every INSERT into the inbox until it ends."""
    blocker = await psycopg.AsyncConnection.connect(admin_dsn(db))
    await blocker.execute("LOCK TABLE webhook_event IN EXCLUSIVE MODE")
    return blocker


@pytest.mark.postgres
async def test_calls_arriving_together_share_a_commit_and_wait_for_it(pg_db: Database) -> None:
    writer = InboxWriter(pg_db, connections=1)
    writer.start()
    flow_id = uuid.uuid4()
    blocker = await hold_inserts(pg_db)
    try:
        lead = asyncio.create_task(writer.store([event(flow_id, 0)]))
        await asyncio.sleep(0.2)  # the lone call's flush is waiting on the lock
        group = [asyncio.create_task(writer.store([event(flow_id, n)])) for n in range(1, 21)]
        await asyncio.sleep(0.3)
        # nobody is answered while the commit that holds their rows has not happened
        assert not lead.done() and not any(t.done() for t in group)
        await blocker.commit()
        results = [await lead, *[await t for t in group]]
    finally:
        await blocker.close()
        await writer.close()
    assert all(not r.duplicate for [r] in results)
    assert list(writer.batch_sizes)[-2:] == [1, 20]
    assert await stored(pg_db, flow_id) == 21


@pytest.mark.postgres
async def test_a_failed_commit_fails_exactly_the_calls_it_held(pg_db: Database) -> None:
    """A commit-time failure (a deferred trigger raising disk_full when the commit checks it)
    fails every call of that group and no call of another; none of its rows exist."""
    doomed = f"test.fail_commit_{uuid.uuid4().hex[:8]}"
    fn = f"fail_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(admin_dsn(pg_db), autocommit=True) as conn:
        await conn.execute(
            f"CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'no space left' USING ERRCODE = 'disk_full'; END $$"
        )
        await conn.execute(
            f"CREATE CONSTRAINT TRIGGER {fn} AFTER INSERT ON webhook_event "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            f"WHEN (NEW.kind = '{doomed}') EXECUTE FUNCTION {fn}()"
        )
    writer = InboxWriter(pg_db, connections=1)
    writer.start()
    flow_id = uuid.uuid4()
    try:
        blocker = await hold_inserts(pg_db)
        try:
            before = asyncio.create_task(writer.store([event(flow_id, 0)]))
            await asyncio.sleep(0.2)
            bad = asyncio.create_task(writer.store([event(flow_id, 1, kind=doomed)]))
            neighbours = [asyncio.create_task(writer.store([event(flow_id, n)])) for n in (2, 3)]
            await asyncio.sleep(0.2)
            await blocker.commit()
            [ok] = await before
        finally:
            await blocker.close()
        for task in (bad, *neighbours):
            with pytest.raises(psycopg.errors.DiskFull):
                await task
        [after] = await writer.store([event(flow_id, 4)])
    finally:
        await writer.close()
        async with await psycopg.AsyncConnection.connect(admin_dsn(pg_db), autocommit=True) as conn:
            await conn.execute(f"DROP TRIGGER {fn} ON webhook_event")
            await conn.execute(f"DROP FUNCTION {fn}()")
    assert not ok.duplicate and not after.duplicate
    assert list(writer.batch_sizes)[-2:] == [1, 1]  # the failed group of 3 never committed
    assert await stored(pg_db, flow_id) == 2


@pytest.mark.postgres
async def test_data_the_database_refuses_fails_only_its_own_call(pg_db: Database) -> None:
    """A sender cannot take its neighbours down: a value PostgreSQL refuses (a kind longer
    than its column) fails that call; the calls grouped with it are stored on their own."""
    writer = InboxWriter(pg_db, connections=1)
    writer.start()
    flow_id = uuid.uuid4()
    blocker = await hold_inserts(pg_db)
    try:
        lead = asyncio.create_task(writer.store([event(flow_id, 0)]))
        await asyncio.sleep(0.2)
        bad = asyncio.create_task(writer.store([event(flow_id, 1, kind="k" * 101)]))
        good = [asyncio.create_task(writer.store([event(flow_id, n)])) for n in (2, 3)]
        await asyncio.sleep(0.2)
        await blocker.commit()
        await lead
    finally:
        await blocker.close()
    try:
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            await bad
        results = [await t for t in good]
    finally:
        await writer.close()
    assert all(not r.duplicate for [r] in results)
    assert await stored(pg_db, flow_id) == 3
