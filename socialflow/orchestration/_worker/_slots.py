"""A worker's slots: each runs one claimed execution (or scheduled run) to its end.

A slot loads what the claim runs (graph snapshot, trigger payload, run metadata), starts the
graph in-process as a Prefect flow run (or in a child process with ``isolate``), retries a
start Prefect's API failed, fails once what can never start, and gives the lease back when it
cannot tell. A run cancelled by this worker (on request, or because its lease was lost) is
settled here; any other cancellation (the worker shutting down) propagates.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from socialflow.core.db import utcnow
from socialflow.core.logging import get_logger
from socialflow.orchestration._cancel import mark_prefect_cancelled
from socialflow.orchestration._inbox_models import FlowTrigger
from socialflow.orchestration._models import ExecutionStatus, FlowExecution, GraphSnapshot, NodeRun
from socialflow.orchestration._runner import CANCELLED_MESSAGE, RunMeta, start_graph_run
from socialflow.orchestration._runtime import EngineRuntime
from socialflow.orchestration._startable import check_trigger, is_passing, start_failure
from socialflow.orchestration._waits import forget_unfinished, resume_state
from socialflow.orchestration._wakeup import Wakeup
from socialflow.orchestration._worker._abandoned import crash_attempts
from socialflow.orchestration._worker._claims import ExecutionClaims
from socialflow.orchestration._worker._inflight import Claim, InFlight, uncancel
from socialflow.orchestration._worker._isolation import run_in_child

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun

__all__ = ["START_BACKOFF", "START_BACKOFF_CAP", "SlotRunner"]

_log = get_logger(__name__)

#: first and longest wait before a slot retries a start Prefect's API failed (seconds)
START_BACKOFF = 0.5
START_BACKOFF_CAP = 5.0


@dataclass(frozen=True)
class _Start:
    """What a claim runs: the graph, its trigger payload and the run's metadata."""

    graph: str | None
    trigger: dict[str, Any]
    meta: RunMeta


