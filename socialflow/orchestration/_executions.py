"""Reading execution records back, and mirroring the node registry into ``node_type``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from socialflow.core.errors import NotFoundError
from socialflow.nodes import NodeRegistry
from socialflow.orchestration._models import FlowExecution, NodeType
from socialflow.orchestration._recorder import reported_usage

if TYPE_CHECKING:
    from socialflow.knowledge import Usage

__all__ = ["ExecutionRead", "NodeRunRead", "get_execution", "sync_node_types"]


class NodeRunRead(BaseModel):
    """One node of an execution, as recorded."""

    model_config = ConfigDict(from_attributes=True)

    node_id: str
    kind: str
    version: int
    label: str
    seq: int
    status: str
    attempts: int
    input: Any
    output: Any
    input_truncated: bool
    output_truncated: bool
    fired_ports: list[str] | None
    error: str | None
    error_code: str | None
    prefect_task_run_id: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration_ms(self) -> float | None:
        """Wall time from first start to finish, in milliseconds."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() * 1000

    @property
    def usage(self) -> Usage | None:
        """The model usage the node reported (kept when its output was truncated)."""
        return reported_usage(self.output)


class ExecutionRead(BaseModel):
    """An execution with every node run."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    flow_name: str
    workspace_id: uuid.UUID | None
    flow_id: uuid.UUID | None
    flow_version_id: uuid.UUID | None
    trigger_kind: str
    status: str
    sandbox: bool
    prefect_flow_run_id: uuid.UUID | None
    error: str | None
    error_node_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # model usage summed over the AI nodes, written when the run finishes
    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    node_runs: list[NodeRunRead]

    def node(self, node_id: str) -> NodeRunRead:
        """The node run of ``node_id``."""
        return next(n for n in self.node_runs if n.node_id == node_id)


async def get_execution(session: AsyncSession, execution_id: uuid.UUID) -> ExecutionRead:
    """An execution with its node runs.

    Raises:
        NotFoundError: No such execution.
    """
    row = await session.scalar(
        select(FlowExecution)
        .where(FlowExecution.id == execution_id)
        .options(selectinload(FlowExecution.node_runs))
    )
    if row is None:
        msg = f"execution {execution_id} does not exist"
        raise NotFoundError(msg)
    return ExecutionRead.model_validate(row)


async def sync_node_types(session: AsyncSession, registry: NodeRegistry) -> int:
    """Make ``node_type`` mirror ``registry``: upsert every kind, mark vanished ones unavailable.

    Returns:
        How many kinds are available.
    """
    rows = {(r.kind, r.version): r for r in await session.scalars(select(NodeType))}
    seen: set[tuple[str, int]] = set()
    for node in registry:
        described = node.describe()
        key = (node.kind, node.version)
        seen.add(key)
        values = {
            "title": described.title,
            "category": described.category,
            "description": described.description,
            "source": registry.source(node),
            "available": True,
            "spec": described.model_dump(mode="json"),
        }
        row = rows.get(key)
        if row is None:
            session.add(NodeType(kind=node.kind, version=node.version, **values))
        else:
            for name, value in values.items():
                if getattr(row, name) != value:
                    setattr(row, name, value)
    for key, row in rows.items():
        if key not in seen and row.available:
            row.available = False
    await session.flush()
    return len(seen)
