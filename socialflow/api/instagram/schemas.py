"""What the Instagram endpoints read and write; tokens never appear in an answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AccountRead",
    "AccountUpdate",
    "ConnectAttemptRead",
    "ConnectStart",
    "ConnectStartRead",
    "OutboxPage",
    "OutboxRead",
    "SampleEvent",
]


class AccountRead(BaseModel):
    """A connected Instagram professional account."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ig_user_id: str
    username: str
    login_kind: str = Field(
        description="instagram (Instagram Login, graph.instagram.com) or facebook (Facebook "
        "Login, graph.facebook.com, through the linked Page)."
    )
    page_id: str | None = Field(description="Facebook Login: the linked Facebook Page's id.")
    page_name: str = Field(description="Facebook Login: the linked Facebook Page's name.")
    mode: str = Field(description="sandbox: actions are recorded, never sent; live: sent.")
    token_status: str = Field(description="valid, expiring, expired, revoked or invalid.")
    token_expires_at: datetime | None
    token_refreshed_at: datetime | None
    subscribed_fields: list[str]
    last_error: str | None
    created_at: datetime


class AccountUpdate(BaseModel):
    """Switch an account between sandbox and live."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["sandbox", "live"] = Field(description="sandbox or live.")


class ConnectStart(BaseModel):
    """Start Instagram Login or Facebook Login for this workspace."""

    model_config = ConfigDict(extra="forbid")

    redirect_uri: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description=(
            "Callback URL registered with the Meta app (http or https); empty: the configured "
            "one, else the API's own callback."
        ),
    )


class ConnectStartRead(BaseModel):
    """Where to send the admin's browser."""

    authorize_url: str
    state: str
    redirect_uri: str


class ConnectedAccount(BaseModel):
    """An account a connect attempt connected."""

    id: str
    ig_user_id: str
    username: str


class ConnectAttemptRead(BaseModel):
    """How one connect attempt went: what the web app's landing page shows."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    login_kind: str = Field(description="instagram or facebook.")
    status: str = Field(description="pending, working, connected or failed.")
    accounts: list[ConnectedAccount] = Field(description="The accounts connected.")
    error_code: str | None = Field(
        description="user_denied, facebook_permission_missing, facebook_no_pages, "
        "facebook_no_instagram_account, meta_refused, meta_unreachable, not_admin, ..."
    )
    error_message: str | None = Field(description="What went wrong, in words.")
    created_at: datetime
    finished_at: datetime | None


class OutboxRead(BaseModel):
    """One entry of the send ledger."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    idempotency_key: str
    account_id: uuid.UUID | None
    flow_id: uuid.UUID | None
    flow_version_id: uuid.UUID | None
    execution_id: uuid.UUID | None
    node_id: str
    action: str
    target: str
    payload: dict[str, Any]
    status: str
    sandbox: bool = Field(
        description="Recorded, not sent: a test run, or an account in sandbox mode."
    )
    test_run: bool = Field(
        description="Written by a test run (the editor's); its execution is marked sandbox."
    )
    policy_verdict: str
    policy_reason: str | None
    scheduled_for: datetime | None
    attempts: int
    response: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    sent_at: datetime | None


class OutboxPage(BaseModel):
    """Ledger entries, newest first; ``next_before`` pages on."""

    items: list[OutboxRead]
    next_before: datetime | None


class SampleEvent(BaseModel):
    """A sample event as an Instagram trigger receives it, to test a draft with."""

    kind: Literal["comment", "dm", "mention"]
    label: str = Field(description="What the sample is, in words.")
    payload: dict[str, Any] = Field(description="The trigger payload (edit before running).")
