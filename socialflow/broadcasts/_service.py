"""Broadcasts of a workspace: create, preview, send now or at a time, cancel, delete, and
read their progress and recipients. Every id is looked up within the caller's workspace."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.broadcasts._flow import cancel_run, schedule_run
from socialflow.broadcasts._models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
)
from socialflow.broadcasts._schemas import BroadcastFields
from socialflow.broadcasts._segment import (
    ELIGIBLE,
    REASONS,
    Segment,
    count_by_reason,
    segment_conditions,
)
from socialflow.contacts import Contact
from socialflow.core.db import utcnow
from socialflow.core.errors import ConflictError, NotFoundError
from socialflow.instagram import InstagramAccount

__all__ = [
    "Preview",
    "Progress",
    "cancel",
    "create",
    "delete",
    "get",
    "list_broadcasts",
    "preview",
    "progress",
    "recipients",
    "send",
]


class Preview(BaseModel):
    """How many contacts of a segment a broadcast would reach now, and why not the others."""

    total: int = Field(description="Contacts in the segment.")
    eligible: int = Field(description="Inside Meta's 24-hour window and not opted out.")
    skipped: dict[str, int] = Field(description="Contacts not messaged, per reason.")
    reasons: dict[str, str] = Field(description="What each reason means.")


class Progress(BaseModel):
    """Where a broadcast's send stands."""

    total: int | None = Field(description="Contacts in the segment when the send started.")
    handled: int
    sent: int
    failed: int
    skipped: dict[str, int] = Field(description="Recipients skipped, per reason.")
    failures: dict[str, int] = Field(description="Recipients failed, per error code.")


async def _account(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID
) -> InstagramAccount:
    account = await session.get(InstagramAccount, account_id)
    if account is None or account.workspace_id != workspace_id:
        msg = f"field 'account_id': no Instagram account {account_id} in this workspace"
        raise NotFoundError(msg, code="account_not_found")
    return account


async def get(session: AsyncSession, workspace_id: uuid.UUID, broadcast_id: uuid.UUID) -> Broadcast:
    """The broadcast, or ``broadcast_not_found`` (another workspace's is not found too)."""
    row = await session.get(Broadcast, broadcast_id)
    if row is None or row.workspace_id != workspace_id:
        msg = f"no broadcast {broadcast_id} in this workspace"
        raise NotFoundError(msg, code="broadcast_not_found")
    return row


