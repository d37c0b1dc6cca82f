"""Per-account pacing: the earliest send time that keeps an account within Meta's limits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.settings import InstagramSettings
from socialflow.instagram._models import OutboxMessage, OutboxStatus

__all__ = ["account_lock", "limit_for", "next_slot"]

_PACED = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT)
_locks: dict[tuple[int, uuid.UUID], asyncio.Lock] = {}


def account_lock(account_id: uuid.UUID) -> asyncio.Lock:
    """The lock that serialises slot assignment for one account in this process."""
    key = (id(asyncio.get_running_loop()), account_id)  # a lock serves one event loop
    lock = _locks.get(key)
    if lock is None:
        lock = _locks[key] = asyncio.Lock()
    return lock


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
    rows = await session.scalars(
        select(OutboxMessage.scheduled_for)
        .where(
            OutboxMessage.account_id == account_id,
            OutboxMessage.action.in_(actions),
            OutboxMessage.status.in_(_PACED),
            OutboxMessage.scheduled_for.is_not(None),
        )
        .order_by(OutboxMessage.scheduled_for.desc())
        .limit(limit)
    )
    recent = [t for t in rows.all() if t is not None]
    if len(recent) < limit:
        return max([now, *recent[:1]])
    return max(now, recent[-1] + timedelta(seconds=window), recent[0])
