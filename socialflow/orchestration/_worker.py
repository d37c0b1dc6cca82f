"""The worker: runs queued executions in-process as Prefect flow runs, with leases.

A worker claims queued executions (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), stamps each with
a lease it renews while the run is in progress, and awaits the async flow in its own event
loop: no process start per run, so the first node starts within a few hundred milliseconds of
the event. A worker that dies stops renewing; once its lease has expired another worker claims
the execution again (counting the attempt), marks the abandoned Prefect flow run crashed, and
runs it once more. Node-level send ledgers keep side effects from repeating.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, false, or_, select, update

from socialflow.core.db import utcnow
from socialflow.core.logging import get_logger
from socialflow.core.settings import EngineSettings
from socialflow.orchestration._cancel import CANCEL_CHANNEL, mark_prefect_cancelled
from socialflow.orchestration._conversation import conversation_turn
from socialflow.orchestration._dispatch import Dispatcher
from socialflow.orchestration._graph import compile_graph_json
from socialflow.orchestration._inbox import INBOX_CHANNEL, QUEUE_CHANNEL, notify
from socialflow.orchestration._inbox_models import FlowTrigger
from socialflow.orchestration._models import ExecutionStatus, FlowExecution, GraphSnapshot, NodeRun
from socialflow.orchestration._reconcile import reconcile_flow_runs
from socialflow.orchestration._recorder import cap_json
from socialflow.orchestration._relay import UpdateRelay
from socialflow.orchestration._runner import (
    CANCELLED_MESSAGE,
    RunMeta,
    attempt_run_name,
    start_graph_run,
)
from socialflow.orchestration._runtime import EngineRuntime
from socialflow.orchestration._startable import check_trigger, is_passing, start_failure
from socialflow.orchestration._wakeup import Wakeup

__all__ = ["Claim", "Worker", "prefect_client_limits", "prefect_clients"]

_log = get_logger(__name__)


@dataclass(frozen=True)
class Claim:
    """An execution this worker has claimed."""

    execution_id: uuid.UUID
    attempt: int
    abandoned_flow_run_id: uuid.UUID | None


class Worker:
    """Claims and runs queued executions; also dispatches inbox events.

    Args:
        runtime: Settings, database and registry of this process.
        concurrency: Runs in progress at once.
        lease_seconds: How long a claim holds without renewal.
        max_attempts: Claims of one execution before it is given up as crashed.
        poll_interval: Longest sleep without a wake-up (SQLite has no NOTIFY).
        dispatch: Also run a dispatcher in this process.
        schedule_poll: How often Prefect is asked for due scheduled runs (seconds).
        relay: Relay this worker's live run updates to API processes through the database.
        cancel_poll: Longest wait before a cancel request is noticed without a NOTIFY.
        prefect_cancel_poll: How often Prefect is asked whether a run in progress was
            cancelled from its UI (only while runs are in progress).
        isolate: Run each claimed execution in a fresh Python process of its own
            (``socialflow.orchestration._isolated``) instead of in this one: a crash in a run
            cannot take the worker or other runs down, at the cost of a process start per run.
            This process keeps the claim, the lease and the cancellation.
        reconcile_interval: How often Prefect's flow runs left unfinished by a stopped worker
            are looked for and settled (seconds).
    """

    def __init__(
        self,
        runtime: EngineRuntime,
        *,
        concurrency: int = 8,
        lease_seconds: float = 30.0,
        max_attempts: int = 3,
        poll_interval: float = 0.2,
        dispatch: bool = True,
        name: str | None = None,
        schedule_poll: float = 2.0,
        relay: bool = True,
        cancel_poll: float = 1.0,
        isolate: bool = False,
        prefect_cancel_poll: float = 2.0,
        reconcile_interval: float = 15.0,
    ) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.concurrency = concurrency
        self.lease = timedelta(seconds=lease_seconds)
        self.max_attempts = max_attempts
        self.poll_interval = poll_interval
        self.dispatch = dispatch
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.schedule_poll = schedule_poll
        self.relay = relay
        self.cancel_poll = cancel_poll
        self.isolate = isolate
        self.prefect_cancel_poll = prefect_cancel_poll
        self.reconcile_interval = reconcile_interval
        #: processes running isolated executions, by execution id
        self.children: dict[uuid.UUID, asyncio.subprocess.Process] = {}
        # runs in progress by execution id: claimed executions and the deployments' scheduled
        # runs (whose execution id is their flow run's id), all leased and renewed
        self._inflight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self.completed = 0
        self.cancelled = 0
        self._cleanup: set[uuid.UUID] = set()
        self._cancel_sent: set[uuid.UUID] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then let runs in progress finish.

        Clients the runs make get ``prefect_client_limits``; a process that shares one
        client among them enters ``prefect_clients`` around this, not the other way round."""
        with prefect_client_limits(self.runtime.settings.engine):
            await self._work(stop)

    async def _work(self, stop: asyncio.Event) -> None:
        url = self.db.url
        async with (
            Wakeup(url, (QUEUE_CHANNEL,), poll_interval=self.poll_interval) as queue_wakeup,
            Wakeup(url, (INBOX_CHANNEL,), poll_interval=self.poll_interval) as inbox_wakeup,
        ):
            helpers = [
                asyncio.create_task(self._renew_leases(stop), name="lease-renewal"),
                asyncio.create_task(self._scheduled_runs(stop), name="scheduled-runs"),
                asyncio.create_task(self._watch_cancellations(stop), name="cancellations"),
                asyncio.create_task(self._watch_prefect_cancels(stop), name="prefect-cancels"),
                asyncio.create_task(self._reconcile(stop), name="reconcile-flow-runs"),
            ]
            relay_stop = asyncio.Event()
            relay = None
            if self.relay:
                relay = UpdateRelay(self.db, self.runtime.events)
                relay_task = asyncio.create_task(relay.run(relay_stop), name="update-relay")
            if self.dispatch:
                dispatcher = Dispatcher(self.db, self.runtime.registry)
                helpers.append(
                    asyncio.create_task(dispatcher.run(stop, inbox_wakeup), name="dispatcher")
                )
            try:
                while not stop.is_set():
                    free = self.concurrency - len(self._inflight)
                    try:
                        claims = await self._claim(free) if free > 0 else []
                    except Exception as exc:
                        # the database is away (a restart, a failover): keep trying
                        _log.warning("claiming executions failed; retrying", error=repr(exc))
                        await asyncio.sleep(1.0)
                        continue
                    for claim in claims:
                        task = asyncio.create_task(self._execute(claim, queue_wakeup))
                        self._inflight[claim.execution_id] = task
                    if not claims or len(self._inflight) >= self.concurrency:
                        await queue_wakeup.wait()
            finally:
                if self._inflight:
                    await asyncio.gather(*self._inflight.values(), return_exceptions=True)
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                if relay is not None:
                    relay_stop.set()  # after the runs, so their last updates are relayed
                    await asyncio.gather(relay_task, return_exceptions=True)

    async def _claim(self, limit: int) -> list[Claim]:
        now = utcnow()
        async with self.db.sessionmaker() as session:
            query = (
                select(FlowExecution)
                .where(
                    or_(
                        FlowExecution.status == ExecutionStatus.QUEUED,
                        (FlowExecution.status == ExecutionStatus.RUNNING)
                        & (FlowExecution.lease_until < now),
                    ),
                    # events of one conversation run one after another, in their order; a run
                    # ending pokes this worker, which then claims the conversation's next one
                    conversation_turn(now),
                )
                .order_by(FlowExecution.created_at)
                .limit(limit)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            else:
                # SQLite has no row locks: take the database's write lock before reading, so
                # two workers never both read a row as claimable and both claim it
                await session.execute(
                    update(FlowExecution).where(false()).values(attempt=FlowExecution.attempt)
                )
            rows = list((await session.scalars(query)).all())
            claims = []
            crashed: list[tuple[uuid.UUID, int, uuid.UUID | None]] = []
            for row in rows:
                abandoned = (
                    row.prefect_flow_run_id if row.status == ExecutionStatus.RUNNING else None
                )
                if row.cancel_requested_at is not None:
                    # cancelled while a worker that has since died was running it
                    row.status = ExecutionStatus.CANCELLED
                    row.error = CANCELLED_MESSAGE
                    row.finished_at = now
                    if abandoned is not None:
                        self._cleanup.add(abandoned)
                    continue
                if row.attempt >= self.max_attempts:
                    row.status = ExecutionStatus.CRASHED
                    row.error = f"gave up after {row.attempt} attempts: each worker stopped mid-run"
                    row.finished_at = now
                    crashed.append((row.id, row.attempt, abandoned))  # its flow runs too
                    continue
                row.status = ExecutionStatus.RUNNING
                row.attempt += 1
                row.claimed_by = self.name
                row.lease_until = now + self.lease
                claims.append(Claim(row.id, row.attempt, abandoned))
            await session.commit()
        while self._cleanup:
            await mark_prefect_cancelled(self._cleanup.pop())
        for execution_id, attempts, known in crashed:
            await _crash_attempts(execution_id, attempts, known)
        return claims

    async def _execute(self, claim: Claim, wakeup: Wakeup) -> None:
        try:
            if self.isolate:
                await self._run_isolated(claim)
            else:
                await self._run(claim)
        except asyncio.CancelledError:
            if not await self._stopped_on_purpose(claim.execution_id):
                raise
        except Exception:
            # a passing failure (_run fails the lasting ones): the lease lapses and another
            # claim retries the execution
            _log.exception("execution could not be started", execution_id=str(claim.execution_id))
        finally:
            self._inflight.pop(claim.execution_id, None)
            self._cancel_sent.discard(claim.execution_id)
            wakeup.poke()

    async def _stopped_on_purpose(self, execution_id: uuid.UUID) -> bool:
        """A run of this worker was cancelled: handle it if this worker stopped it (its lease
        was lost, or a cancel was requested) and say so; ``False`` means the cancellation came
        from elsewhere (the worker shutting down) and must propagate."""
        if execution_id in self.runtime.lease_lost:
            _uncancel()
            self.runtime.lease_lost.discard(execution_id)
            _log.warning(
                "lease lost: another worker runs this execution now; stopped here",
                execution_id=str(execution_id),
            )
            return True
        if execution_id not in self.runtime.cancel_requested:
            return False
        _uncancel()
        await self._after_cancel(execution_id)
        return True

    async def _run(self, claim: Claim) -> None:
        async with self.db.sessionmaker() as session:
            row = await session.get(FlowExecution, claim.execution_id)
            if row is None:
                return
            if claim.attempt > 1:
                # a previous attempt died mid-run, perhaps before its flow run id was written:
                # start the graph afresh either way (the send ledger keeps sends from repeating)
                await session.execute(delete(NodeRun).where(NodeRun.execution_id == row.id))
                await session.commit()
            if claim.attempt > 1:
                await _crash_attempts(
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
            )
            trigger: dict[str, Any] = row.trigger_payload or {}
        if graph is None:
            await self._fail(claim.execution_id, "the flow version's graph is missing")
            return
        try:
            check_trigger(trigger)
            await self._start(claim, graph, trigger, meta)
        except Exception as exc:
            if is_passing(exc):
                raise  # the lease lapses and a later claim tries again
            # the next attempt would fail the same way: fail once, with the reason
            error = start_failure(exc)
            _log.warning("execution cannot start", execution_id=str(row.id), error=error)
            await self._fail(claim.execution_id, error, attempt=claim.attempt)
            await _crash_attempts(claim.execution_id, claim.attempt, None, reason=error)
            return
        self.completed += 1

    async def _start(
        self, claim: Claim, graph: str, trigger: dict[str, Any], meta: RunMeta
    ) -> None:
        """Run the graph; while Prefect's API fails (a passing error), try again in this slot
        with a capped backoff and jitter, ``engine.start_attempts`` times in all, then raise
        so the execution is given back. Never again once the run has recorded an outcome:
        an error while reporting the final state leaves the flow run to ``_reconcile``."""
        tries = self.runtime.settings.engine.start_attempts
        for n in range(1, tries + 1):
            try:
                await start_graph_run(graph, trigger, meta)
                return
            except Exception as exc:
                if not is_passing(exc):
                    raise
                if not await self._still_to_run(claim):
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
                    await self._give_back(claim)
                    raise
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
                await _crash_attempts(claim.execution_id, claim.attempt, None, quick=True)
                # and may have run nodes before it failed: the next try starts the graph
                # afresh, as a new claim would (the send ledger keeps sends from repeating)
                await self._forget_nodes(claim)

    async def _still_to_run(self, claim: Claim) -> bool:
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

    async def _forget_nodes(self, claim: Claim) -> None:
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

    async def _give_back(self, claim: Claim) -> None:
        """End this claim's lease now, so the next claim (any worker's) retries at once."""
        with contextlib.suppress(Exception):
            async with self.db.sessionmaker() as session:
                await session.execute(
                    update(FlowExecution)
                    .where(
                        FlowExecution.id == claim.execution_id,
                        FlowExecution.attempt == claim.attempt,
                        FlowExecution.status == ExecutionStatus.RUNNING,
                    )
                    .values(lease_until=utcnow())
                )
                await session.commit()

    async def _run_isolated(self, claim: Claim) -> None:
        """Run the claim in a child process; hold its lease here meanwhile."""
        args = [str(claim.execution_id), str(claim.attempt)]
        if claim.abandoned_flow_run_id is not None:
            args.append(str(claim.abandoned_flow_run_id))
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "socialflow.orchestration._isolated", *args
        )
        self.children[claim.execution_id] = child
        _log.info(
            "running execution in its own process",
            execution_id=str(claim.execution_id),
            pid=child.pid,
        )
        try:
            code = await child.wait()
        except asyncio.CancelledError:
            cancelled = claim.execution_id in self.runtime.cancel_requested
            # on request the child stops the run and records it cancelled; when the lease
            # was lost, the new owner records the run, so this one just ends
            child.send_signal(signal.SIGUSR1 if cancelled else signal.SIGKILL)
            try:
                await asyncio.shield(asyncio.wait_for(child.wait(), 30))
            except TimeoutError:
                child.kill()
            raise
        finally:
            self.children.pop(claim.execution_id, None)
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
        await self._give_back(claim)

    async def _after_cancel(self, execution_id: uuid.UUID) -> None:
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

    async def _watch_cancellations(self, stop: asyncio.Event) -> None:
        """Cancel the runs of this worker whose cancellation was requested."""
        async with Wakeup(self.db.url, (CANCEL_CHANNEL,), poll_interval=self.cancel_poll) as wake:
            while not stop.is_set():
                await wake.wait()
                running = dict(self._inflight)
                if not running:
                    continue
                try:
                    async with self.db.sessionmaker() as session:
                        ids = set(
                            await session.scalars(
                                select(FlowExecution.id).where(
                                    FlowExecution.id.in_(list(running)),
                                    FlowExecution.cancel_requested_at.is_not(None),
                                )
                            )
                        )
                except Exception:
                    _log.exception("checking for cancel requests failed")
                    continue
                # each run is cancelled once: a second cancel would interrupt its clean-up
                for execution_id in ids - self._cancel_sent:
                    _log.info("cancelling execution on request", execution_id=str(execution_id))
                    self._cancel_sent.add(execution_id)
                    self.runtime.cancel_requested.add(execution_id)
                    running[execution_id].cancel()

    async def _watch_prefect_cancels(self, stop: asyncio.Event) -> None:
        """Turn a cancel made in Prefect's UI (the flow run goes Cancelling) into a cancel
        request on the execution, which the watcher above carries out like one from the API."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.prefect_cancel_poll)
                return
            except TimeoutError:
                pass
            if not self._inflight:
                continue
            try:
                async with self.db.sessionmaker() as session:
                    by_run = dict(
                        (
                            await session.execute(
                                select(FlowExecution.prefect_flow_run_id, FlowExecution.id).where(
                                    FlowExecution.id.in_(list(self._inflight)),
                                    FlowExecution.prefect_flow_run_id.is_not(None),
                                    FlowExecution.cancel_requested_at.is_(None),
                                )
                            )
                        )
                        .tuples()
                        .all()
                    )
                if not by_run:
                    continue
                async with get_client() as client:
                    cancelling = await client.read_flow_runs(
                        flow_run_filter=FlowRunFilter(
                            id=FlowRunFilterId(any_=list(by_run)),
                            state=FlowRunFilterState(
                                type=FlowRunFilterStateType(any_=[StateType.CANCELLING])
                            ),
                        )
                    )
                ids = [by_run[run.id] for run in cancelling if run.id in by_run]
                if not ids:
                    continue
                async with self.db.sessionmaker() as session:
                    await session.execute(
                        update(FlowExecution)
                        .where(
                            FlowExecution.id.in_(ids), FlowExecution.cancel_requested_at.is_(None)
                        )
                        .values(cancel_requested_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
                    await notify(session, CANCEL_CHANNEL)
                    await session.commit()
                _log.info("cancel requested in Prefect", executions=[str(i) for i in ids])
            except Exception as exc:
                _log.warning("checking Prefect for cancelled runs failed", error=repr(exc))

    async def _reconcile(self, stop: asyncio.Event) -> None:
        """Every ``reconcile_interval``, settle the Prefect flow runs a stopped worker left
        unfinished (see ``_reconcile``): an execution that ended is never shown running."""
        from prefect.client.orchestration import get_client

        while not stop.is_set():
            try:
                async with get_client() as client:
                    await reconcile_flow_runs(client, self.db, grace=2 * self.lease)
            except Exception as exc:
                _log.warning("settling abandoned flow runs failed", error=repr(exc))
            try:
                await asyncio.wait_for(stop.wait(), self.reconcile_interval)
            except TimeoutError:
                pass

    async def _fail(
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

    async def _scheduled_runs(self, stop: asyncio.Event) -> None:
        """Run the deployments' due scheduled runs (schedule triggers, runs from the UI)."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        from socialflow.orchestration._deployments import WORK_POOL
        from socialflow.orchestration._runner import flow_for

        running: set[asyncio.Task[Any]] = set()
        while not stop.is_set():
            try:
                async with get_client() as client:
                    due = await client.get_scheduled_flow_runs_for_work_pool(
                        WORK_POOL, scheduled_before=utcnow()
                    )
                    for response in due:
                        if len(self._inflight) >= self.concurrency:
                            break  # the rest stay scheduled for the next poll
                        flow_run = response.flow_run
                        if not await _claim_scheduled(client, flow_run):
                            continue
                        meta = dict(flow_run.parameters.get("meta") or {})
                        # the flow run's id names the execution, so it can be found to cancel
                        meta["execution_id"] = str(flow_run.id)
                        meta["attempt"] = 1
                        parameters = {**flow_run.parameters, "meta": meta}
                        if not await self._lease_scheduled(client, flow_run, parameters):
                            continue
                        name = meta.get("flow_name", "scheduled")
                        task = asyncio.create_task(
                            self._scheduled_run(flow_for(name), flow_run, parameters)
                        )
                        running.add(task)
                        self._inflight[flow_run.id] = task
                        task.add_done_callback(running.discard)
            except ObjectNotFound:
                pass  # no schedule was ever published, so the work pool does not exist yet
            except Exception as exc:
                _log.warning("polling scheduled runs failed", error=repr(exc))
            await self._maintenance_runs(running)
            try:
                await asyncio.wait_for(stop.wait(), self.schedule_poll)
            except TimeoutError:
                pass
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    async def _maintenance_runs(self, running: set[asyncio.Task[Any]]) -> None:
        """Run the due runs of prefect.yaml's static deployments (token refresh, pruning,
        ingestion by hand) in this process, so the embedded stack needs no Prefect worker."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        for pool in STATIC_POOLS:
            try:
                async with get_client() as client:
                    due = await client.get_scheduled_flow_runs_for_work_pool(
                        pool, scheduled_before=utcnow()
                    )
                    for response in due:
                        flow_run = response.flow_run
                        if flow_run.deployment_id is None:
                            continue
                        deployment = await client.read_deployment(flow_run.deployment_id)
                        if not await _claim_scheduled(client, flow_run):
                            continue
                        flow = _load_entrypoint(deployment.entrypoint or "")
                        task = asyncio.create_task(_run_static(flow, flow_run))
                        running.add(task)
                        task.add_done_callback(running.discard)
            except ObjectNotFound:
                pass  # nothing was deployed to this pool
            except Exception as exc:
                _log.warning("polling maintenance runs failed", pool=pool, error=repr(exc))

    async def _lease_scheduled(
        self, client: Any, flow_run: Any, parameters: dict[str, Any]
    ) -> bool:
        """Record a claimed scheduled run as an execution this worker leases, before it starts:
        if the worker dies mid-run, the lease lapses and another worker runs it again (from
        the version's graph and the run's trigger payload), as for event-triggered runs.

        Returns:
            Whether to run it: a run whose parameters are not a graph run is failed in Prefect
            with the reason; one that could not be recorded is scheduled again.
        """
        from prefect.states import Failed, Scheduled

        flow_run_id: uuid.UUID = flow_run.id
        try:
            meta = RunMeta.model_validate(parameters.get("meta") or {})
            trigger = parameters.get("trigger") or {}
            graph = parameters["graph"]
            kind = compile_graph_json(graph, self.runtime.registry).trigger.spec.kind
        except Exception as exc:
            message = f"not a Socialflow graph run (parameters graph, trigger, meta): {exc}"
            await client.set_flow_run_state(flow_run_id, Failed(message=message[:1000]), force=True)
            return False
        limit = self.runtime.settings.engine.max_recorded_bytes
        now = utcnow()
        try:
            async with self.db.sessionmaker() as session:
                session.add(
                    FlowExecution(
                        id=flow_run_id,
                        workspace_id=meta.workspace_id,
                        flow_id=meta.flow_id,
                        flow_version_id=meta.flow_version_id,
                        flow_name=meta.flow_name,
                        version_number=meta.version,
                        trigger_kind=kind,
                        trigger_payload=cap_json(trigger, limit)[0],
                        status=ExecutionStatus.RUNNING,
                        prefect_flow_run_id=flow_run_id,
                        attempt=1,
                        claimed_by=self.name,
                        lease_until=now + self.lease,
                        started_at=now,
                    )
                )
                await session.commit()
        except Exception as exc:
            _log.warning(
                "recording a scheduled run failed; it waits for the next poll",
                flow_run_id=str(flow_run_id),
                error=repr(exc),
            )
            await client.set_flow_run_state(flow_run_id, Scheduled(), force=True)
            return False
        # the deployment gave it workspace and flow tags; add version and trigger like event runs
        tags = sorted(set(flow_run.tags or []) | set(meta.tags(kind)))
        if tags != sorted(flow_run.tags or []):
            try:
                await client.update_flow_run(flow_run_id, tags=tags)
            except Exception as exc:
                _log.warning("tagging a scheduled run failed", error=repr(exc))
        return True

    async def _scheduled_run(self, flow: Any, flow_run: Any, parameters: dict[str, Any]) -> None:
        from prefect.flow_engine import run_flow_async

        try:
            await run_flow_async(
                flow, flow_run=flow_run, parameters=parameters, return_type="state"
            )
            self.completed += 1
        except asyncio.CancelledError:
            if not await self._stopped_on_purpose(flow_run.id):
                raise
        finally:
            self._inflight.pop(flow_run.id, None)
            self._cancel_sent.discard(flow_run.id)

    async def _renew_leases(self, stop: asyncio.Event) -> None:
        """Extend the leases of the runs in progress; stop any run whose execution another
        worker has claimed meanwhile (its lease lapsed, e.g. while the database was away)."""
        interval = self.lease.total_seconds() / 3
        wait = interval
        while not stop.is_set():
            await asyncio.sleep(wait)
            ids = list(self._inflight)
            if not ids:
                continue
            try:
                async with self.db.sessionmaker() as session:
                    renewed = set(
                        (
                            await session.scalars(
                                update(FlowExecution)
                                .where(
                                    FlowExecution.id.in_(ids),
                                    FlowExecution.claimed_by == self.name,
                                )
                                .values(lease_until=utcnow() + self.lease)
                                .returning(FlowExecution.id)
                                .execution_options(synchronize_session=False)
                            )
                        ).all()
                    )
                    await session.commit()
            except Exception:
                # retry soon: a lease that lapses lets another worker run the execution too
                _log.exception("renewing leases failed; retrying in 1 s")
                wait = 1.0
                continue
            wait = interval
            for execution_id in set(ids) - renewed:
                task = self._inflight.get(execution_id)
                if task is not None and not task.done():
                    self.runtime.lease_lost.add(execution_id)
                    task.cancel()


@contextlib.contextmanager
def prefect_client_limits(engine: EngineSettings) -> Iterator[None]:
    """Within: Prefect's client waits at most ``engine.prefect_request_timeout_seconds`` for an
    answer and retries ``engine.prefect_client_retries`` times. Its defaults (60 s, 5 retries
    doubling from 2 s) held a worker's slots for minutes after the API had come back."""
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_REQUEST_TIMEOUT: engine.prefect_request_timeout_seconds,
            PREFECT_CLIENT_MAX_RETRIES: engine.prefect_client_retries,
        }
    ):
        yield


