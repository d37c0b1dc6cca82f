"""Instagram endpoints: accounts and connecting them (admin), the send ledger (viewer)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from socialflow.api.deps import AdminMember, SessionDep, SettingsDep, ViewerMember
from socialflow.api.instagram import profile, service
from socialflow.api.instagram.schemas import (
    AccountRead,
    AccountUpdate,
    ConnectStart,
    ConnectStartRead,
    OutboxPage,
    SampleEvent,
)
from socialflow.core.credentials import key_wrapper
from socialflow.core.crypto import KeyWrapper
from socialflow.instagram import MessengerProfile

__all__ = ["callback_router", "router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/instagram", tags=["instagram"])
#: Meta redirects the browser here; the signed state says which workspace and admin
callback_router = APIRouter(prefix="/instagram", tags=["instagram"])

Status = Literal["queued", "sending", "sent", "sandboxed", "refused", "failed"]


def _keys(settings: SettingsDep) -> KeyWrapper:
    return key_wrapper(settings)


KeysDep = Annotated[KeyWrapper, Depends(_keys)]


@router.get("/accounts", name="list_instagram_accounts")
async def list_accounts(member: ViewerMember, session: SessionDep) -> list[AccountRead]:
    """Connected Instagram accounts with their mode and token status (viewer)."""
    return await service.list_accounts(member.workspace_id, session=session)


@router.patch("/accounts/{account_id}", name="update_instagram_account")
async def update_account(
    account_id: uuid.UUID, body: AccountUpdate, member: AdminMember, session: SessionDep
) -> AccountRead:
    """Switch an account between sandbox and live (admin)."""
    return await service.update_account(member.workspace_id, account_id, body.mode, session=session)


@router.delete("/accounts/{account_id}", status_code=204, name="delete_instagram_account")
async def delete_account(
    account_id: uuid.UUID, member: AdminMember, session: SessionDep
) -> Response:
    """Disconnect an account and delete its token (admin)."""
    await service.delete_account(member.workspace_id, account_id, session=session)
    return Response(status_code=204)


@router.get("/accounts/{account_id}/messenger-profile", name="get_instagram_messenger_profile")
async def get_messenger_profile(
    account_id: uuid.UUID,
    member: ViewerMember,
    settings: SettingsDep,
    keys: KeysDep,
    session: SessionDep,
) -> MessengerProfile:
    """The account's ice breakers and persistent menu, read from Meta (viewer)."""
    return await profile.get_profile(
        member.workspace_id, account_id, settings, keys, session=session
    )


@router.put("/accounts/{account_id}/messenger-profile", name="set_instagram_messenger_profile")
async def set_messenger_profile(
    account_id: uuid.UUID,
    body: MessengerProfile,
    member: AdminMember,
    settings: SettingsDep,
    keys: KeysDep,
    session: SessionDep,
) -> MessengerProfile:
    """Replace the account's ice breakers (at most 4) and persistent menu (at most 20 items);
    each postback item's payload starts the flows whose DM trigger takes postbacks with that
    keyword (admin)."""
    return await profile.set_profile(
        member.workspace_id, account_id, body, settings, keys, session=session
    )


@router.post("/connect", name="start_instagram_connect")
async def start_connect(
    body: ConnectStart, member: AdminMember, settings: SettingsDep, request: Request
) -> ConnectStartRead:
    """Start Instagram Login: the URL to open and the state Meta sends back (admin)."""
    redirect_uri = (
        body.redirect_uri
        or settings.instagram.oauth_redirect_url
        or str(request.url_for("finish_instagram_connect"))
    )
    url, state = service.start_connect(settings, member.workspace_id, member.user.id, redirect_uri)
    return ConnectStartRead(authorize_url=url, state=state, redirect_uri=redirect_uri)


@router.get("/outbox", name="list_instagram_outbox")
async def list_outbox(
    member: ViewerMember,
    session: SessionDep,
    account_id: Annotated[uuid.UUID | None, Query(description="Only this account.")] = None,
    flow_id: Annotated[uuid.UUID | None, Query(description="Only this flow.")] = None,
    execution_id: Annotated[
        uuid.UUID | None, Query(description="Only what this run wrote (e.g. a sandbox test).")
    ] = None,
    status: Annotated[Status | None, Query(description="Only this status.")] = None,
    before: Annotated[datetime | None, Query(description="Entries created before this.")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Most entries returned.")] = 50,
) -> OutboxPage:
    """The send ledger: what actions did or would do, and why refused ones were (viewer)."""
    return await service.list_outbox(
        member.workspace_id,
        session=session,
        account_id=account_id,
        flow_id=flow_id,
        execution_id=execution_id,
        status=status,
        before=before,
        limit=limit,
    )


@router.get("/sample-events", name="list_instagram_sample_events")
async def list_sample_events(member: ViewerMember, session: SessionDep) -> list[SampleEvent]:
    """A comment, a DM and a mention as Instagram triggers receive them, to test drafts with."""
    return await service.sample_events(member.workspace_id, session=session)


@callback_router.get("/oauth/callback", name="finish_instagram_connect")
async def finish_connect(
    state: Annotated[str, Query(max_length=2000, description="The state from the connect start.")],
    code: Annotated[str, Query(min_length=1, max_length=2000, description="Authorization code.")],
    settings: SettingsDep,
    keys: KeysDep,
    session: SessionDep,
) -> AccountRead:
    """Where Instagram Login returns: stores the account, its token and its subscription."""
    return await service.finish_connect(settings, keys, state, code, session=session)
