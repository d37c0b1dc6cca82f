"""Storing trigger events durably and idempotently, and waking whoever waits for them.

An event is stored with ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``: a redelivered event
is acknowledged as a duplicate and never stored or run twice, even when two API replicas
receive it at the same moment. On PostgreSQL the same transaction sends a NOTIFY, delivered at
commit, so a dispatcher wakes within milliseconds; on SQLite dispatchers poll.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.orchestration._inbox_models import EventStatus, WebhookEvent

__all__ = ["INBOX_CHANNEL", "QUEUE_CHANNEL", "EventIn", "StoredEvent", "notify", "store_events"]

INBOX_CHANNEL = "socialflow_inbox"
QUEUE_CHANNEL = "socialflow_queue"


@dataclass(frozen=True)
class EventIn:
    """An event to store: where it came from, what it is, and the key that identifies it."""

    source: str
    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    workspace_id: uuid.UUID | None = None
    flow_id: uuid.UUID | None = None
    account_id: str | None = None
    raw_body: bytes | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    status: str = EventStatus.PENDING
    #: the conversation whose events run in order, when it happened and its place in the body
    conversation_key: str | None = None
    conversation_at: datetime | None = None
    conversation_seq: int | None = None


@dataclass(frozen=True)
class StoredEvent:
    """The id of a stored event, and whether it had been stored before."""

    id: uuid.UUID
    duplicate: bool


async def store_events(session: AsyncSession, events: list[EventIn]) -> list[StoredEvent]:
    """Store ``events`` in one transaction and commit; duplicates are reported, not stored.

    Returns:
        One result per event, in order.
    """
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    results: list[StoredEvent] = []
    for event in events:
        new_id = uuid.uuid4()
        statement = (
            insert(WebhookEvent)
            .values(
                id=new_id,
                source=event.source,
                kind=event.kind,
                dedupe_key=event.dedupe_key,
                payload=event.payload,
                workspace_id=event.workspace_id,
                flow_id=event.flow_id,
                account_id=event.account_id,
                raw_body=event.raw_body,
                headers=event.headers,
                status=event.status,
                conversation_key=event.conversation_key,
                conversation_at=event.conversation_at,
                conversation_seq=event.conversation_seq,
            )
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(WebhookEvent.id)
        )
        stored = await session.scalar(statement)
        if stored is None:
            existing = await session.scalar(
                select(WebhookEvent.id).where(WebhookEvent.dedupe_key == event.dedupe_key)
            )
            results.append(StoredEvent(id=existing or new_id, duplicate=True))
        else:
            results.append(StoredEvent(id=stored, duplicate=False))
    if any(not r.duplicate for r in results):
        await notify(session, INBOX_CHANNEL)
    await session.commit()
    return results


async def notify(session: AsyncSession, channel: str, payload: str = "") -> None:
    """Wake listeners of ``channel`` when the current transaction commits (PostgreSQL only)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
        )
