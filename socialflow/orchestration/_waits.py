"""Conversation waits: parking a run until a contact answers, and resuming it.

A node that raises ``AwaitReply`` ends its run's segment: the run records the wait (contact,
account, deadline, the outputs of the nodes completed so far) and the execution ``waiting``
in one transaction, and its worker lets go of it. Three things end a wait, each a conditional
UPDATE on the wait (``status = 'waiting'``), so exactly one wins:

- the contact's next message or button tap on that account (``resume_for_event``, called by
  the dispatcher before it offers the event to any trigger): the wait is ``answered`` and the
  execution queued again, so a worker resumes it; the event starts no new run of the
  workspace's flows. A message that is one of the workspace's global keywords (``stop``) is
  not an answer: it ends the wait (``cancelled``, the run cancelled with the keyword named)
  and goes to the flows as usual;
- its deadline (``expire_due``, swept by every worker): ``timed_out``, execution queued;
- a cancel of the execution: ``cancelled``.

A queued resumption has ``attempt`` reset to 0, so its claim is attempt 1: the worker resumes
the Prefect flow run the run paused in, instead of treating the claim as a crashed attempt's
retry. The continuation loads the latest wait (``resume_state``): completed nodes' outputs
are reused, never run again, and the waiting node runs with the reply.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.db import Database, rows_touched, utcnow
from socialflow.core.lease import lock_for_claim
from socialflow.core.logging import get_logger
from socialflow.nodes import Reply, WaitRequest
from socialflow.orchestration._inbox import QUEUE_CHANNEL, notify
from socialflow.orchestration._inbox_models import WebhookEvent
from socialflow.orchestration._models import ExecutionStatus, FlowExecution, NodeRun
from socialflow.orchestration._wait_models import ConversationWait, GlobalKeyword, WaitStatus

__all__ = [
    "ANSWER_KINDS",
    "MAX_KEYWORDS",
    "ResumeState",
    "WaitResolution",
    "expire_due",
    "forget_unfinished",
    "keyword_of",
    "open_wait",
    "resume_for_event",
    "resume_state",
]

_log = get_logger(__name__)
#: inbox kinds that answer a wait: a message (text, quick reply) or a button tap
ANSWER_KINDS = ("instagram.dm", "instagram.postback")
#: global keywords a workspace may mark
MAX_KEYWORDS = 50
#: how many expired waits one sweep resumes
_SWEEP_BATCH = 200


class ResumeState(BaseModel):
    """How a continuation resumes: the wait it comes from, the node to run again with the
    reply, and the outputs of the nodes completed before the wait."""

    wait_id: uuid.UUID
    node_id: str
    outputs: dict[str, dict[str, Any]]
    reply: Reply


class WaitResolution(BaseModel):
    """What an inbound event did to a wait of one workspace."""

    workspace_id: uuid.UUID
    execution_id: uuid.UUID
    flow_id: uuid.UUID | None
    node_id: str
    #: ``answered``: the run resumes; ``cancelled``: a global keyword ended the wait
    status: str
    keyword: str | None = None
    prefect_flow_run_id: uuid.UUID | None = None


def keyword_of(text: str | None) -> str | None:
    """A message as a global keyword is stored (case-folded, runs of spaces made one, as
    the triggers' keyword filters compare), or None when it cannot be one (empty, or longer
    than any keyword)."""
    cleaned = " ".join((text or "").casefold().split())
    return cleaned if 0 < len(cleaned) <= 100 else None


async def open_wait(
    session: AsyncSession,
    *,
    execution_id: uuid.UUID,
    workspace_id: uuid.UUID,
    flow_id: uuid.UUID | None,
    node_id: str,
    request: WaitRequest,
    outputs: Mapping[str, Any],
) -> ConversationWait:
    """Record a wait in ``session`` (the caller commits, with the execution's status)."""
    wait = ConversationWait(
        id=uuid.uuid4(),
        execution_id=execution_id,
        workspace_id=workspace_id,
        flow_id=flow_id,
        node_id=node_id,
        account_id=request.account_id,
        contact_id=request.contact_id,
        status=WaitStatus.WAITING,
        expects=request.expects,
        question=request.question,
        state=request.state,
        outputs=dict(outputs),
        expires_at=request.expires_at,
        window_expires_at=request.window_expires_at,
        created_at=utcnow(),
    )
    session.add(wait)
    return wait


async def resume_for_event(
    session: AsyncSession, event: WebhookEvent, workspaces: set[uuid.UUID]
) -> list[WaitResolution]:
    """Answer (or, for a global keyword, cancel) the open waits ``event`` concerns: those of
    its sender on its account in ``workspaces`` (those that connected the account). Runs in
    the dispatcher's transaction.

    Returns:
        What became of each wait; empty when nobody waited for this sender.
    """
    payload = event.payload
    sender = payload.get("sender_id")
    if (
        event.source != "instagram"
        or event.kind not in ANSWER_KINDS
        or not event.account_id
        or not isinstance(sender, str)
        or not sender
        or payload.get("is_self")
        or not workspaces
    ):
        return []
    waits = list(
        await session.scalars(
            select(ConversationWait)
            .where(
                ConversationWait.account_id == event.account_id,
                ConversationWait.contact_id == sender,
                ConversationWait.status == WaitStatus.WAITING,
                ConversationWait.workspace_id.in_(workspaces),
            )
            .order_by(ConversationWait.created_at)
            .with_for_update()
        )
    )
    if not waits:
        return []
    keyword = keyword_of(payload.get("text")) if event.kind == "instagram.dm" else None
    marked: set[uuid.UUID] = set()
    if keyword is not None:
        marked = set(
            await session.scalars(
                select(GlobalKeyword.workspace_id).where(
                    GlobalKeyword.keyword == keyword,
                    GlobalKeyword.workspace_id.in_({w.workspace_id for w in waits}),
                )
            )
        )
    now = utcnow()
    resolutions = []
    for wait in waits:
        resolution: WaitResolution | None
        if wait.workspace_id in marked:
            resolution = await _cancel_by_keyword(session, wait, event, keyword or "", now)
        else:
            resolution = await _answer(session, wait, event, now)
        if resolution is not None:
            resolutions.append(resolution)
    return resolutions


def _reply(event: WebhookEvent, state: dict[str, Any]) -> Reply:
    payload = event.payload
    postback = event.kind == "instagram.postback"
    occurred = payload.get("occurred_at")
    return Reply(
        kind="postback" if postback else "message",
        text=_text(payload.get("text")),
        payload=_text(payload.get("payload") if postback else payload.get("quick_reply_payload")),
        title=_text(payload.get("title")) if postback else None,
        occurred_at=datetime.fromisoformat(occurred) if isinstance(occurred, str) else None,
        event_id=str(event.id),
        state=state,
    )


def _text(value: Any) -> str | None:
    # an answer is at most a DM (1000 bytes); anything longer is cut, never stored whole
    return value[:2000] if isinstance(value, str) else None


async def _answer(
    session: AsyncSession, wait: ConversationWait, event: WebhookEvent, now: datetime
) -> WaitResolution | None:
    requeued = await session.execute(
        update(FlowExecution)
        .where(
            FlowExecution.id == wait.execution_id,
            FlowExecution.status == ExecutionStatus.WAITING,
        )
        .values(status=ExecutionStatus.QUEUED, attempt=0, lease_until=None, claimed_by=None)
        .execution_options(synchronize_session=False)
    )
    if not rows_touched(requeued):
        # the execution left "waiting" another way (cancelled): the wait is over
        wait.status, wait.resolved_at = WaitStatus.CANCELLED, now
        return None
    wait.status = WaitStatus.ANSWERED
    wait.reply = _reply(event, wait.state).model_dump(mode="json")
    wait.event_id = event.id
    wait.resolved_at = now
    return WaitResolution(
        workspace_id=wait.workspace_id,
        execution_id=wait.execution_id,
        flow_id=wait.flow_id,
        node_id=wait.node_id,
        status=WaitStatus.ANSWERED,
    )


async def _cancel_by_keyword(
    session: AsyncSession,
    wait: ConversationWait,
    event: WebhookEvent,
    keyword: str,
    now: datetime,
) -> WaitResolution:
    message = f"cancelled: the contact sent the global keyword {keyword!r} while it waited"
    flow_run_id = await session.scalar(
        select(FlowExecution.prefect_flow_run_id).where(FlowExecution.id == wait.execution_id)
    )
    await session.execute(
        update(FlowExecution)
        .where(
            FlowExecution.id == wait.execution_id,
            FlowExecution.status == ExecutionStatus.WAITING,
        )
        .values(status=ExecutionStatus.CANCELLED, error=message, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(NodeRun)
        .where(
            NodeRun.execution_id == wait.execution_id,
            NodeRun.node_id == wait.node_id,
            NodeRun.status == "waiting",
        )
        .values(status="cancelled", error=message, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    wait.status, wait.event_id, wait.resolved_at = WaitStatus.CANCELLED, event.id, now
    return WaitResolution(
        workspace_id=wait.workspace_id,
        execution_id=wait.execution_id,
        flow_id=wait.flow_id,
        node_id=wait.node_id,
        status=WaitStatus.CANCELLED,
        keyword=keyword,
        prefect_flow_run_id=flow_run_id,
    )


async def expire_due(db: Database, *, now: datetime | None = None) -> int:
    """Resume the runs whose waits passed their deadline (the ``timeout`` of the waiting
    node): one transaction per batch, rows locked for it (``SKIP LOCKED`` on PostgreSQL, so
    several workers sweep side by side).

    Returns:
        How many waits timed out.
    """
    now = now or utcnow()
    due = (ConversationWait.status == WaitStatus.WAITING) & (ConversationWait.expires_at <= now)
    async with db.sessionmaker() as session:
        # a plain read first: on SQLite the claim below takes the database's write lock
        if await session.scalar(select(ConversationWait.id).where(due).limit(1)) is None:
            return 0
    expired = 0
    while True:
        async with db.sessionmaker() as session:
            query = (
                select(ConversationWait)
                .where(
                    ConversationWait.status == WaitStatus.WAITING,
                    ConversationWait.expires_at <= now,
                )
                .order_by(ConversationWait.expires_at)
                .limit(_SWEEP_BATCH)
            )
            query = await lock_for_claim(session, query, ConversationWait)
            waits = list((await session.scalars(query)).all())
            for wait in waits:
                requeued = await session.execute(
                    update(FlowExecution)
                    .where(
                        FlowExecution.id == wait.execution_id,
                        FlowExecution.status == ExecutionStatus.WAITING,
                    )
                    .values(
                        status=ExecutionStatus.QUEUED, attempt=0, lease_until=None, claimed_by=None
                    )
                    .execution_options(synchronize_session=False)
                )
                wait.resolved_at = now
                if not rows_touched(requeued):
                    wait.status = WaitStatus.CANCELLED
                    continue
                wait.status = WaitStatus.TIMED_OUT
                wait.reply = Reply(kind="timeout", occurred_at=now, state=wait.state).model_dump(
                    mode="json"
                )
                expired += 1
            if any(w.status == WaitStatus.TIMED_OUT for w in waits):
                await notify(session, QUEUE_CHANNEL)  # wake the workers to resume them
            await session.commit()
        if len(waits) < _SWEEP_BATCH:
            return expired


async def resume_state(session: AsyncSession, execution_id: uuid.UUID) -> ResumeState | None:
    """How the execution resumes: its latest wait when that was answered or timed out;
    None for an execution that never waited (or whose wait is still open)."""
    wait = await session.scalar(
        select(ConversationWait)
        .where(ConversationWait.execution_id == execution_id)
        .order_by(ConversationWait.created_at.desc())
        .limit(1)
    )
    if wait is None or wait.status not in (WaitStatus.ANSWERED, WaitStatus.TIMED_OUT):
        return None
    return ResumeState(
        wait_id=wait.id,
        node_id=wait.node_id,
        outputs=wait.outputs or {},
        reply=Reply.model_validate(wait.reply or {"kind": "timeout"}),
    )


async def forget_unfinished(
    session: AsyncSession, execution_id: uuid.UUID, resume: ResumeState
) -> None:
    """Delete the node records a continuation writes again: every node but those completed
    before the wait (their records and outputs stand)."""
    await session.execute(
        delete(NodeRun).where(
            NodeRun.execution_id == execution_id, NodeRun.node_id.not_in(list(resume.outputs))
        )
    )
