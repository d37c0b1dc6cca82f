"""Erasing a contact: their row, tags and field values go; what they wrote and what was sent to
them is replaced by ``[erased]`` in stored events, runs and the send ledger.

The rows of those events, runs and ledger entries are kept, without personal data: they are
what counts runs and sends against the workspace's usage and Meta's limits (and a ledger key
still stops a resumed run from sending twice). Only structural fields survive in a scrubbed
payload (its kind, the account, the time); every other text becomes ``[erased]``. The report
says how many rows of each were scrubbed and kept.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.contacts.schemas import EraseReport
from socialflow.api.contacts.service import get_row
from socialflow.contacts import ContactEvent, ContactFieldValue, ContactTagLink
from socialflow.instagram import InstagramAccount, OutboxMessage
from socialflow.orchestration import FlowExecution, NodeRun, WebhookEvent

__all__ = ["ERASED", "erase_contact", "scrub"]

ERASED = "[erased]"
#: fields a scrubbed payload keeps: what it was and when, never who or what they said
_KEEP = frozenset(
    {"kind", "account_id", "occurred_at", "field", "media_product_type", "is_self", "is_test"}
)
_CHUNK = 500


def scrub(value: Any, *, key: str | None = None) -> Any:
    """``value`` with every text replaced by ``[erased]``, except the structural fields."""
    if isinstance(value, dict):
        return {k: scrub(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return value if key in _KEEP else ERASED
    return value


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def erase_contact(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, *, session: AsyncSession
) -> EraseReport:
    """Erase one contact's personal data, in one transaction.

    Raises:
        NotFoundError: No such contact in the workspace.
    """
    contact = await get_row(session, workspace_id, contact_id)
    event_ids = list(
        (
            await session.scalars(
                select(ContactEvent.event_id).where(ContactEvent.contact_id == contact.id)
            )
        ).all()
    )
    events = runs = 0
    run_ids: list[uuid.UUID] = []
    for start in range(0, len(event_ids), _CHUNK):
        chunk = event_ids[start : start + _CHUNK]
        for event in (
            await session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(chunk)))
        ).all():
            event.payload = scrub(event.payload)
            event.raw_body = None
            event.last_error = None
            events += 1
        for execution in (
            await session.scalars(
                select(FlowExecution).where(
                    FlowExecution.workspace_id == workspace_id,
                    FlowExecution.trigger_event_id.in_(chunk),
                )
            )
        ).all():
            execution.trigger_payload = scrub(execution.trigger_payload)
            execution.error = ERASED if execution.error else None
            run_ids.append(execution.id)
            runs += 1
    for start in range(0, len(run_ids), _CHUNK):
        await session.execute(
            update(NodeRun)
            .where(NodeRun.execution_id.in_(run_ids[start : start + _CHUNK]))
            .values(input=ERASED, output=ERASED, error=None)
            .execution_options(synchronize_session=False)
        )
    messages = await _scrub_ledger(
        session, workspace_id, contact.account_id, contact.igsid, run_ids
    )
    values = await _count(session, ContactFieldValue, ContactFieldValue.contact_id == contact.id)
    tags = await _count(session, ContactTagLink, ContactTagLink.contact_id == contact.id)
    await session.delete(contact)  # its tags, values and event links go with it (cascade)
    await session.commit()
    return EraseReport(
        contact_id=contact_id,
        erased=True,
        field_values_deleted=values,
        tags_removed=tags,
        events_scrubbed=events,
        runs_scrubbed=runs,
        messages_scrubbed=messages,
        kept={"events": events, "runs": runs, "messages": messages},
    )


async def _scrub_ledger(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    account_id: str,
    igsid: str,
    run_ids: list[uuid.UUID],
) -> int:
    accounts = select(InstagramAccount.id).where(
        InstagramAccount.workspace_id == workspace_id, InstagramAccount.ig_user_id == account_id
    )
    theirs = and_(OutboxMessage.account_id.in_(accounts), OutboxMessage.target == igsid)
    scrubbed = 0
    for start in range(0, max(len(run_ids), 1), _CHUNK):
        chunk = run_ids[start : start + _CHUNK]
        which = or_(theirs, OutboxMessage.execution_id.in_(chunk)) if chunk else theirs
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.workspace_id == workspace_id, which)
        )
        for row in rows.all():
            if row.target == ERASED:
                continue
            row.payload = scrub(row.payload)
            row.response = scrub(row.response) if row.response is not None else None
            row.target = ERASED
            row.error_message = ERASED if row.error_message else None
            row.policy_reason = ERASED if row.policy_reason else None
            scrubbed += 1
    return scrubbed
