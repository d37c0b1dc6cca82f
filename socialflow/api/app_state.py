"""What ``create_app`` keeps on ``app.state``, read through typed dependencies.

Routes never read ``request.app.state`` themselves: they name one of the aliases below (or
``socialflow.api.deps``, which re-exports them next to the user and role dependencies). Each
accessor takes an ``HTTPConnection``, so HTTP routes and WebSocket routes share them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from socialflow.api.auth.email import EmailSender
from socialflow.api.auth.ratelimit import LoginLimiter
from socialflow.core.db import Database
from socialflow.core.settings import Settings
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import InboxWriter, TriggerCache

__all__ = [
    "DatabaseDep",
    "EmailDep",
    "InboxDep",
    "LoginLimiterDep",
    "RegistryDep",
    "SessionDep",
    "SettingsDep",
    "TriggersDep",
    "get_app_settings",
    "get_database",
    "get_email",
    "get_inbox",
    "get_login_limiter",
    "get_registry",
    "get_session",
    "get_triggers",
]


def get_app_settings(connection: HTTPConnection) -> Settings:
    """The app's settings (``app.state.settings``)."""
    settings: Settings = connection.app.state.settings
    return settings


def get_database(connection: HTTPConnection) -> Database:
    """The app's database (``app.state.db``)."""
    database: Database = connection.app.state.db
    return database


def get_registry(connection: HTTPConnection) -> NodeRegistry:
    """The app's node registry (``app.state.registry``)."""
    registry: NodeRegistry = connection.app.state.registry
    return registry


def get_triggers(connection: HTTPConnection) -> TriggerCache:
    """The process's trigger cache (``app.state.triggers``), which the webhook routes read."""
    triggers: TriggerCache = connection.app.state.triggers
    return triggers


def get_inbox(connection: HTTPConnection) -> InboxWriter:
    """The process's inbox writer (``app.state.inbox``), which the webhook routes store through."""
    inbox: InboxWriter = connection.app.state.inbox
    return inbox


def get_email(connection: HTTPConnection) -> EmailSender:
    """Where the app sends its emails (``app.state.email``)."""
    email: EmailSender = connection.app.state.email
    return email


def get_login_limiter(connection: HTTPConnection) -> LoginLimiter:
    """The sign-in rate limiter (``app.state.login_limiter``)."""
    limiter: LoginLimiter = connection.app.state.login_limiter
    return limiter


async def get_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    """A database session for one request."""
    async with database.sessionmaker() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
RegistryDep = Annotated[NodeRegistry, Depends(get_registry)]
TriggersDep = Annotated[TriggerCache, Depends(get_triggers)]
InboxDep = Annotated[InboxWriter, Depends(get_inbox)]
EmailDep = Annotated[EmailSender, Depends(get_email)]
LoginLimiterDep = Annotated[LoginLimiter, Depends(get_login_limiter)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
