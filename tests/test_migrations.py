"""Migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

# importing a package registers its tables (broadcasts is not imported by orchestration)
import socialflow.broadcasts
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


@pytest.mark.postgres
async def test_processes_starting_together_migrate_once_on_postgresql() -> None:
    """API replicas and workers all run the migrations at start: on a fresh database they must
    queue behind one another rather than deadlock or trip over each other's tables."""
    import asyncio

    import psycopg

    from socialflow.migrations import upgrade
    from tests.conftest import POSTGRES_URL, _postgres_admin_dsn

    name = f"socialflow_test_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(upgrade(url) for _ in range(4)), return_exceptions=True), 120
        )
        assert results == [None] * 4
    finally:
        with psycopg.connect(_postgres_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
