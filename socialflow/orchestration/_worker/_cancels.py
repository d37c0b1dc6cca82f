"""The cancel watcher: stops the worker's runs whose cancellation was requested.

Requests come from the API (``request_cancel`` sets ``cancel_requested_at`` and NOTIFYs) and
from Prefect's UI (the flow run moves to Cancelling), which this watcher turns into a request
on the execution while it has runs in progress. A requested run's task is cancelled once; the
slot records the run cancelled (``SlotRunner.stopped_on_purpose``).
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select, update

from socialflow.core.db import utcnow
from socialflow.core.logging import get_logger
from socialflow.orchestration._cancel import CANCEL_CHANNEL
from socialflow.orchestration._inbox import notify
from socialflow.orchestration._models import FlowExecution
from socialflow.orchestration._runtime import EngineRuntime
from socialflow.orchestration._wakeup import Wakeup
from socialflow.orchestration._worker._inflight import InFlight

__all__ = ["CancelWatcher"]

_log = get_logger(__name__)


class CancelWatcher:
    """Watches for cancel requests on the runs in progress.

    Args:
        runtime: The process's runtime; ``cancel_requested`` tells a slot why it stopped.
        inflight: The runs in progress.
        poll: Longest wait before a request is noticed without a NOTIFY (seconds).
        prefect_poll: How often Prefect is asked whether a run in progress was cancelled from
            its UI, while runs are in progress (seconds).
    """

    def __init__(
        self, runtime: EngineRuntime, inflight: InFlight, *, poll: float, prefect_poll: float
    ) -> None:
        self.runtime = runtime
        self.db = runtime.db
        self.inflight = inflight
        self.poll = poll
        self.prefect_poll = prefect_poll

    async def watch_requests(self, stop: asyncio.Event) -> None:
        """Cancel the runs of this worker whose cancellation was requested, until ``stop``."""
        async with Wakeup(self.db.url, (CANCEL_CHANNEL,), poll_interval=self.poll) as wake:
            while not stop.is_set():
                await wake.wait()
                running = list(self.inflight)
                if not running:
                    continue
                try:
                    requested = await self._requested(running)
                except Exception:
                    _log.exception("checking for cancel requests failed")
                    continue
                # each run is cancelled once: a second cancel would interrupt its clean-up
                for execution_id in requested - self.inflight.cancel_sent:
                    task = self.inflight.task(execution_id)
                    if task is None:
                        continue
                    _log.info("cancelling execution on request", execution_id=str(execution_id))
                    self.inflight.cancel_sent.add(execution_id)
                    self.runtime.cancel_requested.add(execution_id)
                    task.cancel()

    async def _requested(self, running: list[uuid.UUID]) -> set[uuid.UUID]:
        async with self.db.sessionmaker() as session:
            return set(
                await session.scalars(
                    select(FlowExecution.id).where(
                        FlowExecution.id.in_(running),
                        FlowExecution.cancel_requested_at.is_not(None),
                    )
                )
            )

    async def watch_prefect(self, stop: asyncio.Event) -> None:
        """Turn a cancel made in Prefect's UI (the flow run goes Cancelling) into a cancel
        request on the execution, which ``watch_requests`` carries out like one from the API."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.prefect_poll)
                return
            except TimeoutError:
                pass
            if not self.inflight:
                continue
            try:
                await self._request_prefect_cancels()
            except Exception as exc:
                _log.warning("checking Prefect for cancelled runs failed", error=repr(exc))

    async def _request_prefect_cancels(self) -> None:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterId,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType

        async with self.db.sessionmaker() as session:
            by_run = dict(
                (
                    await session.execute(
                        select(FlowExecution.prefect_flow_run_id, FlowExecution.id).where(
                            FlowExecution.id.in_(list(self.inflight)),
                            FlowExecution.prefect_flow_run_id.is_not(None),
                            FlowExecution.cancel_requested_at.is_(None),
                        )
                    )
                )
                .tuples()
                .all()
            )
        if not by_run:
            return
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
            return
        async with self.db.sessionmaker() as session:
            await session.execute(
                update(FlowExecution)
                .where(FlowExecution.id.in_(ids), FlowExecution.cancel_requested_at.is_(None))
                .values(cancel_requested_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            await notify(session, CANCEL_CHANNEL)
            await session.commit()
        _log.info("cancel requested in Prefect", executions=[str(i) for i in ids])
