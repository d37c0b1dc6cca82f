"""The scheduled-run poller: takes the due runs of the deployments' work pool from Prefect.

Runs the deployments' schedules or Prefect's UI created (schedule triggers, custom runs) are
claimed in Prefect (Pending, which a second claimant is refused), recorded as an execution
whose id is the flow run's id under this worker's lease, and run in a slot like event runs: a
worker that dies mid-run leaves them to another. Each round also starts the due runs of the
static deployments (``_static_runs``).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

from socialflow.broadcasts import BroadcastContext, set_broadcast_context
from socialflow.core.db import utcnow
from socialflow.core.lease import Held
from socialflow.core.logging import get_logger
from socialflow.orchestration._graph import compile_graph_json
from socialflow.orchestration._models import FlowExecution
from socialflow.orchestration._recorder import cap_json
from socialflow.orchestration._runner import RunMeta
from socialflow.orchestration._runtime import EngineRuntime
from socialflow.orchestration._worker import _static_runs
from socialflow.orchestration._worker._claims import ExecutionClaims
from socialflow.orchestration._worker._inflight import InFlight
from socialflow.orchestration._worker._prefect import claim_scheduled
from socialflow.orchestration._worker._slots import SlotRunner
from socialflow.publishing import PublishingContext, set_publishing_context, sweep_due_posts

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun

__all__ = ["ScheduledRuns"]

_log = get_logger(__name__)


class ScheduledRuns:
    """Polls Prefect for due scheduled runs and hands each to a free slot.

    Args:
        runtime: Settings, database and registry of this process.
        claims: The worker's claims: a scheduled run is leased like a claimed execution.
        inflight: The runs in progress; scheduled runs take slots too.
        slots: Runs what is taken.
        poll: How often Prefect is asked for due runs (seconds).
    """

    def __init__(
        self,
        runtime: EngineRuntime,
        claims: ExecutionClaims,
        inflight: InFlight,
        slots: SlotRunner,
        *,
        poll: float,
    ) -> None:
        self.runtime = runtime
        self.claims = claims
        self.inflight = inflight
        self.slots = slots
        self.poll = poll
        self._running: set[asyncio.Task[None]] = set()
        self._swept_at = 0.0
        # publishing runs (scheduled posts) taken from the static pools use this process's
        # database and keys
        set_publishing_context(
            PublishingContext(settings=runtime.settings, db=runtime.db, keys=runtime.key_wrapper())
        )
        # so do broadcast runs (their deployment sits in the same pool)
        set_broadcast_context(
            BroadcastContext(settings=runtime.settings, db=runtime.db, keys=runtime.key_wrapper())
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Poll every ``poll`` seconds until ``stop``; then wait for the runs started here."""
        while not stop.is_set():
            await self.poll_once()
            await _static_runs.start_due_static_runs(self._running)
            await self._sweep_posts()
            try:
                await asyncio.wait_for(stop.wait(), self.poll)
            except TimeoutError:
                pass
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _sweep_posts(self) -> None:
        """Now and then, start a run for due posts whose run went missing (a dead worker, a
        Prefect outage when the post was scheduled)."""
        settings = self.runtime.settings.publishing
        now = asyncio.get_running_loop().time()
        if now - self._swept_at < settings.sweep_seconds:
            return
        self._swept_at = now
        try:
            started = await sweep_due_posts(self.runtime.db, lease_seconds=settings.lease_seconds)
        except Exception as exc:
            _log.warning("sweeping due posts failed", error=repr(exc))
            return
        if started:
            _log.info("started runs of due posts", posts=started)

    async def poll_once(self) -> None:
        """Take the due runs of the deployments' pool while slots are free; the rest stay
        scheduled for the next poll."""
        from prefect.client.orchestration import get_client
        from prefect.exceptions import ObjectNotFound

        from socialflow.orchestration._deployments import WORK_POOL

        try:
            async with get_client() as client:
                due = await client.get_scheduled_flow_runs_for_work_pool(
                    WORK_POOL, scheduled_before=utcnow()
                )
                for response in due:
                    if self.inflight.free <= 0:
                        break
                    await self._take(client, response.flow_run)
        except ObjectNotFound:
            pass  # no schedule was ever published, so the work pool does not exist yet
        except Exception as exc:
            _log.warning("polling scheduled runs failed", error=repr(exc))

    async def _take(self, client: PrefectClient, flow_run: FlowRun) -> None:
        """Claim one due run in Prefect, lease it here and start it in a slot."""
        from socialflow.orchestration._runner import flow_for

        if not await claim_scheduled(client, flow_run):
            return
        meta = dict(flow_run.parameters.get("meta") or {})
        # the flow run's id names the execution, so it can be found to cancel
        meta["execution_id"] = str(flow_run.id)
        meta["attempt"] = 1
        parameters = {**flow_run.parameters, "meta": meta}
        if not await self._lease(client, flow_run, parameters):
            return
        name = meta.get("flow_name", "scheduled")
        task = asyncio.create_task(self.slots.run_scheduled(flow_for(name), flow_run, parameters))
        self._running.add(task)
        self.inflight.add(Held(flow_run.id, 1), task)
        task.add_done_callback(self._running.discard)

    async def _lease(
        self, client: PrefectClient, flow_run: FlowRun, parameters: dict[str, Any]
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
        try:
            await self.claims.record_held(
                FlowExecution(
                    id=flow_run_id,
                    workspace_id=meta.workspace_id,
                    flow_id=meta.flow_id,
                    flow_version_id=meta.flow_version_id,
                    flow_name=meta.flow_name,
                    version_number=meta.version,
                    trigger_kind=kind,
                    trigger_payload=cap_json(trigger, limit)[0],
                    prefect_flow_run_id=flow_run_id,
                )
            )
        except Exception as exc:
            _log.warning(
                "recording a scheduled run failed; it waits for the next poll",
                flow_run_id=str(flow_run_id),
                error=repr(exc),
            )
            await client.set_flow_run_state(flow_run_id, Scheduled(), force=True)
            return False
        await self._tag(client, flow_run, meta.tags(kind))
        return True

    @staticmethod
    async def _tag(client: PrefectClient, flow_run: FlowRun, tags: list[str]) -> None:
        """The deployment gave the run workspace and flow tags; add version and trigger, like
        event runs have."""
        merged = sorted(set(flow_run.tags or []) | set(tags))
        if merged != sorted(flow_run.tags or []):
            try:
                await client.update_flow_run(flow_run.id, tags=merged)
            except Exception as exc:
                _log.warning("tagging a scheduled run failed", error=repr(exc))