class SlotRunner:
    """Runs claims in the worker's slots and settles how they end.

    Args:
        runtime: Settings, database and registry of this process.
        claims: The worker's claims, to fail, give back or fence by.
        inflight: The runs in progress; a run leaves it when it ends.
        isolate: Run each claim in a child process of its own.
    """

    def __init__(
        self,
        runtime: EngineRuntime,
        claims: ExecutionClaims,
        inflight: InFlight,
        *,
        isolate: bool = False,
    ) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.claims = claims
        self.inflight = inflight
        self.isolate = isolate
        #: processes running isolated executions, by execution id
        self.children: dict[uuid.UUID, asyncio.subprocess.Process] = {}
        self.completed = 0
        self.cancelled = 0

    async def execute(self, claim: Claim, wakeup: Wakeup) -> None:
        """Run a claim in its slot; free the slot and poke ``wakeup`` when it ends."""
        try:
            if self.isolate:
                await self._run_isolated(claim)
            else:
                await self.run(claim)
        except asyncio.CancelledError:
            if not await self.stopped_on_purpose(claim.execution_id):
                raise
        except Exception:
            # a passing failure (run fails the lasting ones): the lease lapses and another
            # claim retries the execution
            _log.exception("execution could not be started", execution_id=str(claim.execution_id))
        finally:
            self.inflight.discard(claim.execution_id)
            wakeup.poke()

    async def run_scheduled(
        self, flow: Flow[..., Any], flow_run: FlowRun, parameters: dict[str, Any]
    ) -> None:
        """Run a deployment's scheduled run this worker took and leased, in its slot."""
        from prefect.exceptions import Pause
        from prefect.flow_engine import run_flow_async

        try:
            await run_flow_async(
                flow, flow_run=flow_run, parameters=parameters, return_type="state"
            )
            self.completed += 1
        except Pause:
            self.completed += 1  # the run waits for a contact's reply; a claim resumes it
        except asyncio.CancelledError:
            if not await self.stopped_on_purpose(flow_run.id):
                raise
        finally:
            self.inflight.discard(flow_run.id)

    async def stopped_on_purpose(self, execution_id: uuid.UUID) -> bool:
        """A run of this worker was cancelled: handle it if this worker stopped it (its lease
        was lost, or a cancel was requested) and say so; ``False`` means the cancellation came
        from elsewhere (the worker shutting down) and must propagate."""
        if execution_id in self.runtime.lease_lost:
            uncancel()
            self.runtime.lease_lost.discard(execution_id)
            _log.warning(
                "lease lost: another worker runs this execution now; stopped here",
                execution_id=str(execution_id),
            )
            return True
        if execution_id not in self.runtime.cancel_requested:
            return False
        uncancel()
        await self.after_cancel(execution_id)
        return True

    async def run(self, claim: Claim) -> None:
        """Run a claim in this process, to its end."""
        start = await self._prepare(claim)
        if start is None:
            return
        if start.graph is None:
            await self.claims.fail(claim.execution_id, "the flow version's graph is missing")
            return
        try:
            check_trigger(start.trigger)
            await self._start(claim, start.graph, start.trigger, start.meta)
        except Exception as exc:
            if is_passing(exc):
                raise  # the lease lapses and a later claim tries again
            # the next attempt would fail the same way: fail once, with the reason
            error = start_failure(exc)
            _log.warning(
                "execution cannot start", execution_id=str(claim.execution_id), error=error
            )
            await self.claims.fail(claim.execution_id, error, attempt=claim.attempt)
            await crash_attempts(claim.execution_id, claim.attempt, None, reason=error)
            return
        self.completed += 1

    async def _prepare(self, claim: Claim) -> _Start | None:
        """Load what the claim runs; after an attempt that died, start it afresh. ``None``:
        the execution is gone."""
        async with self.db.sessionmaker() as session:
            row = await session.get(FlowExecution, claim.execution_id)
            if row is None:
                return None
            resume = await resume_state(session, row.id)
            if resume is not None:
                # a continuation after a wait: the nodes completed before it stand; the
                # rest is recorded again. Its first claim resumes the Paused flow run; a
                # later one (the continuation's worker died) crashes what it left running
                await forget_unfinished(session, row.id, resume)
                await session.commit()
                if claim.attempt > 1:
                    await crash_attempts(
                        claim.execution_id, claim.attempt - 1, claim.abandoned_flow_run_id
                    )
            elif claim.attempt > 1:
                # a previous attempt died mid-run, perhaps before its flow run id was written:
                # start the graph afresh either way (the send ledger keeps sends from repeating)
                await session.execute(delete(NodeRun).where(NodeRun.execution_id == row.id))
                await session.commit()
                await crash_attempts(
                    claim.execution_id, claim.attempt - 1, claim.abandoned_flow_run_id
                )
            graph = await session.scalar(
                select(GraphSnapshot.graph).where(GraphSnapshot.id == row.flow_version_id)
            )
            # with engine.event_runs_in_deployment, runs of a published flow are created from
            # its deployment (listed under it in Prefect's UI); sandboxed test runs of drafts
            # are not the published flow
            deployment_id = (
                None
                if row.sandbox
                or row.flow_id is None
                or not self.runtime.settings.engine.event_runs_in_deployment
                else await session.scalar(
                    select(FlowTrigger.deployment_id).where(FlowTrigger.flow_id == row.flow_id)
                )
            )
            meta = RunMeta(
                execution_id=row.id,
                flow_name=row.flow_name,
                workspace_id=row.workspace_id,
                flow_id=row.flow_id,
                flow_version_id=row.flow_version_id,
                version=row.version_number,
                trigger_event_id=row.trigger_event_id,
                sandbox=row.sandbox,
                attempt=claim.attempt,
                deployment_id=deployment_id,
                resume_wait_id=resume.wait_id if resume else None,
                resume_flow_run_id=(
                    row.prefect_flow_run_id if resume and claim.attempt == 1 else None
                ),
            )
            return _Start(graph, row.trigger_payload or {}, meta)

    async def _start(
        self, claim: Claim, graph: str, trigger: dict[str, Any], meta: RunMeta
    ) -> None:
        """Run the graph; while Prefect's API fails (a passing error), try again in this slot
        with a capped backoff and jitter, ``engine.start_attempts`` times in all, then raise
        so the execution is given back. Never again once the run has recorded an outcome:
        an error while reporting the final state leaves the flow run to the reconciler."""
        tries = self.runtime.settings.engine.start_attempts
        for n in range(1, tries + 1):
            try:
                await start_graph_run(graph, trigger, meta)
                return
            except Exception as exc:
                if not is_passing(exc):
                    raise
                if not await self.claims.still_to_run(claim):
                    _log.warning(
                        "Prefect's API failed after the run ended; its flow run is settled later",
                        execution_id=str(claim.execution_id),
                        error=repr(exc),
                    )
                    return
                if n == tries:
                    _log.warning(
                        "Prefect's API failed; giving the execution back for a later claim",
                        execution_id=str(claim.execution_id),
                        tries=n,
                        error=repr(exc),
                    )
                    await self.claims.give_back(claim)
                    raise
                await self._before_next_try(claim, n, exc)

    async def _before_next_try(self, claim: Claim, n: int, exc: Exception) -> None:
        """Wait before try ``n + 1`` of a start, and clear what try ``n`` left behind."""
        wait = min(START_BACKOFF_CAP, START_BACKOFF * 2 ** (n - 1))
        wait *= random.uniform(0.5, 1.0)  # jitter: slots do not retry in step
        _log.warning(
            "Prefect's API failed; retrying the run's start",
            execution_id=str(claim.execution_id),
            attempt=n,
            retry_in=round(wait, 2),
            error=repr(exc),
        )
        await asyncio.sleep(wait)
        # the failed try may have left its flow run Pending or Running
        await crash_attempts(claim.execution_id, claim.attempt, None, quick=True)
        # and may have run nodes before it failed: the next try starts the graph
        # afresh, as a new claim would (the send ledger keeps sends from repeating)
        await self.claims.forget_nodes(claim)

    async def _run_isolated(self, claim: Claim) -> None:
        """Run the claim in a child process; hold its lease here meanwhile."""
        code = await run_in_child(claim, self.children, self.runtime.cancel_requested)
        if code == 0:
            self.completed += 1
            return
        # the process died (a crash in a node, out of memory, killed): let the lease lapse
        # now, so the next claim (this worker's or another's) runs the execution again
        _log.warning(
            "the process running the execution ended abnormally; it will be run again",
            execution_id=str(claim.execution_id),
            exit_code=code,
        )
        await self.claims.give_back(claim)

    async def after_cancel(self, execution_id: uuid.UUID) -> None:
        """The run stopped on request: make sure the row says so, and so does Prefect."""
        self.runtime.cancel_requested.discard(execution_id)
        self.cancelled += 1
        async with self.db.sessionmaker() as session:
            await session.execute(
                update(FlowExecution)
                .where(
                    FlowExecution.id == execution_id,
                    FlowExecution.status.in_((ExecutionStatus.RUNNING, ExecutionStatus.QUEUED)),
                )
                .values(
                    status=ExecutionStatus.CANCELLED,
                    error=CANCELLED_MESSAGE,
                    finished_at=utcnow(),
                    lease_until=None,
                )
            )
            flow_run_id = await session.scalar(
                select(FlowExecution.prefect_flow_run_id).where(FlowExecution.id == execution_id)
            )
            await session.commit()
        await mark_prefect_cancelled(flow_run_id)
