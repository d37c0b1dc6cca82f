"""Creating and updating contacts from inbox events: one statement per batch, on any database.

The dispatcher hands over each batch of Instagram events it claimed. Every event that names a
person (a comment's author, a message's or postback's sender) is a *sighting*; sightings of
one contact in the batch are merged first (PostgreSQL refuses to update one row twice in one
statement), then one ``INSERT … ON CONFLICT DO UPDATE`` creates the missing contacts and moves
the others' first/last seen and last inbound times, whatever order the events come in and
however many dispatchers write at once: the database's unique key decides, not a read before
the write. A second statement links each event to its contacts for the timeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.contacts._models import Contact, ContactEvent, ContactSource, contact_id
from socialflow.core.db import utcnow

__all__ = ["EventRef", "Sighting", "record_sightings", "sighting"]

_MAX_ID = 64
#: message events that open the 24-hour window: the person wrote, tapped or came from a link
_INBOUND = ("dm", "postback", "referral")


@dataclass(frozen=True, slots=True)
class EventRef:
    """An inbox event as contacts need it: its id, account and normalised payload."""

    id: uuid.UUID
    account_id: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Sighting:
    """A person seen in one event."""

    event_id: uuid.UUID
    account_id: str
    igsid: str
    username: str | None
    source: ContactSource
    at: datetime
    inbound: bool


def _source(kind: str, payload: Mapping[str, Any]) -> ContactSource:
    if kind in ("comment", "live_comment"):
        if payload.get("ad_id"):
            return ContactSource.AD
        return ContactSource.LIVE_COMMENT if kind == "live_comment" else ContactSource.COMMENT
    if kind == "postback":
        return ContactSource.POSTBACK
    if kind == "referral":
        ad = payload.get("ad_id") or str(payload.get("source") or "").upper() == "ADS"
        return ContactSource.AD if ad else ContactSource.REFERRAL
    referral = payload.get("referral")
    if isinstance(referral, Mapping) and (
        referral.get("ad_id") or str(referral.get("source") or "").upper() == "ADS"
    ):
        return ContactSource.AD
    if payload.get("is_story_reply"):
        return ContactSource.STORY_REPLY
    if payload.get("is_story_mention"):
        return ContactSource.STORY_MENTION
    return ContactSource.DM


def _when(payload: Mapping[str, Any], now: datetime) -> datetime:
    raw = payload.get("occurred_at")
    try:
        at = datetime.fromisoformat(raw) if isinstance(raw, str) else now
    except ValueError:
        at = now
    if at.tzinfo is None:
        return now
    # a clock ahead of ours must not keep a window open into the future
    return min(at, now)


def sighting(event: EventRef, *, now: datetime | None = None) -> Sighting | None:
    """The person ``event`` shows, or None (the account's own events, dashboard tests, events
    that name nobody: seen receipts, unsends, caption mentions)."""
    payload = event.payload
    kind = str(payload.get("kind") or "")
    if payload.get("is_self") or payload.get("is_test"):
        return None
    if kind in ("comment", "live_comment"):
        igsid, username = payload.get("from_id"), payload.get("from_username")
    elif kind in ("dm", "postback", "referral", "reaction", "edit"):
        igsid, username = payload.get("sender_id"), None
    else:
        return None
    if not isinstance(igsid, str) or not igsid or len(igsid) > _MAX_ID:
        return None
    if igsid == event.account_id:
        return None
    name = username[:100] if isinstance(username, str) and username else None
    return Sighting(
        event_id=event.id,
        account_id=event.account_id,
        igsid=igsid,
        username=name,
        source=_source(kind, payload),
        at=_when(payload, now or utcnow()),
        inbound=kind in _INBOUND,
    )


def _merge(
    sightings: Iterable[Sighting], owners: Mapping[str, Iterable[uuid.UUID]], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: dict[tuple[uuid.UUID, str, str], dict[str, Any]] = {}
    links: list[dict[str, Any]] = []
    for seen in sightings:
        for workspace_id in owners.get(seen.account_id, ()):
            key = (workspace_id, seen.account_id, seen.igsid)
            cid = contact_id(*key)
            links.append({"contact_id": cid, "event_id": seen.event_id, "occurred_at": seen.at})
            inbound = seen.at if seen.inbound else None
            row = rows.get(key)
            if row is None:
                rows[key] = {
                    "id": cid,
                    "workspace_id": workspace_id,
                    "account_id": seen.account_id,
                    "igsid": seen.igsid,
                    "username": seen.username,
                    "source": seen.source.value,
                    "first_seen_at": seen.at,
                    "last_seen_at": seen.at,
                    "last_inbound_at": inbound,
                    "opted_out": False,
                    "created_at": now,
                    "updated_at": now,
                }
                continue
            if seen.at < row["first_seen_at"]:
                row["first_seen_at"], row["source"] = seen.at, seen.source.value
            if seen.at >= row["last_seen_at"]:
                row["last_seen_at"] = seen.at
                row["username"] = seen.username or row["username"]
            if inbound and (row["last_inbound_at"] is None or inbound > row["last_inbound_at"]):
                row["last_inbound_at"] = inbound
    # one order for every writer: two batches never wait on each other's rows crosswise
    return [rows[k] for k in sorted(rows, key=lambda k: (str(k[0]), k[1], k[2]))], links


async def record_sightings(
    session: AsyncSession,
    events: Iterable[EventRef],
    owners: Mapping[str, Iterable[uuid.UUID]],
) -> list[uuid.UUID]:
    """Create or update the contacts ``events`` show, for every workspace that connected the
    event's account, and link the events to them, in the caller's transaction.

    Args:
        session: The dispatcher's session.
        events: Instagram inbox events.
        owners: Per account id, the workspaces that connected it.

    Returns:
        The ids of the contacts written that messaged the account in these events (their
        profile may be read now: the person gave consent by writing).
    """
    now = utcnow()
    found = [s for s in (sighting(e, now=now) for e in events) if s is not None]
    rows, links = _merge(found, owners, now)
    if not rows:
        return []
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = pg_insert if postgres else sqlite_insert
    later = func.greatest if postgres else func.max
    earlier = func.least if postgres else func.min
    statement = insert(Contact).values(rows)
    new, old = statement.excluded, Contact.__table__.c
    statement = statement.on_conflict_do_update(
        index_elements=["workspace_id", "account_id", "igsid"],
        set_={
            "username": case(
                (new.last_seen_at >= old.last_seen_at, func.coalesce(new.username, old.username)),
                else_=func.coalesce(old.username, new.username),
            ),
            "source": case((new.first_seen_at < old.first_seen_at, new.source), else_=old.source),
            "first_seen_at": earlier(old.first_seen_at, new.first_seen_at),
            "last_seen_at": later(old.last_seen_at, new.last_seen_at),
            "last_inbound_at": case(
                (new.last_inbound_at.is_(None), old.last_inbound_at),
                (old.last_inbound_at.is_(None), new.last_inbound_at),
                else_=later(old.last_inbound_at, new.last_inbound_at),
            ),
            "updated_at": new.updated_at,
        },
    )
    await session.execute(statement)
    await session.execute(
        insert(ContactEvent)
        .values(links)
        .on_conflict_do_nothing(index_elements=["contact_id", "event_id"])
    )
    return [row["id"] for row in rows if row["last_inbound_at"] is not None]
