"""Run history of a workspace: list and read executions, and the live state a stream starts
from."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from socialflow.api.executions.schemas import (
    ExecutionPage,
    ExecutionQuery,
    ExecutionRead,
    ExecutionSummaryRead,
    NodeRunRead,
)
from socialflow.api.workspaces.models import Membership, Role
from socialflow.core.db import utcnow
from socialflow.core.errors import NotFoundError
from socialflow.core.settings import Settings
from socialflow.orchestration import (
    ExecutionEvent,
    ExecutionStatus,
    FlowExecution,
    LiveExecution,
    NodeEvent,
)

__all__ = [
    "MAX_ACTIVE",
    "current_state",
    "get",
    "get_member_role",
    "list_for_workspace",
    "prefect_ui_url",
]

MAX_ACTIVE = 500
# anything not final is current: pending, running, and whatever waiting state comes next
_FINAL = tuple(
    s.value
    for s in (
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.CRASHED,
    )
)
_NOT_STARTED = datetime.max.replace(tzinfo=UTC)
_R = TypeVar("_R", bound=ExecutionSummaryRead)


def prefect_ui_url(settings: Settings) -> str | None:
    """The Prefect UI's base URL: the configured one, else the Prefect API URL without its
    trailing ``/api``; None when neither is known."""
    if settings.prefect.ui_url:
        return settings.prefect.ui_url.rstrip("/")
    api = settings.prefect.api_url or os.environ.get("PREFECT_API_URL")
    if not api:
        return None
    return api.rstrip("/").removesuffix("/api")


async def list_for_workspace(
    workspace_id: uuid.UUID,
    query: ExecutionQuery,
    *,
    prefect_ui: str | None,
    session: AsyncSession,
) -> ExecutionPage:
    """A page of a workspace's executions matching ``query``, newest first.

    Args:
        workspace_id: Whose executions.
        query: Filters, page size and offset.
        prefect_ui: Base URL of Prefect's UI for ``prefect_url``; None leaves it empty.
        session: The database session.
    """
    conditions = _conditions(workspace_id, query)
    total = await session.scalar(select(func.count()).select_from(FlowExecution).where(*conditions))
    rows = await session.scalars(
        select(FlowExecution)
        .where(*conditions)
        .order_by(FlowExecution.created_at.desc(), FlowExecution.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    items = [_with_link(ExecutionSummaryRead.model_validate(row), prefect_ui) for row in rows]
    return ExecutionPage(items=items, total=total or 0, limit=query.limit, offset=query.offset)


async def get(
    workspace_id: uuid.UUID,
    execution_id: uuid.UUID,
    *,
    prefect_ui: str | None,
    session: AsyncSession,
) -> ExecutionRead:
    """One execution of the workspace with every node run.

    Args:
        workspace_id: The workspace it must belong to.
        execution_id: The execution.
        prefect_ui: Base URL of Prefect's UI for ``prefect_url``; None leaves it empty.
        session: The database session.

    Raises:
        NotFoundError: No such execution in this workspace.
    """
    row = await session.scalar(
        select(FlowExecution)
        .where(FlowExecution.id == execution_id, FlowExecution.workspace_id == workspace_id)
        .options(selectinload(FlowExecution.node_runs))
    )
    if row is None:
        msg = f"execution {execution_id} not found in this workspace"
        raise NotFoundError(msg, code="execution_not_found")
    return _with_link(ExecutionRead.model_validate(row), prefect_ui)


async def get_member_role(
    workspace_id: uuid.UUID, user_id: uuid.UUID, *, session: AsyncSession
) -> Role | None:
    """The user's role in the workspace; None when not a member (or no such workspace)."""
    role = await session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user_id
        )
    )
    return Role(role) if role is not None else None


