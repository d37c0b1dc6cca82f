"""Reading contacts' names, usernames and pictures from Meta's user profile API.

Meta answers only for people who gave consent: "User consent is set only when an Instagram
user sends a message to your app user, or clicks an icebreaker or persistent menu" (SPEC 5.6),
so only contacts with a ``last_inbound_at`` are read, and a mere commenter never is. A picture
URL "will expire in a few days": a profile is read again after ``REFRESH_AFTER``. Accounts in
sandbox mode reach no Meta server, so their contacts are not read. Any failure (no token, an
error from Meta, a timeout) is written to the contact's ``profile_error`` and logged: it never
fails the event or run that caused the read.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import or_, select

from socialflow.contacts._models import Contact
from socialflow.core.credentials import Credential, open_credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.logging import get_logger
from socialflow.core.settings import InstagramSettings
from socialflow.instagram import AccountMode, InstagramAccount
from socialflow.instagram.client import GraphClient

__all__ = ["REFRESH_AFTER", "ProfileReader"]

_log = get_logger(__name__)
REFRESH_AFTER = timedelta(days=3)
_FIELDS = "name,username,profile_pic"


class ProfileReader:
    """Fills in contacts' profiles from the Graph API.

    Args:
        db: The application database.
        keys: The master keys, to open the accounts' tokens.
        settings: Graph API hosts and timeout.
        http: The HTTP client the Graph API client shares.
    """

    def __init__(
        self, db: Database, keys: KeyWrapper, settings: InstagramSettings, http: httpx.AsyncClient
    ) -> None:
        self.db = db
        self.keys = keys
        self.settings = settings
        self.http = http

    async def refresh(self, contact_ids: list[uuid.UUID]) -> int:
        """Read the profiles of those of ``contact_ids`` that gave consent and were not read
        lately. Never raises for a contact; returns how many profiles were read."""
        stale = utcnow() - REFRESH_AFTER
        async with self.db.sessionmaker() as session:
            rows = list(
                (
                    await session.scalars(
                        select(Contact).where(
                            Contact.id.in_(contact_ids),
                            Contact.last_inbound_at.is_not(None),
                            or_(
                                Contact.profile_fetched_at.is_(None),
                                Contact.profile_fetched_at < stale,
                            ),
                        )
                    )
                ).all()
            )
            read = 0
            clients: dict[tuple[uuid.UUID, str], GraphClient | None] = {}
            try:
                for contact in rows:
                    key = (contact.workspace_id, contact.account_id)
                    if key not in clients:
                        clients[key] = await self._client(*key)
                    client = clients[key]
                    if client is None:
                        continue
                    try:
                        profile = await client.get_user_profile(contact.igsid, fields=_FIELDS)
                    except Exception as exc:
                        contact.profile_error = f"{type(exc).__name__}: {exc}"[:300]
                        _log.info(
                            "profile not read", contact_id=str(contact.id), error=str(exc)[:300]
                        )
                    else:
                        _apply(contact, profile)
                        read += 1
                    contact.profile_fetched_at = utcnow()
            finally:
                for client in clients.values():
                    if client is not None:
                        await client.aclose()
            await session.commit()
        return read

    async def _client(self, workspace_id: uuid.UUID, ig_user_id: str) -> GraphClient | None:
        async with self.db.sessionmaker() as session:
            account = await session.scalar(
                select(InstagramAccount).where(
                    InstagramAccount.workspace_id == workspace_id,
                    InstagramAccount.ig_user_id == ig_user_id,
                )
            )
            if account is None or account.mode != AccountMode.LIVE or not account.credential_id:
                return None
            credential = await session.get(Credential, account.credential_id)
        if credential is None:
            return None
        try:
            token = str(open_credential(credential, self.keys)["access_token"])
        except Exception as exc:
            _log.warning("account token unreadable; profiles not read", error=repr(exc))
            return None
        return GraphClient(
            token,
            self.settings,
            ig_user_id=ig_user_id,
            login_kind=account.login_kind,
            http=self.http,
        )


def _apply(contact: Contact, profile: dict[str, object]) -> None:
    name, username, picture = (profile.get(k) for k in ("name", "username", "profile_pic"))
    if isinstance(name, str) and name:
        contact.name = name[:200]
    if isinstance(username, str) and username:
        contact.username = username[:100]
    if isinstance(picture, str) and picture.startswith(("https://", "http://")):
        contact.profile_pic = picture[:2000]
    contact.profile_error = None
