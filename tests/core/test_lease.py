"""Leases on queue rows, on SQLite and PostgreSQL: one holder per row under concurrency,
renewal only by the holder, lapsed leases taken over, and a terminal state after max attempts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import String, delete, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from socialflow.core.db import Database, UTCDateTime, utcnow
from socialflow.core.lease import Held, Leases, LeaseTable, lock_for_claim


class _Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime}  # noqa: RUF012 - SQLAlchemy's own hook


class Job(_Base):
    __tablename__ = "lease_test_job"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    attempts: Mapped[int] = mapped_column(default=0)
    owner: Mapped[str | None] = mapped_column(String(50), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


TABLE = LeaseTable(
    model=Job,
    id=Job.id,
    status=Job.status,
    attempts=Job.attempts,
    stamp=Job.lease_until,
    owner=Job.owner,
    waiting="waiting",
    held="running",
    exhausted="given_up",
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)
    async with db.sessionmaker() as session:
        await session.execute(delete(Job))
        await session.commit()
    yield db
    # the table is this test's own: leave the shared database with the models' tables only
    async with db.engine.begin() as connection:
        await connection.run_sync(_Base.metadata.drop_all)
    await db.dispose()


async def _add(db: Database, n: int) -> list[uuid.UUID]:
    jobs = [Job() for _ in range(n)]
    async with db.sessionmaker() as session:
        session.add_all(jobs)
        await session.commit()
    return [job.id for job in jobs]


async def _claim(db: Database, leases: Leases, owner: str, limit: int = 10) -> list[Held]:
    async with db.sessionmaker() as session:
        result = await leases.claim(session, limit=limit, owner=owner, order_by=[Job.created_at])
        await session.commit()
    return [held for held, _ in result.claimed]


async def _row(db: Database, job_id: uuid.UUID) -> Job:
    async with db.sessionmaker() as session:
        row = await session.get(Job, job_id)
    assert row is not None
    return row


async def _lapse(db: Database, job_id: uuid.UUID) -> None:
    async with db.sessionmaker() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


class _SlowLeases(Leases):
    """Leases that pause between reading candidates and taking them, so concurrent claimants
    overlap where a race would be."""

    async def _take(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await super()._take(*args, **kwargs)


async def test_concurrent_claimants_take_each_row_once(database: Database) -> None:
    ids = await _add(database, 40)
    leases = _SlowLeases(TABLE, duration=timedelta(minutes=1), max_attempts=3)
    # claimants with engines of their own, as separate worker processes have
    claimants = [Database(database.url) for _ in range(4)]

    async def drain(db: Database, owner: str) -> list[uuid.UUID]:
        taken: list[uuid.UUID] = []
        while held := await _claim(db, leases, owner, limit=3):
            taken += [h.id for h in held]
        return taken

    try:
        taken = await asyncio.gather(*(drain(db, f"w{n}") for n, db in enumerate(claimants)))
    finally:
        for db in claimants:
            await db.dispose()
    every = [job_id for part in taken for job_id in part]
    assert sorted(every) == sorted(ids)  # each row once, none left out
    for n, part in enumerate(taken):
        for job_id in part:
            row = await _row(database, job_id)
            assert (row.status, row.owner, row.attempts) == ("running", f"w{n}", 1)


async def test_a_held_lease_is_not_claimed_again(database: Database) -> None:
    [job_id] = await _add(database, 1)
    leases = Leases(TABLE, duration=timedelta(minutes=1), max_attempts=3)
    assert [h.id for h in await _claim(database, leases, "a")] == [job_id]
    assert await _claim(database, leases, "b") == []


async def test_only_the_holder_renews(database: Database) -> None:
    [job_id] = await _add(database, 1)
    leases = Leases(TABLE, duration=timedelta(minutes=1), max_attempts=3)
    [held] = await _claim(database, leases, "a")
    before = (await _row(database, job_id)).lease_until
    assert before is not None
    async with database.sessionmaker() as session:
        assert await leases.renew(session, [held], owner="b") == set()  # not b's
        assert await leases.renew(session, [Held(job_id, held.attempt + 1)], owner="a") == set()
        await session.commit()
    assert (await _row(database, job_id)).lease_until == before
    async with database.sessionmaker() as session:
        assert await leases.renew(session, [held], owner="a") == {job_id}
        await session.commit()
    after = (await _row(database, job_id)).lease_until
    assert after is not None and after > before


async def test_a_lapsed_lease_is_taken_over_and_the_old_holder_fenced_off(
    database: Database,
) -> None:
    [job_id] = await _add(database, 1)
    leases = Leases(TABLE, duration=timedelta(minutes=1), max_attempts=3)
    [first] = await _claim(database, leases, "a")
    await _lapse(database, job_id)
    [second] = await _claim(database, leases, "b")
    assert (second.id, second.attempt) == (job_id, 2)
    row = await _row(database, job_id)
    assert (row.status, row.owner, row.attempts) == ("running", "b", 2)
    async with database.sessionmaker() as session:
        # the first holder can neither renew nor end the lease it lost
        assert await leases.renew(session, [first], owner="a") == set()
        assert await leases.renew(session, [first]) == set()
        assert not await leases.end(session, first, {"status": "done"})
        assert not await leases.lapse(session, first)
        assert await leases.end(session, second, {"status": "done"}, owner="b")
        await session.commit()
    assert (await _row(database, job_id)).status == "done"


async def test_a_lapsed_lease_given_back_is_claimed_at_once(database: Database) -> None:
    [job_id] = await _add(database, 1)
    leases = Leases(TABLE, duration=timedelta(minutes=1), max_attempts=3)
    [held] = await _claim(database, leases, "a")
    async with database.sessionmaker() as session:
        assert await leases.lapse(session, held)
        await session.commit()
    [again] = await _claim(database, leases, "b")
    assert (again.id, again.attempt) == (job_id, 2)


async def test_max_attempts_ends_in_the_terminal_state(database: Database) -> None:
    [job_id] = await _add(database, 1)
    leases = Leases(TABLE, duration=timedelta(minutes=1), max_attempts=2)
    for owner in ("a", "b"):
        assert [h.id for h in await _claim(database, leases, owner)] == [job_id]
        await _lapse(database, job_id)
    async with database.sessionmaker() as session:
        result = await leases.claim(
            session,
            limit=10,
            owner="c",
            exhausted_values=lambda n: {"error": f"gave up after {n} attempts"},
        )
        await session.commit()
    assert result.claimed == [] and [c.id for c in result.exhausted] == [job_id]
    row = await _row(database, job_id)
    assert (row.status, row.attempts, row.owner) == ("given_up", 2, "b")
    assert row.error == "gave up after 2 attempts"
    assert await _claim(database, leases, "d") == []  # terminal: never claimed again


async def test_a_withdrawn_row_is_settled_not_claimed(database: Database) -> None:
    first, second = await _add(database, 2)
    leases = Leases(TABLE, duration=timedelta(minutes=1), max_attempts=3)
    async with database.sessionmaker() as session:
        result = await leases.claim(
            session,
            limit=10,
            owner="a",
            withdraw=Job.id == first,
            withdrawn_values={"status": "cancelled"},
        )
        await session.commit()
    assert [c.id for c in result.withdrawn] == [first]
    assert [held.id for held, _ in result.claimed] == [second]
    assert (await _row(database, first)).status == "cancelled"


async def test_a_renewal_stamp_lease_lapses_after_its_duration(database: Database) -> None:
    """A table whose stamp records the last renewal rather than the expiry."""
    table = LeaseTable(
        model=Job,
        id=Job.id,
        status=Job.status,
        attempts=Job.attempts,
        stamp=Job.lease_until,
        waiting="waiting",
        held="running",
        exhausted="given_up",
        stamp_is_expiry=False,
    )
    [job_id] = await _add(database, 1)
    leases = Leases(table, duration=timedelta(minutes=1), max_attempts=3)
    [held] = await _claim(database, leases, "a")
    stamp = (await _row(database, job_id)).lease_until
    assert stamp is not None and abs((stamp - utcnow()).total_seconds()) < 30
    assert await _claim(database, leases, "b") == []
    async with database.sessionmaker() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(minutes=2))
        )
        await session.commit()
    [again] = await _claim(database, leases, "b")
    assert (again.id, again.attempt) == (job_id, held.attempt + 1)


async def test_lock_for_claim_keeps_rows_from_a_second_reader(database: Database) -> None:
    """While one session holds the rows it read to claim, another reads none of them."""
    ids = await _add(database, 3)
    other = Database(database.url)
    try:
        async with database.sessionmaker() as first:
            query = await lock_for_claim(first, select(Job.id).where(Job.id.in_(ids)), Job)
            assert len((await first.execute(query)).all()) == 3

            async def second_reads() -> int:
                async with other.sessionmaker() as second:
                    query = await lock_for_claim(
                        second,
                        select(Job.id).where(Job.id.in_(ids), Job.status == "waiting"),
                        Job,
                    )
                    found = len((await second.execute(query)).all())
                    await second.commit()
                    return found

            reader = asyncio.create_task(second_reads())
            await asyncio.sleep(0.3)
            if database.is_sqlite:
                assert not reader.done()  # waits for the write lock
            await first.execute(update(Job).where(Job.id.in_(ids)).values(status="running"))
            await first.commit()
            # PostgreSQL skipped the locked rows; SQLite read them after the commit
            assert await reader == 0
    finally:
        await other.dispose()