@contextlib.asynccontextmanager
async def prefect_clients(engine: EngineSettings) -> AsyncIterator[None]:
    """Within: one Prefect API client of each kind (sync and async) for the process, built
    under ``prefect_client_limits``. A client reads its request timeout once, when it is
    built, so clients made before the limits are entered keep Prefect's 60 s: a request the
    server lost then held a slot a minute after the API had come back."""
    from prefect.context import AsyncClientContext, SyncClientContext

    with prefect_client_limits(engine), SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create():
            yield


#: first and longest wait before a slot retries a start Prefect's API failed (seconds)
START_BACKOFF = 0.5
START_BACKOFF_CAP = 5.0
#: a clean-up call to Prefect between two tries of a start waits no longer than this
QUICK_CALL_SECONDS = 5.0

#: work pools of prefect.yaml's static deployments, run in-process by every worker
STATIC_POOLS = ("socialflow-maintenance", "socialflow-knowledge")


def _load_entrypoint(entrypoint: str) -> Any:
    """The flow named by a deployment entrypoint (``socialflow/pkg/_mod.py:name``), imported
    as a module of the installed package rather than from a file path."""
    import importlib

    path, _, name = entrypoint.partition(":")
    if not path.startswith("socialflow/") or not path.endswith(".py") or not name:
        msg = f"entrypoint {entrypoint!r} is not a Socialflow flow (socialflow/...py:name)"
        raise ValueError(msg)
    module = importlib.import_module(path[:-3].replace("/", "."))
    return getattr(module, name)


