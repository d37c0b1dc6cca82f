"""Instagram accounts and the send ledger, per workspace (connecting: ``connect.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.instagram.schemas import AccountRead, OutboxPage, OutboxRead, SampleEvent
from socialflow.core.credentials import Credential
from socialflow.core.errors import NotFoundError
from socialflow.core.logging import get_logger
from socialflow.instagram import (
    DEMO_ACCOUNT_ID,
    InstagramAccount,
    SimulatedKind,
    build_payload,
    list_query,
    parse_payload,
)

__all__ = [
    "delete_account",
    "list_accounts",
    "list_outbox",
    "sample_events",
    "update_account",
]

_log = get_logger(__name__)


async def list_accounts(workspace_id: uuid.UUID, *, session: AsyncSession) -> list[AccountRead]:
    """The workspace's connected accounts, by username."""
    rows = await session.scalars(
        select(InstagramAccount)
        .where(InstagramAccount.workspace_id == workspace_id)
        .order_by(InstagramAccount.username, InstagramAccount.id)
    )
    return [AccountRead.model_validate(r) for r in rows.all()]


async def _get(
    workspace_id: uuid.UUID, account_id: uuid.UUID, session: AsyncSession
) -> InstagramAccount:
    row = await session.get(InstagramAccount, account_id)
    if row is None or row.workspace_id != workspace_id:
        msg = f"Instagram account {account_id} not found"
        raise NotFoundError(msg, code="instagram_account_not_found")
    return row


async def update_account(
    workspace_id: uuid.UUID, account_id: uuid.UUID, mode: str, *, session: AsyncSession
) -> AccountRead:
    """Switch an account between sandbox and live.

    Raises:
        NotFoundError: No such account in the workspace.
    """
    row = await _get(workspace_id, account_id, session)
    row.mode = mode
    await session.commit()
    await session.refresh(row)
    _log.info(
        "instagram account mode", workspace_id=str(workspace_id), account=row.ig_user_id, mode=mode
    )
    return AccountRead.model_validate(row)


async def delete_account(
    workspace_id: uuid.UUID, account_id: uuid.UUID, *, session: AsyncSession
) -> None:
    """Disconnect an account and delete its stored token. Its ledger entries are kept.

    Raises:
        NotFoundError: No such account in the workspace.
    """
    row = await _get(workspace_id, account_id, session)
    credential_id = row.credential_id
    await session.delete(row)
    if credential_id is not None:
        await session.execute(
            delete(Credential).where(
                Credential.id == credential_id, Credential.workspace_id == workspace_id
            )
        )
    await session.commit()


async def list_outbox(
    workspace_id: uuid.UUID,
    *,
    session: AsyncSession,
    account_id: uuid.UUID | None = None,
    flow_id: uuid.UUID | None = None,
    execution_id: uuid.UUID | None = None,
    status: str | None = None,
    before: datetime | None = None,
    limit: int = 50,
) -> OutboxPage:
    """Ledger entries of the workspace, newest first, filtered."""
    rows = list(
        (
            await session.scalars(
                list_query(
                    workspace_id,
                    account_id=account_id,
                    flow_id=flow_id,
                    execution_id=execution_id,
                    status=status,
                    before=before,
                    limit=limit + 1,
                )
            )
        ).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return OutboxPage(
        items=[OutboxRead.model_validate(r) for r in rows],
        next_before=rows[-1].created_at if more and rows else None,
    )


_SAMPLES: tuple[tuple[SimulatedKind, str, str], ...] = (
    ("comment", "A comment asking for the price", "How much is this? price please"),
    ("dm", "A direct message", "Hi! Do you ship to Canada?"),
    ("mention", "A mention in a comment", "@yourshop look at this"),
)


async def sample_events(workspace_id: uuid.UUID, *, session: AsyncSession) -> list[SampleEvent]:
    """One event per Instagram trigger kind, parsed from a realistic webhook exactly as a real
    one is, addressed to the workspace's first connected account (or the demo account)."""
    account = await session.scalar(
        select(InstagramAccount.ig_user_id)
        .where(InstagramAccount.workspace_id == workspace_id)
        .order_by(InstagramAccount.username, InstagramAccount.id)
        .limit(1)
    )
    samples: list[SampleEvent] = []
    for kind, label, text in _SAMPLES:
        webhook = build_payload(kind, text, account_id=account or DEMO_ACCOUNT_ID)
        (parsed,) = parse_payload(webhook)
        samples.append(
            SampleEvent(kind=kind, label=label, payload=parsed.event.model_dump(mode="json"))
        )
    return samples
