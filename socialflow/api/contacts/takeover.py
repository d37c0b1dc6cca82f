"""Human takeover of a contact's conversation (live chat): take over, release."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.contacts import service
from socialflow.api.contacts.schemas import ContactDetail, TakeoverRequest
from socialflow.contacts import release, take_over

__all__ = ["release_contact", "take_over_contact"]


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
