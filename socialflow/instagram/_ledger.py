"""The send ledger (``outbox_message``): claim an action by its idempotency key, then record
how it ended."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.db import utcnow
from socialflow.instagram._models import OutboxMessage, OutboxStatus

__all__ = ["claim", "idempotency_key", "list_query", "prior_private_reply"]

#: statuses that mean Meta has, or may have, the action
_LIVE = (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.SENT)


def idempotency_key(*parts: object) -> str:
    """A stable key over (account, target, action, flow version, node, …)."""
    joined = "\x1f".join("" if p is None else str(p) for p in parts)
    return "ig:" + hashlib.sha256(joined.encode()).hexdigest()


async def claim(session: AsyncSession, values: dict[str, Any]) -> tuple[OutboxMessage, bool]:
    """Insert a ledger row unless one with the same key exists.

    Args:
        session: An open session; committed here.
        values: Column values, ``idempotency_key`` included.

    Returns:
        The row and whether this call created it.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    row_id = uuid.uuid4()
    statement = (
        insert(OutboxMessage)
        .values(id=row_id, created_at=now, updated_at=now, attempts=0, **values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    await session.execute(statement)
    await session.commit()
    row = await session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.idempotency_key == values["idempotency_key"])
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row, row.id == row_id


async def prior_private_reply(
    session: AsyncSession, account_id: uuid.UUID, comment_id: str, key: str, *, sandbox: bool
) -> OutboxMessage | None:
    """Another private reply to the same comment from this account, if the ledger has one.

    In sandbox mode sandboxed rows count too, so a rehearsal meets the rule Meta would apply.
    """
    statuses = [*_LIVE, OutboxStatus.SANDBOXED] if sandbox else list(_LIVE)
    row: OutboxMessage | None = await session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.account_id == account_id,
            OutboxMessage.action == "private_reply",
            OutboxMessage.target == comment_id,
            OutboxMessage.status.in_(statuses),
            OutboxMessage.idempotency_key != key,
        )
        .limit(1)
    )
    return row


def list_query(
    workspace_id: uuid.UUID,
    *,
    account_id: uuid.UUID | None = None,
    flow_id: uuid.UUID | None = None,
    execution_id: uuid.UUID | None = None,
    status: str | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> Select[tuple[OutboxMessage]]:
    """Ledger rows of a workspace, newest first, filtered.

    Args:
        workspace_id: The workspace.
        account_id: Only this account's rows.
        flow_id: Only this flow's rows.
        execution_id: Only the rows one run wrote.
        status: Only rows in this status.
        before: Only rows created before this time (paging).
        limit: Most rows returned.
    """
    query = select(OutboxMessage).where(OutboxMessage.workspace_id == workspace_id)
    if account_id is not None:
        query = query.where(OutboxMessage.account_id == account_id)
    if flow_id is not None:
        query = query.where(OutboxMessage.flow_id == flow_id)
    if execution_id is not None:
        query = query.where(OutboxMessage.execution_id == execution_id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if before is not None:
        query = query.where(OutboxMessage.created_at < before)
    return query.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id).limit(limit)