async def list_broadcasts(
    session: AsyncSession, workspace_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[Broadcast], int]:
    """The workspace's broadcasts, newest first, and how many there are."""
    where = Broadcast.workspace_id == workspace_id
    total = await session.scalar(select(func.count()).select_from(Broadcast).where(where))
    rows = await session.scalars(
        select(Broadcast)
        .where(where)
        .order_by(Broadcast.created_at.desc(), Broadcast.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), int(total or 0)


async def create(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    fields: BroadcastFields,
    *,
    user_id: uuid.UUID | None,
) -> Broadcast:
    """A draft broadcast; the account must be the workspace's."""
    await _account(session, workspace_id, fields.account_id)
    row = Broadcast(
        workspace_id=workspace_id,
        account_id=fields.account_id,
        name=fields.name,
        text=fields.text,
        quick_replies=[q.model_dump() for q in fields.quick_replies],
        buttons=[b.model_dump(exclude_none=True) for b in fields.buttons],
        segment=fields.segment.model_dump(mode="json"),
        status=BroadcastStatus.DRAFT,
        created_by=user_id,
    )
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return row


async def preview(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID, segment: Segment
) -> Preview:
    """Count the segment's contacts per verdict now, in one SQL query (none is loaded)."""
    account = await _account(session, workspace_id, account_id)
    where = segment_conditions(workspace_id, account.ig_user_id, segment)
    counts = await count_by_reason(session, where, utcnow())
    eligible = counts.pop(ELIGIBLE, 0)
    skipped = {reason: counts.get(reason, 0) for reason in REASONS}
    return Preview(
        total=eligible + sum(skipped.values()),
        eligible=eligible,
        skipped=skipped,
        reasons=dict(REASONS),
    )


async def send(session: AsyncSession, row: Broadcast, at: datetime | None) -> Broadcast:
    """Send a draft broadcast now or at ``at``: one Prefect run, scheduled at that time.

    Raises:
        ConflictError: It is not a draft (already scheduled, sent or cancelled).
    """
    if row.status != BroadcastStatus.DRAFT:
        msg = f"broadcast is {row.status}; only a draft can be sent"
        raise ConflictError(msg, code="broadcast_not_draft")
    when = max(at, utcnow()) if at is not None else utcnow()
    row.status = BroadcastStatus.SCHEDULED
    row.scheduled_at = when
    await session.commit()
    try:
        run_id = await schedule_run(row.id, row.workspace_id, row.name, when)
    except Exception:
        # Prefect unreachable: the broadcast stays a draft, to be sent again
        row.status, row.scheduled_at = BroadcastStatus.DRAFT, None
        await session.commit()
        raise
    row.prefect_flow_run_id = run_id
    await session.commit()
    await session.refresh(row)
    return row


async def cancel(session: AsyncSession, row: Broadcast) -> Broadcast:
    """Stop a scheduled or sending broadcast; a sender stops before its next page.

    Raises:
        ConflictError: It already ended.
    """
    if row.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
        msg = f"broadcast is {row.status}; only a scheduled or sending one can be cancelled"
        raise ConflictError(msg, code="broadcast_not_running")
    row.status = BroadcastStatus.CANCELLED
    row.finished_at = utcnow()
    await session.commit()
    await cancel_run(row.prefect_flow_run_id)
    await session.refresh(row)
    return row


async def delete(session: AsyncSession, row: Broadcast) -> None:
    """Delete a broadcast that is not sending, with its recipients' record.

    Raises:
        ConflictError: It is sending right now (cancel it first).
    """
    if row.status in (BroadcastStatus.SENDING, BroadcastStatus.SCHEDULED):
        msg = f"broadcast is {row.status}; cancel it before deleting it"
        raise ConflictError(msg, code="broadcast_running")
    await session.delete(row)
    await session.commit()


async def progress(session: AsyncSession, row: Broadcast) -> Progress:
    """Counts of the recipients handled so far, per status and reason (one query)."""
    counts = await session.execute(
        select(BroadcastRecipient.status, BroadcastRecipient.reason, func.count())
        .where(BroadcastRecipient.broadcast_id == row.id)
        .group_by(BroadcastRecipient.status, BroadcastRecipient.reason)
    )
    sent = failed = 0
    skipped: dict[str, int] = {}
    failures: dict[str, int] = {}
    for status, reason, n in counts.tuples():
        if status == RecipientStatus.SENT:
            sent += n
        elif status == RecipientStatus.SKIPPED:
            skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + n
        else:
            failed += n
            failures[reason or "unknown"] = failures.get(reason or "unknown", 0) + n
    return Progress(
        total=row.total,
        handled=sent + failed + sum(skipped.values()),
        sent=sent,
        failed=failed,
        skipped=skipped,
        failures=failures,
    )


async def recipients(
    session: AsyncSession,
    row: Broadcast,
    *,
    status: str | None,
    reason: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A page of the broadcast's recipients (by contact id, after ``after``), each with the
    contact's username and what became of them."""
    query = (
        select(BroadcastRecipient, Contact.username, Contact.igsid)
        .outerjoin(Contact, Contact.id == BroadcastRecipient.contact_id)
        .where(BroadcastRecipient.broadcast_id == row.id)
    )
    if status is not None:
        query = query.where(BroadcastRecipient.status == status)
    if reason is not None:
        query = query.where(BroadcastRecipient.reason == reason)
    if after is not None:
        query = query.where(BroadcastRecipient.contact_id > after)
    found = await session.execute(query.order_by(BroadcastRecipient.contact_id).limit(limit))
    return [
        {
            "contact_id": r.contact_id,
            "username": username,
            "igsid": igsid,
            "status": r.status,
            "reason": r.reason,
            "detail": r.detail,
            "ledger_id": r.ledger_id,
            "at": r.at,
        }
        for r, username, igsid in found.tuples()
    ]
