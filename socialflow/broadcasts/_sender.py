"""The sender of one broadcast: its segment read in keyset pages, each recipient checked
against Meta's rules at send time and sent through the Instagram ledger, resumable."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from socialflow.broadcasts._models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
)
from socialflow.broadcasts._segment import (
    ELIGIBLE,
    REASONS,
    Segment,
    reason_of,
    segment_conditions,
)
from socialflow.contacts import Contact
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.errors import TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.instagram import ActionRequest, InstagramAccount, InstagramGateway

__all__ = ["PAGE_SIZE", "BroadcastContext", "Outcome", "Sender"]

_log = get_logger(__name__)

#: contacts read per page: the sender never holds more than one page of them
PAGE_SIZE = 100
#: refusals that concern the account, not the recipient: the broadcast stops
_FATAL = frozenset(
    {"instagram_token_invalid", "instagram_token_missing", "instagram_account_missing"}
)
_TRANSIENT_TRIES = 6
_MAX_BACKOFF = 30.0
_LAST_STATUSES = (BroadcastStatus.DONE, BroadcastStatus.CANCELLED, BroadcastStatus.FAILED)


@dataclass
class BroadcastContext:
    """What a broadcast run needs: settings, the database, the keys to open account tokens,
    and (optionally) a shared outbound HTTP client."""

    settings: Settings
    db: Database
    keys: KeyWrapper
    http: httpx.AsyncClient | None = None
    #: contacts read per page
    page_size: int = PAGE_SIZE


@dataclass(frozen=True)
class Outcome:
    """What became of one recipient."""

    status: RecipientStatus
    reason: str | None = None
    detail: str | None = None
    ledger_id: uuid.UUID | None = None


@dataclass
class _Run:
    broadcast_id: uuid.UUID
    workspace_id: uuid.UUID
    ig_user_id: str
    request: dict[str, Any]
    segment: Segment
    cursor: uuid.UUID | None
    pages: int = field(default=0)


class Sender:
    """Sends one broadcast to the end, or resumes it where a dead run left it.

    Args:
        context: Settings, database, keys.
    """

    def __init__(self, context: BroadcastContext) -> None:
        self.context = context
        self.db = context.db

    async def send(self, broadcast_id: uuid.UUID) -> str:
        """Send the broadcast to every recipient not yet handled.

        Args:
            broadcast_id: The broadcast.

        Returns:
            The broadcast's status when the run ends (``done``, ``cancelled``, ``failed``).
        """
        run = await self._start(broadcast_id)
        if isinstance(run, str):
            return run
        gateway = InstagramGateway(
            self.db,
            self.context.keys,
            self.context.settings.instagram,
            self.context.http,
            workspace_id=run.workspace_id,
            flow_id=None,
            # the ledger key holds the broadcast: one send per (broadcast, contact)
            flow_version_id=run.broadcast_id,
            execution_id=run.broadcast_id,
            sandbox=False,
        )
        where = segment_conditions(run.workspace_id, run.ig_user_id, run.segment)
        while True:
            if await self._status(run.broadcast_id) != BroadcastStatus.SENDING:
                return await self._status(run.broadcast_id)
            page, handled = await self._page(run, where)
            if not page:
                break
            for contact_id, igsid, opted_out, last_inbound_at in page:
                if contact_id in handled:
                    continue  # a run before this one recorded it
                outcome = await self._one(gateway, run, igsid, opted_out, last_inbound_at)
                if outcome is None:
                    return BroadcastStatus.FAILED
                await self._record(run.broadcast_id, contact_id, outcome)
            run.cursor = page[-1][0]
            await self._save_cursor(run.broadcast_id, run.cursor)
        return await self._finish(run.broadcast_id, BroadcastStatus.DONE, None)

    async def _start(self, broadcast_id: uuid.UUID) -> _Run | str:
        async with self.db.sessionmaker() as session:
            row = await session.get(Broadcast, broadcast_id)
            if row is None:
                return "missing"
            if row.status in _LAST_STATUSES:
                return row.status
            account = await session.get(InstagramAccount, row.account_id)
            if account is None or account.workspace_id != row.workspace_id:
                row.status, row.error = BroadcastStatus.FAILED, "the account is not connected"
                row.finished_at = utcnow()
                await session.commit()
                return BroadcastStatus.FAILED
            segment = Segment.model_validate(row.segment)
            if row.total is None:
                where = segment_conditions(row.workspace_id, account.ig_user_id, segment)
                row.total = int(
                    await session.scalar(select(func.count()).select_from(Contact).where(*where))
                    or 0
                )
            row.status = BroadcastStatus.SENDING
            row.started_at = row.started_at or utcnow()
            run = _Run(
                broadcast_id=row.id,
                workspace_id=row.workspace_id,
                ig_user_id=account.ig_user_id,
                request={
                    "text": row.text,
                    "quick_replies": list(row.quick_replies or []),
                    "buttons": list(row.buttons or []),
                },
                segment=segment,
                cursor=row.cursor,
            )
            await session.commit()
        return run

    async def _page(
        self, run: _Run, where: list[Any]
    ) -> tuple[list[tuple[uuid.UUID, str, bool, datetime | None]], set[uuid.UUID]]:
        """The next page of the segment after the cursor, and which of it was handled."""
        query = select(Contact.id, Contact.igsid, Contact.opted_out, Contact.last_inbound_at)
        query = query.where(*where)
        if run.cursor is not None:
            query = query.where(Contact.id > run.cursor)
        async with self.db.sessionmaker() as session:
            rows = (
                await session.execute(query.order_by(Contact.id).limit(self.context.page_size))
            ).tuples()
            page = [(a, b, bool(c), d) for a, b, c, d in rows]
            handled: set[uuid.UUID] = set()
            if page:
                handled = set(
                    (
                        await session.scalars(
                            select(BroadcastRecipient.contact_id).where(
                                BroadcastRecipient.broadcast_id == run.broadcast_id,
                                BroadcastRecipient.contact_id.in_([p[0] for p in page]),
                            )
                        )
                    ).all()
                )
        run.pages += 1
        return page, handled

    async def _one(
        self,
        gateway: InstagramGateway,
        run: _Run,
        igsid: str,
        opted_out: bool,
        last_inbound_at: datetime | None,
    ) -> Outcome | None:
        """Check and send to one recipient; None when the account itself refuses (the
        broadcast was marked failed)."""
        # Meta's rules at send time: the window may have closed since the preview
        reason = reason_of(opted_out, last_inbound_at, utcnow())
        if reason != ELIGIBLE:
            return Outcome(RecipientStatus.SKIPPED, reason, REASONS[reason])
        request = ActionRequest(
            action="send_dm",
            node_id="broadcast",
            account=run.ig_user_id,
            target=igsid,
            last_user_message_at=last_inbound_at,
            occurrence="broadcast",
            **run.request,
        )
        for attempt in range(_TRANSIENT_TRIES):
            try:
                result = await gateway.perform(request)
            except UserError as exc:
                if exc.code == "instagram_policy_refused":
                    ledger = (exc.details or {}).get("ledger_id")
                    return Outcome(
                        RecipientStatus.SKIPPED,
                        "outside_window",
                        exc.message[:300],
                        uuid.UUID(ledger) if ledger else None,
                    )
                if exc.code in _FATAL:
                    await self._finish(run.broadcast_id, BroadcastStatus.FAILED, exc.message)
                    return None
                return Outcome(RecipientStatus.FAILED, exc.code[:40], exc.message[:300])
            except TransientError as exc:
                if attempt == _TRANSIENT_TRIES - 1:
                    return Outcome(RecipientStatus.FAILED, exc.code[:40], exc.message[:300])
                wait = exc.retry_after if exc.retry_after is not None else 2.0**attempt
                await asyncio.sleep(min(max(wait, 0.05), _MAX_BACKOFF))
                continue
            detail = "sandboxed: not sent to Meta" if result.status == "sandboxed" else None
            return Outcome(RecipientStatus.SENT, None, detail, result.ledger_id)
        return None  # pragma: no cover - the loop always returns

    async def _record(
        self, broadcast_id: uuid.UUID, contact_id: uuid.UUID, outcome: Outcome
    ) -> None:
        async with self.db.sessionmaker() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = pg_insert if dialect == "postgresql" else sqlite_insert
            await session.execute(
                insert(BroadcastRecipient)
                .values(
                    broadcast_id=broadcast_id,
                    contact_id=contact_id,
                    status=outcome.status,
                    reason=outcome.reason,
                    detail=outcome.detail,
                    ledger_id=outcome.ledger_id,
                    at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["broadcast_id", "contact_id"])
            )
            await session.commit()

    async def _status(self, broadcast_id: uuid.UUID) -> str:
        async with self.db.sessionmaker() as session:
            status = await session.scalar(
                select(Broadcast.status).where(Broadcast.id == broadcast_id)
            )
        return str(status or BroadcastStatus.CANCELLED)

    async def _save_cursor(self, broadcast_id: uuid.UUID, cursor: uuid.UUID) -> None:
        async with self.db.sessionmaker() as session:
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id)
                .values(cursor=cursor, updated_at=utcnow())
            )
            await session.commit()

    async def _finish(self, broadcast_id: uuid.UUID, status: str, error: str | None) -> str:
        """Close the broadcast unless it was cancelled meanwhile; its final status."""
        async with self.db.sessionmaker() as session:
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == BroadcastStatus.SENDING)
                .values(
                    status=status,
                    error=error[:300] if error else None,
                    finished_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
            await session.commit()
        _log.info("broadcast ended", broadcast_id=str(broadcast_id), status=status)
        return await self._status(broadcast_id)
