"""fastapi-users wiring: the user manager, session and token backends, current-user deps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, CookieTransport
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyAccessTokenDatabase
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.app_state import (
    EmailDep,
    SessionDep,
    SettingsDep,
    get_login_limiter,
)
from socialflow.api.auth.email import EmailMessage, EmailSender
from socialflow.api.auth.models import AccessToken, OAuthAccount, User
from socialflow.api.auth.passwords import check_password
from socialflow.api.auth.ratelimit import LoginLimiter, client_address
from socialflow.api.auth.sessions import TokenStrategy, revoke_tokens
from socialflow.api.middleware import SESSION_COOKIE
from socialflow.core.errors import UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings, get_settings

__all__ = [
    "UserManager",
    "bearer_backend",
    "cookie_backend",
    "current_active_user",
    "current_active_user_token",
    "fastapi_users",
    "get_user_manager",
    "token_strategy",
]

_log = get_logger(__name__)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    """Password rules and the emails sent around sign-up and password reset."""

    def __init__(
        self,
        user_db: SQLAlchemyUserDatabase[User, uuid.UUID],
        settings: Settings,
        email: EmailSender,
    ) -> None:
        super().__init__(user_db)
        self.settings = settings
        self.email = email
        self.reset_password_token_secret = settings.secret_key
        self.verification_token_secret = settings.secret_key

    async def validate_password(self, password: str, user: Any) -> None:
        """Every way a password is set (sign-up, reset, change, the CLI) passes this check.

        Raises:
            PasswordRejected: 422 with each rule the password breaks.
        """
        check_password(password, email=getattr(user, "email", "") or "")

    async def update(
        self,
        user_update: Any,
        user: User,
        safe: bool = False,
        request: Request | None = None,
    ) -> User:
        """fastapi-users' update; changing one's own email also needs the current password,
        since the email is where password resets go."""
        email = getattr(user_update, "email", None)
        if safe and email is not None and email.lower() != user.email.lower():
            await self._check_current_password(
                user, getattr(user_update, "current_password", ""), "to change the email", request
            )
        updated: User = await super().update(user_update, user, safe=safe, request=request)
        return updated

    async def _check_current_password(
        self, user: User, password: str, purpose: str, request: Request | None
    ) -> None:
        # guesses of the current password (from a stolen session) count like failed logins
        limiter: LoginLimiter | None = get_login_limiter(request) if request else None
        if limiter is not None and request is not None:
            await limiter.check(client_address(request), user.email)
        verified, _ = self.password_helper.verify_and_update(password, user.hashed_password)
        if not verified:
            if limiter is not None:
                await limiter.failed(user.email)
            msg = f"current_password: does not match your password (needed {purpose})"
            raise UserError(msg, code="current_password_wrong")

    async def change_password(
        self,
        user: User,
        *,
        current_password: str,
        new_password: str,
        keep_token: str | None,
        request: Request | None = None,
    ) -> None:
        """Set a new password after checking the current one; end every other session.

        Args:
            user: Who changes their password.
            current_password: Their password now; a stolen session alone cannot change it.
            new_password: The new one, checked like any password.
            keep_token: The session or bearer token making the request: it stays signed in,
                every other session and token of the user ends.
            request: The request, for the limit on guesses of the current password.

        Raises:
            UserError: ``current_password_wrong`` when the current password does not match.
            PasswordRejected: The new password breaks a rule.
        """
        await self._check_current_password(
            user, current_password, "to change the password", request
        )
        check_password(new_password, email=user.email, field="body.new_password")
        await self._update(user, {"password": new_password})
        ended = await revoke_tokens(self._session, user.id, keep=keep_token)
        _log.info("password changed", user_id=str(user.id), sessions_ended=ended)

    @property
    def _session(self) -> AsyncSession:
        database = self.user_db
        assert isinstance(database, SQLAlchemyUserDatabase)
        session: AsyncSession = database.session
        return session

    async def on_after_reset_password(self, user: User, request: Request | None = None) -> None:
        # whoever asked for the reset may be locking out someone holding a stolen session
        ended = await revoke_tokens(self._session, user.id)
        _log.info("password reset", user_id=str(user.id), sessions_ended=ended)

    async def on_after_register(self, user: User, request: Request | None = None) -> None:
        _log.info("user registered", user_id=str(user.id))

    async def on_after_forgot_password(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        link = f"{self.settings.api.public_url}/reset-password?token={token}"
        await self.email.send(
            EmailMessage(user.email, "Reset your Socialflow password", f"Open {link} to reset.")
        )

    async def on_after_request_verify(
        self, user: User, token: str, request: Request | None = None
    ) -> None:
        link = f"{self.settings.api.public_url}/verify?token={token}"
        await self.email.send(
            EmailMessage(user.email, "Confirm your Socialflow email", f"Open {link} to confirm.")
        )


async def _get_user_db(
    session: SessionDep,
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User, OAuthAccount)


async def get_user_manager(
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(_get_user_db)],
    settings: SettingsDep,
    email: EmailDep,
) -> AsyncIterator[UserManager]:
    """The user manager for one request."""
    yield UserManager(user_db, settings, email)


async def _get_token_db(
    session: SessionDep,
) -> AsyncIterator[SQLAlchemyAccessTokenDatabase[AccessToken]]:
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


TokenDbDep = Annotated[SQLAlchemyAccessTokenDatabase[AccessToken], Depends(_get_token_db)]


def token_strategy(token_db: TokenDbDep, settings: SettingsDep) -> TokenStrategy:
    """Issues, reads and ends sessions and bearer tokens (no CSRF check on reads)."""
    return TokenStrategy(token_db, lifetime_seconds=settings.auth.token_lifetime_seconds)


def _cookie_strategy(
    request: Request, token_db: TokenDbDep, settings: SettingsDep
) -> TokenStrategy:
    # the session cookie authenticates a write only together with the CSRF header
    return TokenStrategy(
        token_db, lifetime_seconds=settings.auth.token_lifetime_seconds, csrf_request=request
    )


def _cookie_secure() -> bool:
    settings = get_settings()
    if settings.auth.cookie_secure is not None:
        return settings.auth.cookie_secure
    return settings.api.public_url.startswith("https://")


cookie_transport = CookieTransport(
    cookie_name=SESSION_COOKIE,
    cookie_max_age=get_settings().auth.token_lifetime_seconds,
    cookie_secure=_cookie_secure(),
    cookie_httponly=True,
    cookie_samesite="lax",
)
cookie_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="cookie", transport=cookie_transport, get_strategy=_cookie_strategy
)
bearer_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="bearer",
    transport=BearerTransport(tokenUrl="/api/auth/token"),
    get_strategy=token_strategy,
)
# order matters: a valid bearer token wins, and the cookie (with its CSRF check) is read only
# when no bearer token signed the caller in
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [bearer_backend, cookie_backend])
current_active_user = fastapi_users.current_user(active=True)
#: ``(user, token)``: the raw session or bearer token that authenticated the request
current_active_user_token = fastapi_users.authenticator.current_user_token(active=True)
