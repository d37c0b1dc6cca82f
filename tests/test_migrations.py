"""Migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

import socialflow.orchestration  # noqa: F401 - registers every table
from socialflow.core.db import Base


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(db: Any) -> None:
    async with db.engine.connect() as connection:
        diff = await connection.run_sync(_diff)
        tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert diff == [], f"models and migrations differ; add a revision: {diff}"
    assert {"flow_execution", "node_run", "node_type", "alembic_version"} <= tables


async def test_upgrade_is_idempotent(database_url: str) -> None:
    from socialflow.migrations import upgrade

    await upgrade(database_url)
    await upgrade(database_url)
