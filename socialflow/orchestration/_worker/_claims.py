"""The worker's claims on executions: taking them, keeping their leases, giving them back.

Claims go through ``socialflow.core.lease`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the
write lock first on SQLite). A claim counts an attempt and records this worker as the holder;
the lease is renewed while the run is in progress. An execution whose lease lapsed (its worker
died) is claimed again; one claimed ``max_attempts`` times is given up as crashed, and one
whose cancellation was requested meanwhile ends cancelled instead of running again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select, update

from socialflow.core.db import Database, utcnow
from socialflow.core.lease import Candidate, Held, Leases, LeaseTable
from socialflow.core.logging import get_logger
from socialflow.orchestration._cancel import mark_prefect_cancelled
from socialflow.orchestration._conversation import conversation_turn
from socialflow.orchestration._models import ExecutionStatus, FlowExecution, NodeRun
from socialflow.orchestration._runner import CANCELLED_MESSAGE
from socialflow.orchestration._worker._abandoned import crash_attempts
from socialflow.orchestration._worker._inflight import Claim, InFlight

__all__ = ["EXECUTION_LEASES", "ExecutionClaims"]

_log = get_logger(__name__)

#: where ``flow_execution`` keeps its leases
EXECUTION_LEASES = LeaseTable(
    model=FlowExecution,
    id=FlowExecution.id,
    status=FlowExecution.status,
    attempts=FlowExecution.attempt,
    stamp=FlowExecution.lease_until,
    owner=FlowExecution.claimed_by,
    waiting=ExecutionStatus.QUEUED,
    held=ExecutionStatus.RUNNING,
    exhausted=ExecutionStatus.CRASHED,
)


class ExecutionClaims:
    """Claims, renews and ends one worker's leases on executions.

    Args:
        db: The application database.
        owner: The worker's name, recorded as the holder of its claims.
        lease: How long a claim holds without renewal.
        max_attempts: Claims of one execution before it is given up as crashed.
    """

    def __init__(self, db: Database, *, owner: str, lease: timedelta, max_attempts: int) -> None:
        self.db = db
        self.owner = owner
        self.lease = lease
        self.leases = Leases(EXECUTION_LEASES, duration=lease, max_attempts=max_attempts)
        # flow runs of executions cancelled while their worker was away, still to be marked
        self._cleanup: set[uuid.UUID] = set()

    async def claim(self, limit: int) -> list[Claim]:
        """Claim up to ``limit`` executions, oldest first, in their conversations' order.

        Returns:
            The claims taken; executions given up or cancelled instead are settled, with their
            Prefect flow runs.
        """
        now = utcnow()
        async with self.db.sessionmaker() as session:
            result = await self.leases.claim(
                session,
                limit=limit,
                owner=self.owner,
                columns=[FlowExecution.prefect_flow_run_id],
                # events of one conversation run one after another, in their order; a run
                # ending pokes this worker, which then claims the conversation's next one
                where=[conversation_turn(now)],
                order_by=[FlowExecution.created_at],
                # cancelled while a worker that has since died was running it
                withdraw=FlowExecution.cancel_requested_at.is_not(None),
                withdrawn_values={
                    "status": ExecutionStatus.CANCELLED,
                    "error": CANCELLED_MESSAGE,
                    "finished_at": now,
                },
                exhausted_values=lambda attempts: {
                    "error": f"gave up after {attempts} attempts: each worker stopped mid-run",
                    "finished_at": now,
                },
                now=now,
            )
            await session.commit()

        for row in result.withdrawn:
            if (flow_run_id := _abandoned(row)) is not None:
                self._cleanup.add(flow_run_id)
        while self._cleanup:
            await mark_prefect_cancelled(self._cleanup.pop())
        for row in result.exhausted:
            await crash_attempts(row.id, row.attempts, _abandoned(row))  # its flow runs too
        return [Claim(held.id, held.attempt, _abandoned(row)) for held, row in result.claimed]

    async def renew(self, held: Iterable[Held]) -> set[uuid.UUID]:
        """Extend the leases of these runs while this worker holds them.

        Returns:
            The ids renewed; any other was claimed by another worker meanwhile.
        """
        async with self.db.sessionmaker() as session:
            # a run that recorded its outcome and is still finishing keeps its lease too
            renewed = await self.leases.renew(session, held, owner=self.owner, held_only=False)
            await session.commit()
        return renewed

    async def keep(
        self, inflight: InFlight, lease_lost: set[uuid.UUID], stop: asyncio.Event
    ) -> None:
        """Renew the leases of the runs in progress every third of the lease until ``stop``;
        stop any run whose execution another worker has claimed meanwhile (its lease lapsed,
        e.g. while the database was away), noting it in ``lease_lost``."""
        interval = self.lease.total_seconds() / 3
        wait = interval
        while not stop.is_set():
            await asyncio.sleep(wait)
            held = inflight.leases()
            if not held:
                continue
            try:
                renewed = await self.renew(held)
            except Exception:
                # retry soon: a lease that lapses lets another worker run the execution too
                _log.exception("renewing leases failed; retrying in 1 s")
                wait = 1.0
                continue
            wait = interval
            for lease in held:
                task = inflight.task(lease.id)
                if lease.id not in renewed and task is not None and not task.done():
                    lease_lost.add(lease.id)
                    task.cancel()

    async def give_back(self, claim: Claim) -> None:
        """End this claim's lease now, so the next claim (any worker's) retries at once."""
        with contextlib.suppress(Exception):
            async with self.db.sessionmaker() as session:
                await self.leases.lapse(session, claim.held)
                await session.commit()

    async def still_to_run(self, claim: Claim) -> bool:
        """Whether the claim still holds its execution and the run recorded no outcome."""
        async with self.db.sessionmaker() as session:
            row = (
                await session.execute(
                    select(FlowExecution.status, FlowExecution.attempt).where(
                        FlowExecution.id == claim.execution_id
                    )
                )
            ).first()
        return (
            row is not None
            and row.attempt == claim.attempt
            and row.status == ExecutionStatus.RUNNING
        )

    async def forget_nodes(self, claim: Claim) -> None:
        """Delete the execution's node records while this claim still holds it (fenced by
        the attempt: a claim that took it over meanwhile keeps its own)."""
        held = (
            select(FlowExecution.id)
            .where(
                FlowExecution.id == claim.execution_id,
                FlowExecution.attempt == claim.attempt,
                FlowExecution.status == ExecutionStatus.RUNNING,
            )
            .exists()
        )
        async with self.db.sessionmaker() as session:
            await session.execute(
                delete(NodeRun).where(NodeRun.execution_id == claim.execution_id, held)
            )
            await session.commit()

    async def fail(
        self, execution_id: uuid.UUID, message: str, *, attempt: int | None = None
    ) -> None:
        """Record the execution failed; with ``attempt``, only while that claim is its latest."""
        fence = [] if attempt is None else [FlowExecution.attempt == attempt]
        async with self.db.sessionmaker() as session:
            await session.execute(
                update(FlowExecution)
                .where(FlowExecution.id == execution_id, *fence)
                .values(status=ExecutionStatus.FAILED, error=message, finished_at=utcnow())
            )
            await session.commit()

    async def record_held(self, execution: FlowExecution) -> None:
        """Insert an execution already running under a lease of this worker (attempt 1): a
        scheduled run this worker took from Prefect."""
        now = utcnow()
        execution.status = ExecutionStatus.RUNNING
        execution.attempt = 1
        execution.claimed_by = self.owner
        execution.lease_until = self.leases.stamp(now)
        execution.started_at = now
        async with self.db.sessionmaker() as session:
            session.add(execution)
            await session.commit()


def _abandoned(row: Candidate) -> uuid.UUID | None:
    """The Prefect flow run a dead worker left running for the row, if it was running."""
    flow_run_id: uuid.UUID | None = row.row.prefect_flow_run_id
    return flow_run_id if row.status == ExecutionStatus.RUNNING else None
