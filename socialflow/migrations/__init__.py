"""Alembic migrations of the application database, applied with ``socialflow db upgrade``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["alembic_config", "upgrade"]

_HERE = Path(__file__).parent
_LOCK = 0x50C1A1F10  # the advisory lock migrations hold


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at these migrations (and at ``url`` when given)."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.set_main_option("path_separator", "os")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` on the database at ``url``."""
    if url.startswith("sqlite"):
        # the SQLite file's folder must exist before the first connection
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # several processes start at once (API replicas, workers): one migrates, the
                # others wait for its transaction and then find the schema at head
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
            await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
