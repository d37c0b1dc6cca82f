"""Queueing runs that do not come from the inbox: run now, test runs of drafts, re-runs."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.db import utcnow
from socialflow.orchestration._inbox import QUEUE_CHANNEL, notify
from socialflow.orchestration._inbox_models import EventStatus, WebhookEvent
from socialflow.orchestration._models import ExecutionStatus, FlowExecution
from socialflow.orchestration._triggers import save_snapshot

__all__ = ["enqueue_run"]


async def enqueue_run(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    flow_id: uuid.UUID,
    flow_name: str,
    trigger_kind: str,
    payload: dict[str, Any],
    version_id: uuid.UUID | None = None,
    version_number: int | None = None,
    draft_graph_json: str | None = None,
    sandbox: bool = False,
    record_event: str | None = None,
) -> uuid.UUID:
    """Queue one execution for a worker and commit.

    Args:
        session: The caller's session; committed here.
        workspace_id: The flow's workspace.
        flow_id: The flow.
        flow_name: Its name (the Prefect flow's name).
        trigger_kind: The graph's trigger kind.
        payload: The trigger payload the run starts with.
        version_id: The published version to run (its snapshot exists).
        version_number: That version's number.
        draft_graph_json: Instead of a version, a draft graph to run (test runs): it is
            snapshotted under a fresh id, which the execution records as its version.
        sandbox: Action nodes record what they would do and send nothing.
        record_event: Also store the run's start as an event of the event log, of this kind
            (``manual``), already dispatched to this run (the inbox sees it as handled).

    Returns:
        The execution id.
    """
    if draft_graph_json is not None:
        version_id = uuid.uuid4()
        await save_snapshot(session, version_id, draft_graph_json)
    if version_id is None:
        msg = "a run needs a published version or a draft graph"
        raise ValueError(msg)
    execution_id = uuid.uuid4()
    event_id: uuid.UUID | None = None
    if record_event is not None:
        event_id = uuid.uuid4()
        now = utcnow()
        session.add(
            WebhookEvent(
                id=event_id,
                source="manual",
                kind=record_event,
                dedupe_key=f"manual:{execution_id}",
                payload=payload,
                workspace_id=workspace_id,
                flow_id=flow_id,
                status=EventStatus.DISPATCHED,
                attempts=1,
                received_at=now,
                next_attempt_at=now,
                dispatched_at=now,
            )
        )
    session.add(
        FlowExecution(
            id=execution_id,
            workspace_id=workspace_id,
            flow_id=flow_id,
            flow_version_id=version_id,
            version_number=version_number,
            flow_name=flow_name,
            trigger_kind=trigger_kind,
            trigger_payload=payload,
            trigger_event_id=event_id,
            sandbox=sandbox,
            status=ExecutionStatus.QUEUED,
            created_at=utcnow(),
        )
    )
    await notify(session, QUEUE_CHANNEL)
    await session.commit()
    return execution_id
