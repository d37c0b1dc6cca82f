"""Bring Prefect's flow runs in line with the execution rows when a worker died between the two.

A run records its execution finished (the row) just before the Prefect engine reports the flow
run's final state. A worker killed in that gap leaves an execution that is done and a flow run
that says Running forever; no lease lapses, because the row is no longer running. Likewise a
worker taking an execution over marks the previous attempt's flow run Crashed, and a passing
Prefect error at that moment leaves it Running.

``reconcile_flow_runs`` finds the worker-created flow runs Prefect still holds unfinished
(their names say which execution and attempt they are) and settles each whose execution has
moved on: a finished execution's own flow run takes the row's outcome; an attempt the
execution has left behind is Crashed. A flow run whose execution is still running is left to
its lease. Runs are settled only once their row has been finished for ``grace``, so a live
worker reporting the final state itself is never raced.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, select

from socialflow.core.db import Database, utcnow
from socialflow.core.logging import get_logger
from socialflow.orchestration._models import ExecutionStatus, FlowExecution

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun, State

__all__ = ["reconcile_flow_runs"]

_log = get_logger(__name__)

_NAME = re.compile(r"^execution-([0-9a-f-]{36})-attempt-(\d+)$")
_FINAL = (
    ExecutionStatus.COMPLETED,
    ExecutionStatus.FAILED,
    ExecutionStatus.CANCELLED,
    ExecutionStatus.CRASHED,
)


async def reconcile_flow_runs(
    client: PrefectClient, db: Database, *, grace: timedelta, limit: int = 200
) -> int:
    """Settle the unfinished worker flow runs whose executions have moved on.

    Args:
        client: A Prefect client.
        db: The application database.
        grace: How long an execution must have been finished (or taken over) before its
            flow run is settled here.
        limit: Flow runs looked at in one pass, oldest first.

    Returns:
        How many flow runs were settled.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterName,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    unfinished = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(like_="execution-"),
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(
                    any_=[StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]
                )
            ),
        ),
        sort=FlowRunSort.EXPECTED_START_TIME_ASC,
        limit=limit,
    )
    attempts: dict[uuid.UUID, list[tuple[FlowRun, int]]] = {}
    for run in unfinished:
        match = _NAME.match(run.name or "")
        if match is not None:
            attempts.setdefault(uuid.UUID(match[1]), []).append((run, int(match[2])))
    if not attempts:
        return 0
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    FlowExecution.id,
                    FlowExecution.status,
                    FlowExecution.attempt,
                    FlowExecution.error,
                    FlowExecution.finished_at,
                    FlowExecution.prefect_flow_run_id,
                ).where(FlowExecution.id.in_(list(attempts)))
            )
        ).all()
    settled_before = utcnow() - grace
    settled = 0
    for row in rows:
        for run, attempt in attempts[row.id]:
            state = _settled_state(row, run, attempt, settled_before)
            if state is None:
                continue
            await client.set_flow_run_state(run.id, state, force=True)
            settled += 1
    if settled:
        _log.info("settled flow runs left unfinished by a stopped worker", flow_runs=settled)
    return settled


def _settled_state(
    row: Row[Any], run: FlowRun, attempt: int, before: datetime
) -> State[Any] | None:
    """The state ``run`` should end in given its execution ``row``, or ``None`` to leave it."""
    from prefect.states import Cancelled, Completed, Crashed, Failed

    if attempt < row.attempt:
        # a later attempt took the execution over (this one's worker stopped or lost its lease)
        return Crashed(message="the worker running it stopped; a later attempt ran it")
    if attempt > row.attempt:
        return None
    if row.status not in _FINAL or row.finished_at is None or row.finished_at > before:
        return None  # still running (its lease decides), or only just finished
    if row.prefect_flow_run_id is not None and row.prefect_flow_run_id != run.id:
        return Crashed(message="the worker running it stopped")
    if row.status == ExecutionStatus.COMPLETED:
        return Completed(message="the execution completed; its worker stopped before saying so")
    if row.status == ExecutionStatus.CANCELLED:
        return Cancelled(message=row.error or "cancelled")
    if row.status == ExecutionStatus.FAILED:
        return Failed(message=(row.error or "failed")[:1000])
    return Crashed(message=(row.error or "the worker running it stopped")[:1000])
