"""Per-account pacing: the earliest send time that keeps an account within Meta's limits.

Slots are computed from the ledger itself, so every process sees the same queue; what must not
interleave is two processes reading the same last slots and each taking the next one. On
PostgreSQL a transaction-scoped advisory lock per account serialises that across processes (and
replicas); on SQLite a no-op write to the account's row takes the database's single write lock
before anything is read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import String, Uuid, column, select, table, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.settings import InstagramSettings
from socialflow.instagram._models import InstagramAccount, OutboxMessage, OutboxStatus

__all__ = ["hold_account", "limit_for", "next_slot"]

_PACED = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT)
#: the runs' table, named rather than imported (orchestration imports this package)
_EXECUTION = table("flow_execution", column("id", Uuid()), column("status", String()))
_locks: dict[tuple[int, uuid.UUID], asyncio.Lock] = {}


def account_lock(account_id: uuid.UUID) -> asyncio.Lock:
    """The lock that serialises slot assignment for one account in this process."""
    key = (id(asyncio.get_running_loop()), account_id)  # a lock serves one event loop
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    return lock


def advisory_key(account_id: uuid.UUID) -> int:
    """A signed 64-bit advisory lock key for an account (its uuid's first 8 bytes)."""
    return int.from_bytes(account_id.bytes[:8], "big", signed=True)


@asynccontextmanager
async def hold_account(session: AsyncSession, account_id: uuid.UUID) -> AsyncIterator[None]:
    """Serialise one account's policy checks and slot assignment, in this process and (on
    PostgreSQL) across processes until ``session``'s transaction ends.

    The process-local lock keeps this process's tasks from queueing on the database lock.
    """
    async with account_lock(account_id):
        bind = session.bind
        if bind is not None and bind.dialect.name == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_key(account_id)}
            )
        else:
            await session.execute(
                update(InstagramAccount)
                .where(InstagramAccount.id == account_id)
                .values(id=InstagramAccount.id)
                .execution_options(synchronize_session=False)
            )
        yield


def limit_for(action: str, settings: InstagramSettings) -> tuple[tuple[str, ...], int, float]:
    """The actions sharing a limit with ``action``, the limit and its window in seconds."""
    if action == "private_reply":
        return (
            ("private_reply",),
            settings.private_reply_limit,
            settings.private_reply_window_seconds,
        )
    return ("send_dm", "reply_comment"), settings.send_limit, settings.send_window_seconds


async def next_slot(
    session: AsyncSession,
    account_id: uuid.UUID,
    action: str,
    settings: InstagramSettings,
    now: datetime,
) -> datetime:
    """The earliest time a new ``action`` of the account may be sent.

    A sliding window: when the last ``limit`` sends of the same class already sit within one
    window, the new one goes one window after the oldest of them. Slots only move forward, so
    queued sends go out in the order they were queued.

    Args:
        session: An open session.
        account_id: The account's row id.
        action: The action being queued.
        settings: Limits and windows.
        now: The current time.

    Returns:
        ``now`` or a later time.
    """
    actions, limit, window = limit_for(action, settings)
    # a queued send whose run has ended (failed, cancelled, crashed: it gave up waiting for
    # its slot) is abandoned: it must not hold a slot and push every later send back
    ended = (
        select(_EXECUTION.c.id)
        .where(
            _EXECUTION.c.id == OutboxMessage.execution_id,
            _EXECUTION.c.status.not_in(("queued", "running")),
        )
        .exists()
    )
    rows = await session.scalars(
        select(OutboxMessage.scheduled_for)
        .where(
            OutboxMessage.account_id == account_id,
            OutboxMessage.action.in_(actions),
            OutboxMessage.status.in_(_PACED),
            OutboxMessage.scheduled_for.is_not(None),
            ~((OutboxMessage.status == OutboxStatus.QUEUED) & ended),
        )
        .order_by(OutboxMessage.scheduled_for.desc())
        .limit(limit)
    )
    recent = [t for t in rows.all() if t is not None]
    if len(recent) < limit:
        return max([now, *recent[:1]])
    return max(now, recent[-1] + timedelta(seconds=window), recent[0])
