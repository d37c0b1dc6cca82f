"""Live chat basics: a person takes a contact's conversation over, releases it, and replies
from the app through the send ledger."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.contacts import service
from socialflow.api.contacts.schemas import (
    ContactDetail,
    LiveReply,
    LiveReplyResult,
    TakeoverRequest,
)
from socialflow.contacts import release, take_over
from socialflow.core.credentials import key_wrapper
from socialflow.core.db import Database
from socialflow.core.settings import Settings
from socialflow.instagram import ActionRequest, InstagramGateway

__all__ = ["release_contact", "reply", "take_over_contact"]


async def take_over_contact(
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    body: TakeoverRequest,
    *,
    session: AsyncSession,
) -> ContactDetail:
    """Pause the flows for one contact, for ``body.minutes`` or until released.

    Raises:
        NotFoundError: No such contact in this workspace (``contact_not_found``).
    """
    row = await service.get_row(session, workspace_id, contact_id)
    take_over(row, body.minutes)
    await session.commit()
    return await service.get_contact(workspace_id, contact_id, session=session)


async def release_contact(
    workspace_id: uuid.UUID, contact_id: uuid.UUID, *, session: AsyncSession
) -> ContactDetail:
    """Give a contact back to the flows (nothing changes when none took it over).

    Raises:
        NotFoundError: No such contact in this workspace (``contact_not_found``).
    """
    row = await service.get_row(session, workspace_id, contact_id)
    release(row)
    await session.commit()
    return await service.get_contact(workspace_id, contact_id, session=session)


async def reply(
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    body: LiveReply,
    *,
    settings: Settings,
    db: Database,
    session: AsyncSession,
) -> LiveReplyResult:
    """Send a contact a DM from the app through the send ledger: Meta's 24-hour window (or
    HUMAN_AGENT's 7 days) decides, the account's sandbox mode holds, and a repeated
    ``client_id`` sends once.

    Raises:
        NotFoundError: No such contact in this workspace (``contact_not_found``).
    """
    row = await service.get_row(session, workspace_id, contact_id)
    gateway = InstagramGateway(
        db,
        key_wrapper(settings),
        settings.instagram,
        None,
        workspace_id=workspace_id,
        flow_id=None,
        flow_version_id=None,
        execution_id=body.client_id,
        sandbox=False,
    )
    result = await gateway.perform(
        ActionRequest(
            action="send_dm",
            node_id="live_chat",
            account=row.account_id,
            target=row.igsid,
            text=body.text,
            last_user_message_at=row.last_inbound_at,
            human_agent=body.human_agent,
            occurrence=f"live:{body.client_id}",
        )
    )
    return LiveReplyResult(
        status=result.status,
        ledger_id=result.ledger_id,
        duplicate=result.duplicate,
        policy_reason=result.policy_reason,
    )
