"""An account's ice breakers and persistent menu, read from and written to Meta."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.credentials import Credential, open_credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.errors import NotFoundError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.instagram import (
    GraphClient,
    InstagramAccount,
    MessengerProfile,
    profile_body,
    read_profile,
)

__all__ = ["get_profile", "set_profile"]

_log = get_logger(__name__)


async def _client(
    workspace_id: uuid.UUID,
    account_id: uuid.UUID,
    settings: Settings,
    keys: KeyWrapper,
    session: AsyncSession,
    http: httpx.AsyncClient,
) -> GraphClient:
    account = await session.get(InstagramAccount, account_id)
    if account is None or account.workspace_id != workspace_id:
        msg = f"Instagram account {account_id} not found"
        raise NotFoundError(msg, code="instagram_account_not_found")
    credential = (
        await session.get(Credential, account.credential_id) if account.credential_id else None
    )
    if credential is None:
        msg = f"Instagram account @{account.username} has no stored token; reconnect it"
        raise UserError(msg, code="instagram_token_missing")
    return GraphClient(
        str(open_credential(credential, keys)["access_token"]),
        settings.instagram,
        ig_user_id=account.ig_user_id,
        login_kind=account.login_kind,
        http=http,
    )


async def get_profile(
    workspace_id: uuid.UUID,
    account_id: uuid.UUID,
    settings: Settings,
    keys: KeyWrapper,
    *,
    session: AsyncSession,
) -> MessengerProfile:
    """The account's ice breakers and persistent menu, as Meta has them.

    Raises:
        NotFoundError: No such account in the workspace.
        UserError: No stored token, or Meta refused.
    """
    async with httpx.AsyncClient(trust_env=False) as http:
        client = await _client(workspace_id, account_id, settings, keys, session, http)
        try:
            return read_profile(await client.get_messenger_profile())
        finally:
            await client.aclose()


async def set_profile(
    workspace_id: uuid.UUID,
    account_id: uuid.UUID,
    profile: MessengerProfile,
    settings: Settings,
    keys: KeyWrapper,
    *,
    session: AsyncSession,
) -> MessengerProfile:
    """Replace the account's ice breakers and persistent menu; an empty list removes one.

    Raises:
        NotFoundError: No such account in the workspace.
        UserError: No stored token, or Meta refused.
    """
    async with httpx.AsyncClient(trust_env=False) as http:
        client = await _client(workspace_id, account_id, settings, keys, session, http)
        try:
            body = profile_body(profile)
            if len(body) > 1:
                await client.set_messenger_profile(body)
            cleared = [
                name for name in ("ice_breakers", "persistent_menu") if not getattr(profile, name)
            ]
            if cleared:
                await client.delete_messenger_profile(cleared)
            _log.info(
                "instagram messenger profile set",
                workspace_id=str(workspace_id),
                account=client.ig_user_id,
                ice_breakers=len(profile.ice_breakers),
                menu_items=len(profile.persistent_menu),
            )
            return read_profile(await client.get_messenger_profile())
        finally:
            await client.aclose()
