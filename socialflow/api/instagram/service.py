"""Instagram accounts, the connect flow's signed state, and the ledger, per workspace."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import datetime

import httpx
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.instagram.schemas import AccountRead, OutboxPage, OutboxRead, SampleEvent
from socialflow.api.workspaces.models import Membership, Role
from socialflow.core.credentials import Credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.errors import ForbiddenError, NotFoundError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.instagram import (
    DEMO_ACCOUNT_ID,
    InstagramAccount,
    SimulatedKind,
    authorize_url,
    build_payload,
    connect_account,
    list_query,
    parse_payload,
)

__all__ = [
    "delete_account",
    "finish_connect",
    "list_accounts",
    "list_outbox",
    "sample_events",
    "start_connect",
    "update_account",
]

_log = get_logger(__name__)
STATE_SECONDS = 900


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


def _state_key(settings: Settings) -> bytes:
    return hashlib.sha256(b"instagram-oauth-state:" + settings.secret_key.encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_state(
    settings: Settings, workspace_id: uuid.UUID, user_id: uuid.UUID, redirect_uri: str
) -> str:
    """A tamper-proof, short-lived ``state`` naming who connects which workspace."""
    body = json.dumps(
        {
            "w": str(workspace_id),
            "u": str(user_id),
            "r": redirect_uri,
            "e": int(time.time()) + STATE_SECONDS,
        },
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(_state_key(settings), body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def read_state(settings: Settings, state: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """Check a ``state`` and return (workspace id, user id, redirect URI).

    Raises:
        UserError: Forged, malformed or expired.
    """
    try:
        body_part, mac_part = state.split(".", 1)
        body = base64.urlsafe_b64decode(body_part + "=" * (-len(body_part) % 4))
        mac = base64.urlsafe_b64decode(mac_part + "=" * (-len(mac_part) % 4))
        expected = hmac.new(_state_key(settings), body, hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            raise ValueError("bad signature")  # noqa: EM101 - caught right below
        data = json.loads(body)
        if int(data["e"]) < time.time():
            raise ValueError("expired")  # noqa: EM101 - caught right below
        return uuid.UUID(data["w"]), uuid.UUID(data["u"]), str(data["r"])
    except (ValueError, KeyError, TypeError) as exc:
        msg = "the Instagram connect link is invalid or expired; start connecting again"
        raise UserError(msg, code="instagram_oauth_state_invalid") from exc


def start_connect(
    settings: Settings, workspace_id: uuid.UUID, user_id: uuid.UUID, redirect_uri: str
) -> tuple[str, str]:
    """The Instagram Login URL and its state for an admin of the workspace."""
    state = sign_state(settings, workspace_id, user_id, redirect_uri)
    return authorize_url(settings.instagram, redirect_uri, state), state


async def finish_connect(
    settings: Settings, keys: KeyWrapper, state: str, code: str, *, session: AsyncSession
) -> AccountRead:
    """Complete the connect flow Meta redirected back from.

    Raises:
        UserError: Bad state or a refused code.
        ForbiddenError: The user who started it is no longer an admin of the workspace.
    """
    workspace_id, user_id, redirect_uri = read_state(settings, state)
    role = await session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user_id
        )
    )
    if role is None or Role(role) != Role.ADMIN:
        msg = "only admins of the workspace can connect Instagram accounts"
        raise ForbiddenError(msg, details={"required_role": "admin"})
    async with httpx.AsyncClient(trust_env=False) as http:
        account = await connect_account(
            session,
            http,
            settings.instagram,
            keys,
            workspace_id=workspace_id,
            code=code,
            redirect_uri=redirect_uri,
        )
    _log.info(
        "instagram account connected", workspace_id=str(workspace_id), account=account.ig_user_id
    )
    return AccountRead.model_validate(account)


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
