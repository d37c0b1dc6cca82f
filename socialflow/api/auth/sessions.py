"""Sessions and bearer tokens: opaque random tokens kept only as SHA-256 digests, the CSRF check
of cookie-authenticated writes, and revocation.

Browser sessions (the ``sf_session`` cookie) and API bearer tokens are the same kind of row in
``access_token``: the client holds the token, the database holds ``sha256(token)``, so a copy of
the table signs nobody in. A token is looked up by its digest (an index lookup on a value the
caller cannot steer byte by byte, so its timing tells nothing about stored tokens). Deleting the
row ends the session or token at once, on every replica.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable

from fastapi import Request
from fastapi_users import BaseUserManager
from fastapi_users.authentication.strategy.db import AccessTokenDatabase, DatabaseStrategy
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.auth.models import AccessToken, User
from socialflow.api.middleware import CSRF_COOKIE, CSRF_HEADER
from socialflow.core.errors import ForbiddenError

__all__ = ["UNSAFE_METHODS", "TokenStrategy", "check_csrf", "revoke_tokens", "token_digest"]

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: 32 random bytes: 256 bits, so the unsalted digest cannot be reversed or guessed
_TOKEN_BYTES = 32


def token_digest(token: str) -> str:
    """What ``access_token.token`` stores for ``token``: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_csrf(request: Request) -> None:
    """Refuse a state-changing request unless ``X-CSRF-Token`` equals the ``sf_csrf`` cookie.

    Called only for requests the session cookie authenticated (double submit: another site can
    make the browser send the cookies, but cannot read ``sf_csrf`` to echo it in a header).

    Raises:
        ForbiddenError: ``csrf_failed``, when the method changes state and the header is
            missing or differs from the cookie.
    """
    if request.method not in UNSAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    # the framework's own cookie parser: the cookie this check reads is the one the session
    # was read from, whatever else the Cookie header carries
    expected = request.cookies.get(CSRF_COOKIE, "")
    # bytes: compare_digest refuses str with non-ASCII characters, which a header may carry
    if not expected or not secrets.compare_digest(sent.encode(), expected.encode()):
        msg = (
            "state-changing requests signed in with the session cookie must send the "
            "X-CSRF-Token header with the value of the sf_csrf cookie"
        )
        raise ForbiddenError(msg, code="csrf_failed")


class TokenStrategy(DatabaseStrategy[User, uuid.UUID, AccessToken]):
    """fastapi-users' database strategy, storing digests instead of tokens.

    Args:
        database: The ``access_token`` table of this request's database session.
        lifetime_seconds: Tokens older than this no longer authenticate.
        csrf_request: For the session-cookie backend: the request whose writes must carry the
            CSRF header once the cookie has authenticated it. fastapi-users tries the bearer
            backend first and reads the cookie only when no bearer token signed the caller in,
            so the check applies exactly when the cookie is the credential in use.
    """

    def __init__(
        self,
        database: AccessTokenDatabase[AccessToken],
        lifetime_seconds: int | None = None,
        *,
        csrf_request: Request | None = None,
    ) -> None:
        super().__init__(database, lifetime_seconds)
        self.csrf_request = csrf_request

    async def read_token(
        self, token: str | None, user_manager: BaseUserManager[User, uuid.UUID]
    ) -> User | None:
        if not token:
            return None
        user = await super().read_token(token_digest(token), user_manager)
        if user is not None and self.csrf_request is not None:
            check_csrf(self.csrf_request)
        return user

    async def write_token(self, user: User) -> str:
        token = secrets.token_urlsafe(_TOKEN_BYTES)
        await self.database.create({"token": token_digest(token), "user_id": user.id})
        return token

    async def destroy_token(self, token: str, user: User) -> None:
        await super().destroy_token(token_digest(token), user)


async def revoke_tokens(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    keep: str | None = None,
    only: Iterable[str] | None = None,
) -> int:
    """End sessions and bearer tokens of one user.

    Args:
        session: A database session; committed here.
        user_id: Whose tokens end; tokens of anyone else are never touched.
        keep: A raw token that stays valid (the one changing the password).
        only: End just these raw tokens (a logout); every token of the user when omitted.

    Returns:
        How many sessions and tokens ended.
    """
    # the table's columns: fastapi-users types the mapped attributes as plain values
    columns = AccessToken.__table__.c
    stored = columns["token"]
    statement = delete(AccessToken).where(columns["user_id"] == user_id)
    if keep is not None:
        statement = statement.where(stored != token_digest(keep))
    if only is not None:
        statement = statement.where(stored.in_([token_digest(t) for t in only]))
    result = await session.execute(statement)
    await session.commit()
    return int(getattr(result, "rowcount", 0) or 0)
