"""Tables of the Instagram integration: connected accounts and the send ledger."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, JSONType, utcnow

__all__ = [
    "AccountMode",
    "ConnectAttempt",
    "ConnectStatus",
    "InstagramAccount",
    "LoginKind",
    "OutboxMessage",
    "OutboxStatus",
    "TokenStatus",
]


class LoginKind(StrEnum):
    """How an account was connected, which decides the Graph API host."""

    INSTAGRAM = "instagram"  # graph.instagram.com, Instagram User token
    FACEBOOK = "facebook"  # graph.facebook.com, Page token


class AccountMode(StrEnum):
    """Whether actions of an account reach Meta."""

    SANDBOX = "sandbox"
    LIVE = "live"


class TokenStatus(StrEnum):
    """Health of an account's access token."""

    VALID = "valid"
    EXPIRING = "expiring"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"


class OutboxStatus(StrEnum):
    """Where one ledger entry stands."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    SANDBOXED = "sandboxed"
    REFUSED = "refused"
    FAILED = "failed"


class InstagramAccount(Base):
    """An Instagram professional account connected to a workspace."""

    __tablename__ = "instagram_account"
    __table_args__ = (UniqueConstraint("workspace_id", "ig_user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    # the professional account id: entry[].id / recipient.id in webhooks
    ig_user_id: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(100), default="")
    login_kind: Mapped[str] = mapped_column(String(20), default=LoginKind.INSTAGRAM)
    # Facebook Login: the Page the account is linked to; webhooks may name it as entry.id
    page_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    page_name: Mapped[str] = mapped_column(String(200), default="")
    # a credential row of kind "instagram" holding the access token
    credential_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    mode: Mapped[str] = mapped_column(String(20), default=AccountMode.SANDBOX)
    token_status: Mapped[str] = mapped_column(String(20), default=TokenStatus.VALID)
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    token_refreshed_at: Mapped[datetime | None] = mapped_column(default=None)
    subscribed_fields: Mapped[list[str]] = mapped_column(JSONType, default=list)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConnectStatus(StrEnum):
    """Where one connect attempt stands."""

    PENDING = "pending"  # the admin is on Meta's login page
    WORKING = "working"  # Meta sent the browser back; the state is spent
    CONNECTED = "connected"
    FAILED = "failed"


class ConnectAttempt(Base):
    """One run of a connect flow (Instagram or Facebook Login): what its signed ``state``
    names, the PKCE verifier kept server-side, and how it ended, which the web app shows."""

    __tablename__ = "instagram_connect_attempt"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_id: Mapped[uuid.UUID]
    login_kind: Mapped[str] = mapped_column(String(20))
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_verifier: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(20), default=ConnectStatus.PENDING)
    # [{"id", "ig_user_id", "username"}] of the accounts connected
    accounts: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    error_code: Mapped[str | None] = mapped_column(String(60), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    expires_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """One intended Graph API action, written before the call and completed after it."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_message_account_status", "account_id", "status", "scheduled_for"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    account_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    flow_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    flow_version_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    execution_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    node_id: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.QUEUED, index=True)
    # recorded, not sent: a test run, or any run of an account in sandbox mode
    sandbox: Mapped[bool] = mapped_column(default=False)
    # written by a test run (the editor's): its execution's ``sandbox`` flag
    test_run: Mapped[bool] = mapped_column(default=False)
    policy_verdict: Mapped[str] = mapped_column(String(20), default="allowed")
    policy_reason: Mapped[str | None] = mapped_column(Text, default=None)
    scheduled_for: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