async def _run_static(flow: Any, flow_run: Any) -> None:
    from prefect.flow_engine import run_flow_async, run_flow_sync

    try:
        if flow.isasync:
            await run_flow_async(
                flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
            )
        else:
            await asyncio.to_thread(
                run_flow_sync,
                flow,
                flow_run=flow_run,
                parameters=flow_run.parameters,
                return_type="state",
            )
    except Exception as exc:
        _log.warning("maintenance run failed", flow_run_id=str(flow_run.id), error=repr(exc))


def _uncancel() -> None:
    """The cancellation was ours and is handled: clear it, or the clean-up's own awaits (anyio
    inside Prefect's client) would see a cancelled task and stop too."""
    task = asyncio.current_task()
    if task is not None:
        while task.cancelling():
            task.uncancel()


async def _claim_scheduled(client: Any, flow_run: Any) -> bool:
    """Propose Pending for a scheduled run; Prefect refuses a second claimant."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    try:
        result = await client.set_flow_run_state(flow_run.id, Pending())
    except Exception:
        return False
    return bool(result.status == SetStateStatus.ACCEPT)


async def _crash_attempts(
    execution_id: uuid.UUID,
    attempts: int,
    known: uuid.UUID | None,
    *,
    reason: str | None = None,
    quick: bool = False,
) -> None:
    """Mark Crashed every unfinished Prefect flow run of an execution's first ``attempts``
    attempts: the one its row recorded (``known``) and those found by their attempt names,
    which also catches a flow run created just before its worker died, unrecorded. With
    ``reason``, they are marked Failed with it (the run could not start)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.client.schemas.objects import State
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed, Failed

    names = [
        attempt_run_name(execution_id, n) for n in range(attempts if quick else 1, attempts + 1)
    ]
    try:
        async with asyncio.timeout(QUICK_CALL_SECONDS if quick else None), get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
            )
            if known is not None and all(run.id != known for run in runs):
                with contextlib.suppress(ObjectNotFound):
                    runs.append(await client.read_flow_run(known))
            for run in runs:
                if run.state is not None and run.state.is_final():
                    continue
                state: State[Any] = (
                    Crashed(message="the worker running it stopped")
                    if reason is None
                    else Failed(message=reason)
                )
                await client.set_flow_run_state(run.id, state, force=True)
    except Exception as exc:
        _log.warning("could not mark abandoned flow runs crashed", error=repr(exc))
