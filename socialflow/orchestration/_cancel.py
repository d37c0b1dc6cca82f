"""Cancelling an execution: at once when it has not started, through its worker when it runs.

A queued execution is marked cancelled in one conditional UPDATE, so a worker claiming it at
the same moment either sees it cancelled or has already taken it (then the request falls
through to the running case). A running one gets ``cancel_requested_at``; the worker holding it
is woken by a NOTIFY (PostgreSQL) or notices on its next poll, cancels the run in-process,
records unfinished nodes as cancelled and moves the Prefect flow run to Cancelled. An execution
whose worker died before it noticed is not run again: the next claim finds the request.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.db import rows_touched, utcnow
from socialflow.core.errors import ConflictError, NotFoundError
from socialflow.core.logging import get_logger
from socialflow.orchestration._models import ExecutionStatus, FlowExecution
from socialflow.orchestration._wait_models import ConversationWait, WaitStatus

__all__ = ["CANCEL_CHANNEL", "mark_prefect_cancelled", "request_cancel"]

CANCEL_CHANNEL = "socialflow_cancel"
_log = get_logger(__name__)
#: not in a worker's hands: cancelled in one UPDATE (a waiting run's wait ends with it)
_NOT_STARTED = (ExecutionStatus.PENDING, ExecutionStatus.QUEUED, ExecutionStatus.WAITING)


async def request_cancel(
    workspace_id: uuid.UUID, execution_id: uuid.UUID, *, session: AsyncSession
) -> FlowExecution:
    """Cancel an execution of a workspace (commits).

    Returns:
        The execution: ``cancelled`` when it had not started, still ``running`` with
        ``cancel_requested_at`` set when its worker has yet to stop it.

    Raises:
        NotFoundError: No such execution in the workspace.
        ConflictError: It already finished.
    """
    now = utcnow()
    waiting = await session.scalar(
        select(FlowExecution.prefect_flow_run_id).where(
            FlowExecution.id == execution_id,
            FlowExecution.workspace_id == workspace_id,
            FlowExecution.status == ExecutionStatus.WAITING,
        )
    )
    result = await session.execute(
        update(FlowExecution)
        .where(
            FlowExecution.id == execution_id,
            FlowExecution.workspace_id == workspace_id,
            FlowExecution.status.in_(_NOT_STARTED),
        )
        .values(
            status=ExecutionStatus.CANCELLED,
            cancel_requested_at=now,
            error="cancelled on request before it started",
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if rows_touched(result):
        await session.execute(
            update(ConversationWait)
            .where(
                ConversationWait.execution_id == execution_id,
                ConversationWait.status == WaitStatus.WAITING,
            )
            .values(status=WaitStatus.CANCELLED, resolved_at=now)
            .execution_options(synchronize_session=False)
        )
    else:
        await session.execute(
            update(FlowExecution)
            .where(
                FlowExecution.id == execution_id,
                FlowExecution.workspace_id == workspace_id,
                FlowExecution.status == ExecutionStatus.RUNNING,
                FlowExecution.cancel_requested_at.is_(None),
            )
            .values(cancel_requested_at=now)
            .execution_options(synchronize_session=False)
        )
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(text(f"NOTIFY {CANCEL_CHANNEL}"))
    await session.commit()
    if waiting is not None and rows_touched(result):
        await mark_prefect_cancelled(waiting)  # the Paused flow run ends with its wait
    row = await session.scalar(
        select(FlowExecution)
        .where(FlowExecution.id == execution_id, FlowExecution.workspace_id == workspace_id)
        .execution_options(populate_existing=True)
    )
    if row is None:
        msg = f"execution {execution_id} not found in this workspace"
        raise NotFoundError(msg, code="execution_not_found")
    if row.status not in (ExecutionStatus.RUNNING, ExecutionStatus.CANCELLED) or (
        row.status == ExecutionStatus.CANCELLED and row.cancel_requested_at is None
    ):
        msg = f"execution {execution_id} already finished ({row.status}); nothing to cancel"
        raise ConflictError(msg, code="execution_finished")
    return row


async def mark_prefect_cancelled(flow_run_id: uuid.UUID | None) -> None:
    """Move a Prefect flow run to Cancelled (whatever state the engine left it in)."""
    if flow_run_id is None:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    try:
        async with get_client() as client:
            # after the engine reported Crashed while unwinding: Cancelled is the last word
            await client.set_flow_run_state(
                flow_run_id, Cancelled(message="cancelled on request"), force=True
            )
    except Exception as exc:
        _log.warning("could not mark the flow run cancelled", error=repr(exc))
