"""Retention: old executions are deleted with their node runs, in batches, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from socialflow.core.db import Database, utcnow
from socialflow.core.errors import UserError
from socialflow.migrations import upgrade
from socialflow.orchestration import FlowExecution, NodeRun, prune_executions

ROOT = Path(__file__).resolve().parents[2]


async def add_execution(db: Database, *, days_old: float, nodes: int = 2) -> uuid.UUID:
    created = utcnow() - timedelta(days=days_old)
    execution_id = uuid.uuid4()
    async with db.session() as session:
        session.add(
            FlowExecution(
                id=execution_id,
                flow_name="retention",
                trigger_kind="trigger.manual",
                status="completed",
                created_at=created,
            )
        )
        await session.flush()
        for n in range(nodes):
            session.add(
                NodeRun(
                    execution_id=execution_id,
                    node_id=f"n{n}",
                    kind="test.sleep",
                    version=1,
                    label=f"n{n}",
                    status="completed",
                )
            )
    return execution_id


async def count(db: Database, model: Any, column: Any, ids: list[uuid.UUID]) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(column.in_(ids)))
            or 0
        )


async def test_old_executions_go_with_their_node_runs_and_recent_ones_stay(db: Database) -> None:
    await prune_executions(db, older_than_days=7)  # whatever earlier tests left that is old
    old = [await add_execution(db, days_old=d) for d in (7.01, 8, 30, 365, 9)]
    recent = [await add_execution(db, days_old=d) for d in (0, 1, 6.99)]

    assert await prune_executions(db, older_than_days=7, batch_size=2) == len(old)

    assert await count(db, FlowExecution, FlowExecution.id, old) == 0
    assert await count(db, NodeRun, NodeRun.execution_id, old) == 0
    assert await count(db, FlowExecution, FlowExecution.id, recent) == len(recent)
    assert await count(db, NodeRun, NodeRun.execution_id, recent) == 2 * len(recent)
    assert await prune_executions(db, older_than_days=7) == 0


async def test_a_retention_below_one_day_is_refused(db: Database) -> None:
    with pytest.raises(UserError) as refused:
        await prune_executions(db, older_than_days=0)
    assert refused.value.code == "invalid_retention"


async def test_the_cli_prunes_a_fresh_sqlite_database_and_prints_the_count(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'prune.db'}"
    await upgrade(url)
    db = Database(url)
    try:
        for days in (10, 40):
            await add_execution(db, days_old=days)
        kept = await add_execution(db, days_old=2)
    finally:
        await db.dispose()

    result = subprocess.run(
        [sys.executable, "-m", "socialflow.cli", "executions", "prune", "--days", "7"],
        cwd=ROOT,
        env={**os.environ, "SOCIALFLOW_DATABASE_URL": url, "SOCIALFLOW_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "deleted 2 execution(s) older than 7 days" in result.stdout

    db = Database(url)
    try:
        assert await count(db, FlowExecution, FlowExecution.id, [kept]) == 1
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(NodeRun)) == 2
    finally:
        await db.dispose()
