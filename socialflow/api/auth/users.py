"""fastapi-users wiring: the user manager, session and token backends, current-user deps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi_users import BaseUserManager, FastAPIUsers, InvalidPasswordException, UUIDIDMixin
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    CookieTransport,
    JWTStrategy,
)
from fastapi_users.authentication.strategy.db import DatabaseStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyAccessTokenDatabase
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.auth.email import EmailMessage, EmailSender
from socialflow.api.auth.models import AccessToken, OAuthAccount, User
from socialflow.api.middleware import SESSION_COOKIE
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings, get_settings

__all__ = [
    "UserManager",
    "bearer_backend",
    "cookie_backend",
    "current_active_user",
    "fastapi_users",
    "get_session",
    "get_user_manager",
]

_log = get_logger(__name__)
MIN_PASSWORD_LENGTH = 8


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A database session for one request."""
    async with request.app.state.db.sessionmaker() as session:
        yield session


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
        if len(password) < MIN_PASSWORD_LENGTH:
            msg = f"password must be at least {MIN_PASSWORD_LENGTH} characters"
            raise InvalidPasswordException(reason=msg)
        email = getattr(user, "email", "") or ""
        if email and email.split("@")[0].lower() in password.lower():
            msg = "password must not contain the email name"
            raise InvalidPasswordException(reason=msg)

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
    session: Annotated[AsyncSession, Depends(get_session)],
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User, OAuthAccount)


async def get_user_manager(
    request: Request,
    user_db: Annotated[SQLAlchemyUserDatabase[User, uuid.UUID], Depends(_get_user_db)],
) -> AsyncIterator[UserManager]:
    """The user manager for one request."""
    yield UserManager(user_db, request.app.state.settings, request.app.state.email)


async def _get_token_db(
    session: Annotated[AsyncSession, Depends(get_session)],
) -> AsyncIterator[SQLAlchemyAccessTokenDatabase[AccessToken]]:
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


def _session_strategy(
    request: Request,
    token_db: Annotated[SQLAlchemyAccessTokenDatabase[AccessToken], Depends(_get_token_db)],
) -> DatabaseStrategy[User, uuid.UUID, AccessToken]:
    settings: Settings = request.app.state.settings
    return DatabaseStrategy(token_db, lifetime_seconds=settings.auth.token_lifetime_seconds)


def _jwt_strategy(request: Request) -> JWTStrategy[User, uuid.UUID]:
    settings: Settings = request.app.state.settings
    return JWTStrategy(
        secret=settings.secret_key, lifetime_seconds=settings.auth.token_lifetime_seconds
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
    name="cookie", transport=cookie_transport, get_strategy=_session_strategy
)
bearer_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name="jwt", transport=BearerTransport(tokenUrl="/api/auth/token"), get_strategy=_jwt_strategy
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [bearer_backend, cookie_backend])
current_active_user = fastapi_users.current_user(active=True)
