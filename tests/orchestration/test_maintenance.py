"""Maintenance flows: pruning keeps what is recent or unsettled; stuck events are made due again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from socialflow.core.db import Database, utcnow
from socialflow.instagram import OutboxMessage
from socialflow.orchestration import EngineRuntime, WebhookEvent
from socialflow.orchestration._maintenance import prune_history, redispatch_stuck
from socialflow.orchestration._models import ExecutionUpdateBatch, FlowExecution


def _event(status: str, *, days_old: float = 0, overdue_minutes: float = 0) -> WebhookEvent:
    now = utcnow()
    return WebhookEvent(
        id=uuid.uuid4(),
        source="test",
        kind="test.hook",
        dedupe_key=f"maint:{uuid.uuid4()}",
        payload={},
        status=status,
        received_at=now - timedelta(days=days_old),
        next_attempt_at=now - timedelta(minutes=overdue_minutes),
    )


def _ledger(status: str, *, days_old: float) -> OutboxMessage:
    return OutboxMessage(
        id=uuid.uuid4(),
        idempotency_key=f"maint:{uuid.uuid4()}",
        action="reply_comment",
        target="c1",
        status=status,
        created_at=utcnow() - timedelta(days=days_old),
    )


def _execution(status: str, *, minutes_old: float) -> FlowExecution:
    return FlowExecution(
        id=uuid.uuid4(),
        flow_name="maintenance",
        trigger_kind="trigger.manual",
        status=status,
        created_at=utcnow() - timedelta(minutes=minutes_old),
    )


async def _exists(db: Database, model: Any, ids: list[Any]) -> set[Any]:
    async with db.sessionmaker() as session:
        return set(await session.scalars(select(model.id).where(model.id.in_(ids))))


async def test_prune_history_deletes_only_what_is_past_retention(runtime: EngineRuntime) -> None:
    db = runtime.db
    retention = runtime.settings.retention
    old_exec = _execution("completed", minutes_old=(retention.execution_days + 1) * 1440)
    new_exec = _execution("completed", minutes_old=5)
    old_done = _event("dispatched", days_old=retention.event_days + 1)
    old_ignored = _event("ignored", days_old=retention.event_days + 1)
    old_pending = _event("pending", days_old=retention.event_days + 1)
    new_done = _event("dispatched", days_old=1)
    old_sent = _ledger("sent", days_old=retention.ledger_days + 1)
    old_queued = _ledger("queued", days_old=retention.ledger_days + 1)
    new_sent = _ledger("sent", days_old=1)
    async with db.session() as session:
        session.add_all([old_exec, new_exec, old_done, old_ignored, old_pending, new_done])
        session.add_all([old_sent, old_queued, new_sent])
        old_update = ExecutionUpdateBatch(
            origin="t", events=[], created_at=utcnow() - timedelta(minutes=6)
        )
        new_update = ExecutionUpdateBatch(origin="t", events=[], created_at=utcnow())
        session.add_all([old_update, new_update])
    report = await prune_history()
    assert report["executions"] >= 1
    assert report["inbox_events"] >= 2
    assert report["execution_updates"] >= 1
    assert report["ledger_rows"] >= 1
    assert await _exists(db, FlowExecution, [old_exec.id, new_exec.id]) == {new_exec.id}
    events = [old_done.id, old_ignored.id, old_pending.id, new_done.id]
    assert await _exists(db, WebhookEvent, events) == {old_pending.id, new_done.id}
    ledger = [old_sent.id, old_queued.id, new_sent.id]
    assert await _exists(db, OutboxMessage, ledger) == {old_queued.id, new_sent.id}
    updates = [old_update.id, new_update.id]
    assert await _exists(db, ExecutionUpdateBatch, updates) == {new_update.id}


async def test_redispatch_makes_stuck_events_due_and_counts_stale_queued_runs(
    runtime: EngineRuntime,
) -> None:
    db = runtime.db
    stuck = _event("pending", overdue_minutes=30)
    fresh = _event("pending", overdue_minutes=1)
    failed = _event("failed", overdue_minutes=30)
    stale = _execution("queued", minutes_old=600)
    async with db.session() as session:
        session.add_all([stuck, fresh, failed, stale])
        before_stale = await session.scalar(
            select(func.count())
            .select_from(FlowExecution)
            .where(
                FlowExecution.status == "queued",
                FlowExecution.created_at < utcnow() - timedelta(minutes=10),
            )
        )
    before = utcnow()
    report = await redispatch_stuck(stuck_minutes=5, queued_minutes=10)
    assert report["events_redispatched"] >= 1
    assert report["executions_queued_too_long"] == before_stale
    assert before_stale and before_stale >= 1
    async with db.sessionmaker() as session:
        due = {
            row.id: row.next_attempt_at
            for row in await session.scalars(
                select(WebhookEvent).where(WebhookEvent.id.in_([stuck.id, fresh.id, failed.id]))
            )
        }
        await session.delete(await session.get(FlowExecution, stale.id))
        await session.commit()
    assert due[stuck.id] >= before - timedelta(seconds=1)  # made due now
    assert due[fresh.id] < before - timedelta(seconds=30)  # not stuck yet: untouched
    assert due[failed.id] < before - timedelta(minutes=29)  # failed events are not retried here
