"""Human takeover: a person of the workspace answers a contact, and flows leave them alone.

Written by the API (take over for some minutes or until released; release), read by the
dispatcher for each batch (``taken_over``): an event from a contact taken over starts no run
of that workspace's flows (``human_takeover`` in the event log) and answers none of its
waiting runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.contacts._models import Contact
from socialflow.core.db import utcnow

__all__ = ["MAX_TAKEOVER_MINUTES", "is_taken_over", "release", "take_over", "taken_over"]

#: a takeover for a chosen time lasts at most 30 days
MAX_TAKEOVER_MINUTES = 30 * 24 * 60


def is_taken_over(contact: Contact, now: datetime | None = None) -> bool:
    """Whether flows skip ``contact`` at ``now``."""
    if contact.takeover_at is None:
        return False
    return contact.takeover_until is None or contact.takeover_until > (now or utcnow())


def take_over(contact: Contact, minutes: int | None, now: datetime | None = None) -> None:
    """Pause automation for ``contact`` for ``minutes`` (None: until released)."""
    start = now or utcnow()
    contact.takeover_at = start
    contact.takeover_until = start + timedelta(minutes=minutes) if minutes else None


def release(contact: Contact) -> None:
    """Give ``contact`` back to the flows."""
    contact.takeover_at = None
    contact.takeover_until = None


async def taken_over(session: AsyncSession, contact_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of ``contact_ids`` are taken over now."""
    ids = sorted(set(contact_ids))
    if not ids:
        return set()
    rows = await session.scalars(
        select(Contact.id).where(
            Contact.id.in_(ids),
            Contact.takeover_at.is_not(None),
            or_(Contact.takeover_until.is_(None), Contact.takeover_until > utcnow()),
        )
    )
    return set(rows.all())
