"""Instagram endpoints: accounts and connecting them (admin), the send ledger (viewer)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from socialflow.api.deps import AdminMember, SessionDep, SettingsDep, ViewerMember
from socialflow.api.instagram import connect, profile, service
from socialflow.api.instagram.schemas import (
    AccountRead,
    AccountUpdate,
    ConnectAttemptRead,
    ConnectStart,
    ConnectStartRead,
    OutboxPage,
    SampleEvent,
)
from socialflow.core.credentials import key_wrapper
from socialflow.core.crypto import KeyWrapper
from socialflow.instagram import LoginKind, MessengerProfile

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
    body: ConnectStart,
    member: AdminMember,
    settings: SettingsDep,
    session: SessionDep,
    request: Request,
) -> ConnectStartRead:
    """Start Instagram Login: the URL to open and the state Meta sends back (admin)."""
    redirect_uri = (
        body.redirect_uri
        or settings.instagram.oauth_redirect_url
        or str(request.url_for("finish_instagram_connect"))
    )
    url, state = await connect.start(
        settings,
        member.workspace_id,
        member.user.id,
        redirect_uri,
        LoginKind.INSTAGRAM,
        session=session,
    )
    return ConnectStartRead(authorize_url=url, state=state, redirect_uri=redirect_uri)


@router.post("/connect/facebook", name="start_facebook_connect")
async def start_facebook_connect(
    body: ConnectStart,
    member: AdminMember,
    settings: SettingsDep,
    session: SessionDep,
    request: Request,
) -> ConnectStartRead:
    """Start Facebook Login for the Instagram accounts linked to the admin's Pages (admin)."""
    redirect_uri = (
        body.redirect_uri
        or settings.instagram.facebook_redirect_url
        or str(request.url_for("finish_facebook_connect"))
    )
    url, state = await connect.start(
        settings,
        member.workspace_id,
        member.user.id,
        redirect_uri,
        LoginKind.FACEBOOK,
        session=session,
    )
    return ConnectStartRead(authorize_url=url, state=state, redirect_uri=redirect_uri)


@router.get("/connect/attempts/{attempt_id}", name="get_instagram_connect_attempt")
async def get_connect_attempt(
    attempt_id: uuid.UUID, member: ViewerMember, session: SessionDep
) -> ConnectAttemptRead:
    """How a connect attempt ended: the accounts connected, or the error in words (viewer)."""
    return await connect.get_attempt(member.workspace_id, attempt_id, session=session)


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


# no length limits here: a bad value must still land on the web app's page, not a 422 body
_State = Annotated[str, Query(description="The state from the connect start.")]
_Code = Annotated[str | None, Query(description="Authorization code.")]
_Error = Annotated[str | None, Query(description="Meta's error, if any.")]


@callback_router.get("/oauth/callback", name="finish_instagram_connect")
async def finish_connect(
    settings: SettingsDep,
    keys: KeysDep,
    session: SessionDep,
    state: _State = "",
    code: _Code = None,
    error: _Error = None,
    error_reason: _Error = None,
    error_description: _Error = None,
) -> RedirectResponse:
    """Where Instagram Login returns: stores the account, then sends the browser to the web
    app's page saying what happened."""
    target = await connect.finish(
        settings,
        keys,
        LoginKind.INSTAGRAM,
        state=state,
        code=code,
        error=error,
        error_reason=error_reason,
        error_description=error_description,
        session=session,
    )
    return RedirectResponse(target, status_code=303)


@callback_router.get("/oauth/facebook/callback", name="finish_facebook_connect")
async def finish_facebook_connect(
    settings: SettingsDep,
    keys: KeysDep,
    session: SessionDep,
    state: _State = "",
    code: _Code = None,
    error: _Error = None,
    error_reason: _Error = None,
    error_description: _Error = None,
) -> RedirectResponse:
    """Where Facebook Login returns: stores the Pages' Instagram accounts, then sends the
    browser to the web app's page saying what happened."""
    target = await connect.finish(
        settings,
        keys,
        LoginKind.FACEBOOK,
        state=state,
        code=code,
        error=error,
        error_reason=error_reason,
        error_description=error_description,
        session=session,
    )
    return RedirectResponse(target, status_code=303)
