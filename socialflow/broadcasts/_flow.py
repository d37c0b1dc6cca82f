"""Broadcasts as Prefect runs: the ``send-broadcast`` deployment and one flow run per
broadcast, scheduled at its time or due now.

Like scheduled posts, the deployment is created by Socialflow in the publishing work pool, so
every ``socialflow worker`` runs the due runs in-process and the Prefect UI lists each
broadcast as a run named after it. The run is only the clock and the process: the broadcast
row, its recipients and the ledger decide, so a run started twice sends nobody twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from prefect import flow

from socialflow.broadcasts._sender import BroadcastContext, Sender
from socialflow.core.credentials import key_wrapper
from socialflow.core.db import Database
from socialflow.core.logging import get_logger
from socialflow.core.settings import get_settings
from socialflow.publishing import cancel_flow_run, ensure_pool_deployment

__all__ = [
    "DEPLOYMENT",
    "ENTRYPOINT",
    "cancel_run",
    "get_broadcast_context",
    "schedule_run",
    "send_broadcast",
    "set_broadcast_context",
]

_log = get_logger(__name__)

DEPLOYMENT = "send-broadcast"
ENTRYPOINT = "socialflow/broadcasts/_flow.py:send_broadcast"

_context: BroadcastContext | None = None


def set_broadcast_context(context: BroadcastContext | None) -> None:
    """Install the context broadcast runs of this process use (the worker, tests)."""
    global _context
    _context = context


def get_broadcast_context() -> BroadcastContext:
    """The installed context, or one built from the environment's settings."""
    global _context
    if _context is None:
        settings = get_settings()
        _context = BroadcastContext(
            settings=settings, db=Database(settings.database_url), keys=key_wrapper(settings)
        )
    return _context


@flow(name="send-broadcast", persist_result=False)
async def send_broadcast(broadcast_id: str) -> str:
    """Send one broadcast, or resume the one a dead run left.

    Args:
        broadcast_id: The broadcast.

    Returns:
        Its status when the run ends.
    """
    status = await Sender(get_broadcast_context()).send(uuid.UUID(broadcast_id))
    _log.info("broadcast run", broadcast_id=broadcast_id, status=status)
    return status


async def _deployment_id() -> uuid.UUID:
    """The ``send-broadcast`` deployment in the publishing pool, created the first time."""
    return await ensure_pool_deployment(
        send_broadcast,
        name=DEPLOYMENT,
        entrypoint=ENTRYPOINT,
        tags=["socialflow", "broadcast"],
        description="Send one broadcast to its segment (parameter broadcast_id).",
    )


async def schedule_run(
    broadcast_id: uuid.UUID, workspace_id: uuid.UUID, name: str, at: datetime
) -> uuid.UUID:
    """A flow run of ``send-broadcast`` due at ``at`` (now: due at once).

    Returns:
        The flow run's id.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    deployment_id = await _deployment_id()
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(
            deployment_id,
            parameters={"broadcast_id": str(broadcast_id)},
            state=Scheduled(scheduled_time=at),
            name=f"broadcast {name[:40]} at {at:%Y-%m-%d %H:%M} UTC",
            tags=["socialflow", "broadcast", f"workspace:{workspace_id}"],
            idempotency_key=f"broadcast:{broadcast_id}:{at.isoformat()}",
        )
    flow_run_id: uuid.UUID = run.id
    return flow_run_id


async def cancel_run(flow_run_id: uuid.UUID | None) -> None:
    """Cancel a broadcast's run if it still waits for its time: a running sender stops by
    itself at its next page."""
    await cancel_flow_run(flow_run_id, "the broadcast was cancelled", only_scheduled=True)
