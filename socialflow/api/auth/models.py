"""Users and their linked OAuth identities (fastapi-users tables)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fastapi_users_db_sqlalchemy import (
    SQLAlchemyBaseOAuthAccountTableUUID,
    SQLAlchemyBaseUserTableUUID,
)
from fastapi_users_db_sqlalchemy.access_token import SQLAlchemyBaseAccessTokenTableUUID
from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from socialflow.core.db import Base, utcnow

__all__ = ["AccessToken", "LoginAttempt", "OAuthAccount", "User"]


class OAuthAccount(SQLAlchemyBaseOAuthAccountTableUUID, Base):
    """An identity at an OAuth provider linked to a user. Provider tokens are not kept:
    Socialflow only needs them to sign in, and a stored token would be one more secret."""

    __tablename__ = "oauth_account"


class User(SQLAlchemyBaseUserTableUUID, Base):
    """A person who signs in."""

    __tablename__ = "user"

    display_name: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    oauth_accounts: Mapped[list[OAuthAccount]] = relationship(lazy="selectin")


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    """A browser session or API bearer token: deleting the row ends it everywhere at once.

    ``token`` holds the SHA-256 (hex) of the token the client holds, never the token itself
    (``socialflow.api.auth.sessions``).
    """

    __tablename__ = "access_token"

    if TYPE_CHECKING:  # fastapi-users' AccessTokenProtocol declares a plain str
        token: str
    else:
        token: Mapped[str] = mapped_column(String(64), primary_key=True)


class LoginAttempt(Base):
    """One counted attempt: every attempt from an address, failures for an account."""

    __tablename__ = "login_attempt"
    __table_args__ = (Index("ix_login_attempt_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    #: ``ip:<address>`` or ``account:<lower-cased login>``
    key: Mapped[str] = mapped_column(String(400))
    at: Mapped[datetime] = mapped_column(index=True)
