"""``Worker``: the facade that claims executions and keeps its parts running beside its slots.

The parts, one job each: ``ExecutionClaims`` (claim, renew, give back), ``SlotRunner`` (run a
claim to its end), ``ScheduledRuns`` (the deployments' due runs, and the static ones),
``CancelWatcher`` (requests from the API and from Prefect's UI), the reconciler (Prefect flow
runs a stopped worker left), the sweep of waits past their deadline, and, when asked, the
``Dispatcher`` and the ``UpdateRelay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta

from socialflow.contacts import ProfileReader
from socialflow.core.logging import get_logger
from socialflow.orchestration._dispatch import Dispatcher
from socialflow.orchestration._inbox import INBOX_CHANNEL, QUEUE_CHANNEL
from socialflow.orchestration._relay import UpdateRelay
from socialflow.orchestration._runtime import EngineRuntime
from socialflow.orchestration._waits import expire_due
from socialflow.orchestration._wakeup import Wakeup
from socialflow.orchestration._worker._abandoned import reconcile_forever
from socialflow.orchestration._worker._cancels import CancelWatcher
from socialflow.orchestration._worker._claims import ExecutionClaims
from socialflow.orchestration._worker._inflight import InFlight
from socialflow.orchestration._worker._prefect import prefect_client_limits
from socialflow.orchestration._worker._scheduled import ScheduledRuns
from socialflow.orchestration._worker._slots import SlotRunner

__all__ = ["Worker"]

_log = get_logger(__name__)


class Worker:
    """Claims and runs queued executions; also dispatches inbox events.

    A worker claims queued executions, stamps each with a lease it renews while the run is in
    progress, and awaits the async flow in its own event loop: no process start per run, so
    the first node starts within a few hundred milliseconds of the event. A worker that dies
    stops renewing; once its lease has expired another worker claims the execution again
    (counting the attempt), marks the abandoned Prefect flow run crashed, and runs it once
    more. Node-level send ledgers keep side effects from repeating.

    Args:
        runtime: Settings, database and registry of this process.
        concurrency: Runs in progress at once.
        lease_seconds: How long a claim holds without renewal.
        max_attempts: Claims of one execution before it is given up as crashed.
        poll_interval: Longest sleep without a wake-up (SQLite has no NOTIFY).
        dispatch: Also run a dispatcher in this process.
        name: This worker's name, recorded on its claims (default: host, pid and a suffix).
        schedule_poll: How often Prefect is asked for due scheduled runs (seconds).
        relay: Relay this worker's live run updates to API processes through the database.
        cancel_poll: Longest wait before a cancel request is noticed without a NOTIFY.
        isolate: Run each claimed execution in a fresh Python process of its own
            (``socialflow.orchestration._isolated``) instead of in this one: a crash in a run
            cannot take the worker or other runs down, at the cost of a process start per run.
            This process keeps the claim, the lease and the cancellation.
        prefect_cancel_poll: How often Prefect is asked whether a run in progress was
            cancelled from its UI (only while runs are in progress).
        reconcile_interval: How often Prefect's flow runs left unfinished by a stopped worker
            are looked for and settled (seconds).
        wait_poll: How often waits past their deadline are looked for, to resume their runs
            through the asking node's ``timeout`` port (seconds).
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
        wait_poll: float = 1.0,
    ) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_interval = poll_interval
        self.dispatch = dispatch
        self.relay = relay
        self.reconcile_interval = reconcile_interval
        self.wait_poll = wait_poll
        self.inflight = InFlight(concurrency)
        self.claims = ExecutionClaims(
            runtime.db, owner=self.name, lease=self.lease, max_attempts=max_attempts
        )
        self.slots = SlotRunner(runtime, self.claims, self.inflight, isolate=isolate)
        self.scheduled = ScheduledRuns(
            runtime, self.claims, self.inflight, self.slots, poll=schedule_poll
        )
        self.cancels = CancelWatcher(
            runtime, self.inflight, poll=cancel_poll, prefect_poll=prefect_cancel_poll
        )

    @property
    def completed(self) -> int:
        """Runs this worker executed to their end (whatever their outcome)."""
        return self.slots.completed

    @property
    def cancelled(self) -> int:
        """Runs this worker stopped on request."""
        return self.slots.cancelled

    @property
    def children(self) -> dict[uuid.UUID, asyncio.subprocess.Process]:
        """Processes running isolated executions, by execution id."""
        return self.slots.children

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
            helpers = self._start_helpers(stop, inbox_wakeup)
            relay_stop = asyncio.Event()
            relay = None
            if self.relay:
                relay = asyncio.create_task(
                    UpdateRelay(self.db, self.runtime.events).run(relay_stop), name="update-relay"
                )
            try:
                await self._claim_until(stop, queue_wakeup)
            finally:
                await self.inflight.wait()
                for helper in helpers:
                    helper.cancel()
                await asyncio.gather(*helpers, return_exceptions=True)
                if relay is not None:
                    relay_stop.set()  # after the runs, so their last updates are relayed
                    await asyncio.gather(relay, return_exceptions=True)

    def _start_helpers(self, stop: asyncio.Event, inbox_wakeup: Wakeup) -> list[asyncio.Task[None]]:
        lost = self.runtime.lease_lost
        reconcile = reconcile_forever(
            self.db, grace=2 * self.lease, interval=self.reconcile_interval, stop=stop
        )
        helpers = [
            asyncio.create_task(self.claims.keep(self.inflight, lost, stop), name="lease-renewal"),
            asyncio.create_task(self.scheduled.run(stop), name="scheduled-runs"),
            asyncio.create_task(self.cancels.watch_requests(stop), name="cancellations"),
            asyncio.create_task(self.cancels.watch_prefect(stop), name="prefect-cancels"),
            asyncio.create_task(reconcile, name="reconcile-flow-runs"),
            asyncio.create_task(self._expire_waits(stop), name="wait-timeouts"),
        ]
        if self.dispatch:
            runtime = self.runtime
            profiles = ProfileReader(
                self.db, runtime.key_wrapper(), runtime.settings.instagram, runtime.http_client()
            )
            dispatcher = Dispatcher(self.db, runtime.registry, profiles=profiles.refresh)
            helpers.append(
                asyncio.create_task(dispatcher.run(stop, inbox_wakeup), name="dispatcher")
            )
        return helpers

    async def _expire_waits(self, stop: asyncio.Event) -> None:
        """Every ``wait_poll`` seconds until ``stop``, queue the runs whose waits timed out."""
        while not stop.is_set():
            try:
                await expire_due(self.db)
            except Exception as exc:
                _log.warning("looking for expired waits failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.wait_poll)

    async def _claim_until(self, stop: asyncio.Event, wakeup: Wakeup) -> None:
        """Fill free slots with claims until ``stop``, sleeping on ``wakeup`` when there is
        nothing to claim or no slot is free."""
        while not stop.is_set():
            free = self.inflight.free
            try:
                claims = await self.claims.claim(free) if free > 0 else []
            except Exception as exc:
                # the database is away (a restart, a failover): keep trying
                _log.warning("claiming executions failed; retrying", error=repr(exc))
                await asyncio.sleep(1.0)
                continue
            for claim in claims:
                task = asyncio.create_task(self.slots.execute(claim, wakeup))
                self.inflight.add(claim.held, task)
            if not claims or self.inflight.free <= 0:
                await wakeup.wait()