async def current_state(
    workspace_id: uuid.UUID,
    live: list[LiveExecution],
    *,
    execution_id: uuid.UUID | None,
    prefect_ui: str | None,
    session: AsyncSession,
) -> list[ExecutionRead]:
    """What a stream starts from: the workspace's unfinished (pending, running) executions (at
    most ``MAX_ACTIVE``, newest first), or the one ``execution_id`` whatever its status.

    Args:
        workspace_id: Whose executions.
        live: The hub's snapshot taken when the subscription began: the state this process
            published, which may be ahead of the database (node updates are written in
            batches) and overrides it.
        execution_id: Only this execution.
        prefect_ui: Base URL of Prefect's UI for ``prefect_url``.
        session: The database session.
    """
    live_ids = [entry.execution.execution_id for entry in live]
    query = (
        select(FlowExecution)
        .where(FlowExecution.workspace_id == workspace_id)
        .options(selectinload(FlowExecution.node_runs))
        .order_by(FlowExecution.created_at.desc(), FlowExecution.id.desc())
        .limit(MAX_ACTIVE)
    )
    if execution_id is not None:
        query = query.where(FlowExecution.id == execution_id)
    else:
        unfinished = FlowExecution.status.not_in(_FINAL)
        query = query.where(or_(unfinished, FlowExecution.id.in_(live_ids)))
    found = {
        row.id: _with_link(ExecutionRead.model_validate(row), prefect_ui)
        for row in await session.scalars(query)
    }
    for entry in live:
        key = entry.execution.execution_id
        found[key] = _overlay(found.get(key), entry, prefect_ui)
    return sorted(found.values(), key=lambda e: (e.created_at, e.id), reverse=True)


def _conditions(workspace_id: uuid.UUID, filters: ExecutionQuery) -> list[ColumnElement[bool]]:
    conditions = [FlowExecution.workspace_id == workspace_id]
    if filters.flow_id is not None:
        conditions.append(FlowExecution.flow_id == filters.flow_id)
    if filters.flow_version_id is not None:
        conditions.append(FlowExecution.flow_version_id == filters.flow_version_id)
    if filters.status:
        conditions.append(FlowExecution.status.in_([s.value for s in filters.status]))
    if filters.created_after is not None:
        conditions.append(FlowExecution.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(FlowExecution.created_at < filters.created_before)
    return conditions


def _with_link(read: _R, prefect_ui: str | None) -> _R:
    if prefect_ui and read.prefect_flow_run_id is not None:
        read.prefect_url = f"{prefect_ui}/runs/flow-run/{read.prefect_flow_run_id}"
    return read


def _overlay(
    read: ExecutionRead | None, live: LiveExecution, prefect_ui: str | None
) -> ExecutionRead:
    event = live.execution
    if read is None:  # the row is not written yet: build it from what was published
        read = _from_event(event)
    read.status = event.status
    read.error = event.error
    read.error_node_id = event.error_node_id
    read.started_at = event.started_at or read.started_at
    read.finished_at = event.finished_at
    read.prefect_flow_run_id = event.prefect_flow_run_id or read.prefect_flow_run_id
    nodes = {n.node_id: n for n in read.node_runs}
    for node in live.nodes:
        nodes[node.node_id] = _node_overlay(nodes.get(node.node_id), node)
    read.node_runs = sorted(nodes.values(), key=_graph_order)
    return _with_link(read, prefect_ui)


def _from_event(event: ExecutionEvent) -> ExecutionRead:
    return ExecutionRead(
        id=event.execution_id,
        workspace_id=event.workspace_id,
        flow_id=event.flow_id,
        flow_version_id=event.flow_version_id,
        flow_name=event.flow_name,
        trigger_kind="unknown",
        trigger_event_id=None,
        status=event.status,
        sandbox=event.sandbox,
        error=event.error,
        error_node_id=event.error_node_id,
        prefect_flow_run_id=event.prefect_flow_run_id,
        created_at=event.started_at or utcnow(),
        started_at=event.started_at,
        finished_at=event.finished_at,
        node_runs=[],
    )


def _node_overlay(read: NodeRunRead | None, event: NodeEvent) -> NodeRunRead:
    ports = list(event.fired_ports) if event.fired_ports is not None else None
    if read is None:
        return NodeRunRead(
            node_id=event.node_id,
            kind=event.kind,
            version=event.version,
            label=event.label,
            seq=event.seq,
            status=event.status,
            attempts=event.attempts,
            input=None,
            output=None,
            input_truncated=False,
            output_truncated=False,
            fired_ports=ports,
            error=event.error,
            error_code=event.error_code,
            prefect_task_run_id=event.prefect_task_run_id,
            started_at=event.started_at,
            finished_at=event.finished_at,
        )
    return read.model_copy(
        update={
            "status": event.status,
            "attempts": event.attempts,
            "fired_ports": ports,
            "error": event.error,
            "error_code": event.error_code,
            "prefect_task_run_id": event.prefect_task_run_id,
            "started_at": event.started_at,
            "finished_at": event.finished_at,
        }
    )


def _graph_order(node: NodeRunRead) -> tuple[int, datetime]:
    return node.seq, node.started_at or _NOT_STARTED
