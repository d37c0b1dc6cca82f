"""Alembic environment: runs on a connection handed over by ``socialflow.migrations.upgrade``
or, for ``alembic`` on the command line, on the configured URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

# importing a package registers its tables on Base.metadata
import socialflow.api.models
import socialflow.broadcasts
import socialflow.contacts
import socialflow.knowledge
import socialflow.orchestration
import socialflow.publishing  # noqa: F401
from socialflow.core.db import Base
from socialflow.core.settings import get_settings

# the instagram package loads a module when one of its names is first used: name its tables
from socialflow.instagram import InstagramAccount, OutboxMessage

target_metadata = Base.metadata
_INSTAGRAM_TABLES = (InstagramAccount.__table__, OutboxMessage.__table__)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(
        _run_on_url(context.config.get_main_option("sqlalchemy.url") or get_settings().database_url)
    )
