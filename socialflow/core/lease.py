"""Leases on rows used as a queue: claim, renew, end and give up, alike on SQLite and PostgreSQL.

A queue table keeps, per row, a status, an attempt counter and a lease stamp (the lease's
expiry, or the time it was last renewed), and optionally who holds it. A row is claimable
while it waits, or while it is held under a lease that lapsed (its holder died or lost the
database). Claiming counts an attempt; a row claimed ``max_attempts`` times is given up instead
of run again.

Locking, the strongest of what the queues did before sharing this:

- PostgreSQL: the candidates are read ``FOR UPDATE SKIP LOCKED``, so claimants never wait on
  each other nor read a row another one is claiming.
- SQLite has no row locks: the claim first takes the database's write lock (an ``UPDATE`` that
  touches nothing), so two claimants never both read a row as claimable; concurrent claims run
  one after the other.
- On both, the claiming ``UPDATE`` repeats the claimable condition, and renewing or ending a
  lease is fenced by the attempt the holder claimed (and its owner, where the table records
  one): a holder whose lease was taken over can neither renew nor end the new holder's lease.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, false, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from socialflow.core.db import utcnow

__all__ = ["Candidate", "ClaimResult", "Held", "LeaseTable", "Leases", "lock_for_claim"]

_Rows = TypeVar("_Rows", bound=tuple[Any, ...])


async def lock_for_claim(
    session: AsyncSession, query: Select[_Rows], model: type[Any]
) -> Select[_Rows]:
    """Make ``query``, which reads rows to claim, safe against concurrent claimants.

    On PostgreSQL the query locks the rows it reads and skips rows others locked. On SQLite
    the session takes the database's write lock now, before reading, so the rows read stay
    claimable until the session commits or rolls back.

    Args:
        session: The session the query will run in; its transaction holds the lock.
        query: The ``SELECT`` of candidate rows.
        model: The mapped class the rows belong to.

    Returns:
        The query to run.
    """
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    table = model.__table__
    key = next(iter(table.primary_key.columns))
    await session.execute(update(table).where(false()).values({key.name: key}))
    return query


class LeaseTable:
    """Where a table keeps its leases.

    Args:
        model: The mapped class.
        id: Its primary key.
        status: The status column.
        attempts: Claims of the row so far.
        stamp: The lease: its expiry (``stamp_is_expiry``) or when it was last renewed.
        waiting: Status of a row waiting for its first (or next) claim.
        held: Status of a claimed row.
        exhausted: Status of a row given up after ``max_attempts`` claims.
        owner: Who holds the lease, when the table records it.
        stamp_is_expiry: Whether ``stamp`` holds the expiry rather than the renewal time.
    """

    # a plain class, not a dataclass: a dataclass field typed as a column attribute would be
    # read through the attribute's descriptor by type checkers (as a value, not a column)
    def __init__(
        self,
        *,
        model: type[Any],
        id: QueryableAttribute[Any],
        status: QueryableAttribute[str],
        attempts: QueryableAttribute[int],
        stamp: QueryableAttribute[datetime | None],
        waiting: str,
        held: str,
        exhausted: str,
        owner: QueryableAttribute[str | None] | None = None,
        stamp_is_expiry: bool = True,
    ) -> None:
        self.model = model
        self.id = id
        self.status = status
        self.attempts = attempts
        self.stamp = stamp
        self.waiting = waiting
        self.held = held
        self.exhausted = exhausted
        self.owner = owner
        self.stamp_is_expiry = stamp_is_expiry


@dataclass(frozen=True)
class Held:
    """A lease a claimant holds: the row and the attempt its claim counted."""

    id: Any
    attempt: int


@dataclass(frozen=True)
class Candidate:
    """A claimable row as it was read, before the claim changed it.

    ``row`` holds the columns the caller asked for, in order, after ``id``, ``status`` and
    ``attempts``."""

    id: Any
    status: str
    attempts: int
    row: Row[Any]


@dataclass(frozen=True)
class ClaimResult:
    """What one claim did.

    Attributes:
        claimed: Leases now held, each with the row as read before.
        withdrawn: Rows matching the claim's ``withdraw`` condition, settled instead.
        exhausted: Rows given up after ``max_attempts`` claims.
    """

    claimed: list[tuple[Held, Candidate]] = field(default_factory=list)
    withdrawn: list[Candidate] = field(default_factory=list)
    exhausted: list[Candidate] = field(default_factory=list)


class Leases:
    """Claims, renews and ends leases on the rows of one table.

    Args:
        table: Where the table keeps its leases.
        duration: How long a claim holds without renewal.
        max_attempts: Claims of one row before it is given up (``table.exhausted``).
    """

    def __init__(self, table: LeaseTable, *, duration: timedelta, max_attempts: int) -> None:
        self.table = table
        self.duration = duration
        self.max_attempts = max_attempts

    def stamp(self, now: datetime) -> datetime:
        """The stamp a lease taken or renewed at ``now`` records."""
        return now + self.duration if self.table.stamp_is_expiry else now

    def lapsed(self, now: datetime) -> ColumnElement[bool]:
        """True for a row whose lease (if any) has lapsed at ``now``."""
        if self.table.stamp_is_expiry:
            return self.table.stamp < now
        return self.table.stamp < now - self.duration

    def claimable(self, now: datetime) -> ColumnElement[bool]:
        """True for a row a claim may take at ``now``: waiting, or held under a lapsed lease."""
        t = self.table
        return or_(t.status == t.waiting, (t.status == t.held) & self.lapsed(now))

    async def claim(
        self,
        session: AsyncSession,
        *,
        limit: int,
        owner: str | None = None,
        columns: Sequence[Any] = (),
        where: Sequence[ColumnElement[bool]] = (),
        order_by: Sequence[Any] = (),
        withdraw: ColumnElement[bool] | None = None,
        withdrawn_values: Mapping[str, Any] | None = None,
        exhausted_values: Callable[[int], Mapping[str, Any]] = lambda _attempts: {},
        now: datetime | None = None,
    ) -> ClaimResult:
        """Claim up to ``limit`` claimable rows, in ``order_by`` order. Does not commit.

        Args:
            session: A session with no transaction begun; the caller commits.
            limit: Most rows to read.
            owner: The claimant, recorded in ``table.owner``.
            columns: More columns to read for the caller (in ``Candidate.row``).
            where: More conditions a row must meet.
            order_by: The order candidates are taken in.
            withdraw: Rows meeting it are not claimed but settled with ``withdrawn_values``.
            withdrawn_values: Values a withdrawn row is updated with.
            exhausted_values: Values, beyond ``status``, of a row given up after n attempts.
            now: The claim's clock (default: the current time).

        Returns:
            The leases taken, and the rows withdrawn or given up instead.
        """
        now = now or utcnow()
        query = (
            select(self.table.id, self.table.status, self.table.attempts, *columns)
            .where(self.claimable(now), *where)
            .order_by(*order_by)
            .limit(limit)
        )
        if withdraw is not None:
            query = query.add_columns(withdraw.label("_lease_withdrawn"))
        query = await lock_for_claim(session, query, self.table.model)
        result = ClaimResult()
        to_claim: list[Candidate] = []
        for row in (await session.execute(query)).all():
            candidate = Candidate(row[0], row[1], row[2], row)
            if withdraw is not None and row[-1]:
                result.withdrawn.append(candidate)
            elif candidate.attempts >= self.max_attempts:
                result.exhausted.append(candidate)
            else:
                to_claim.append(candidate)
        if result.withdrawn:
            await self._settle(session, result.withdrawn, dict(withdrawn_values or {}), now)
        await self._give_up(session, result.exhausted, exhausted_values, now)
        if to_claim:
            result.claimed.extend(await self._take(session, to_claim, owner, now))
        return result

    async def _give_up(
        self,
        session: AsyncSession,
        rows: list[Candidate],
        values: Callable[[int], Mapping[str, Any]],
        now: datetime,
    ) -> None:
        """Settle rows past ``max_attempts`` in the terminal status, with ``values(attempts)``."""
        status = {self.table.status.key: self.table.exhausted}
        by_attempts = itertools.groupby(
            sorted(rows, key=lambda c: c.attempts), key=lambda c: c.attempts
        )
        for attempts, group in by_attempts:
            await self._settle(session, list(group), {**values(attempts), **status}, now)

    async def _settle(
        self,
        session: AsyncSession,
        rows: list[Candidate],
        values: dict[str, Any],
        now: datetime,
    ) -> None:
        t = self.table
        await session.execute(
            update(t.model)
            .where(t.id.in_([c.id for c in rows]), self.claimable(now))
            .values(values)
            .execution_options(synchronize_session=False)
        )

    async def _take(
        self, session: AsyncSession, rows: list[Candidate], owner: str | None, now: datetime
    ) -> list[tuple[Held, Candidate]]:
        t = self.table
        values: dict[str, Any] = {
            t.status.key: t.held,
            t.attempts.key: t.attempts + 1,
            t.stamp.key: self.stamp(now),
        }
        if (owner_column := t.owner) is not None:
            values[owner_column.key] = owner
        taken = dict(
            (
                await session.execute(
                    update(t.model)
                    .where(t.id.in_([c.id for c in rows]), self.claimable(now))
                    .values(values)
                    .returning(t.id, t.attempts)
                    .execution_options(synchronize_session=False)
                )
            )
            .tuples()
            .all()
        )
        return [(Held(c.id, taken[c.id]), c) for c in rows if c.id in taken]

    def _holding(
        self, held: Iterable[Held], owner: str | None, *, held_only: bool = True
    ) -> list[ColumnElement[bool]]:
        """The claims' rows, while no later claim took them (and, with ``owner``, while this
        owner holds them; with ``held_only``, while their status still says held)."""
        t = self.table
        pairs = [(h.id, h.attempt) for h in held]
        fence: list[ColumnElement[bool]] = [tuple_(t.id, t.attempts).in_(pairs)]
        if held_only:
            fence.append(t.status == t.held)
        if (owner_column := t.owner) is not None and owner is not None:
            fence.append(owner_column == owner)
        return fence

    async def renew(
        self,
        session: AsyncSession,
        held: Iterable[Held],
        *,
        owner: str | None = None,
        held_only: bool = True,
    ) -> set[Any]:
        """Extend the leases these claims still hold. Does not commit.

        Args:
            session: The session to write in; the caller commits.
            held: The claims.
            owner: Renew only rows this owner holds (tables that record an owner).
            held_only: Renew only rows whose status still says held; without it, a row that
                recorded its outcome while its holder is still finishing keeps its lease too.

        Returns:
            The ids renewed; a lease missing from it was taken over (or ended) meanwhile.
        """
        held = list(held)
        if not held:
            return set()
        t = self.table
        renewed = await session.scalars(
            update(t.model)
            .where(*self._holding(held, owner, held_only=held_only))
            .values({t.stamp.key: self.stamp(utcnow())})
            .returning(t.id)
            .execution_options(synchronize_session=False)
        )
        return set(renewed.all())

    async def end(
        self,
        session: AsyncSession,
        held: Held,
        values: Mapping[str, Any],
        *,
        owner: str | None = None,
    ) -> bool:
        """Update a row with ``values`` while this claim still holds it. Does not commit.

        Returns:
            Whether the claim still held the row (and it was updated).
        """
        t = self.table
        ended = await session.scalars(
            update(t.model)
            .where(*self._holding([held], owner))
            .values(dict(values))
            .returning(t.id)
            .execution_options(synchronize_session=False)
        )
        return ended.first() is not None

    async def lapse(self, session: AsyncSession, held: Held, *, owner: str | None = None) -> bool:
        """End this claim's lease now, so the next claim (any claimant's) takes the row at
        once; it stays held, so that claim counts an attempt. Does not commit.

        Returns:
            Whether the claim still held the row.
        """
        now = utcnow()
        stamp = now - timedelta(microseconds=1)
        if not self.table.stamp_is_expiry:
            stamp -= self.duration
        return await self.end(session, held, {self.table.stamp.key: stamp}, owner=owner)
