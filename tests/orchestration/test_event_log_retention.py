"""The event log is pruned with the executions: events and the outcomes recorded for them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from socialflow.core.db import utcnow
from socialflow.core.settings import RetentionSettings
from socialflow.instagram import build_comment
from socialflow.orchestration import EngineRuntime, EventOutcome, WebhookEvent
from socialflow.orchestration._maintenance import prune_tables
from tests.api.test_events import comment_flow
from tests.fixtures.flows import publish
from tests.instagram.test_webhook_dispatch import connect, deliver, drain, new_account_id


async def test_the_event_log_is_kept_as_long_as_executions(
    runtime: EngineRuntime,
) -> None:
    db, test_registry = runtime.db, runtime.registry
    workspace = uuid.uuid4()
    account = new_account_id()
    await connect(db, workspace, account)
    await publish(
        db, test_registry, runtime.settings, comment_flow(["price"]), workspace_id=workspace
    )
    [old] = await deliver(db, build_comment("old news", account_id=account))
    [recent] = await deliver(db, build_comment("recent news", account_id=account))
    await drain(db, test_registry)
    retention = RetentionSettings(execution_days=10)
    assert retention.event_days == 10
    async with db.session() as session:
        for event_id, days in ((old, 11), (recent, 9)):
            then = utcnow() - timedelta(days=days)
            await session.execute(
                update(WebhookEvent).where(WebhookEvent.id == event_id).values(received_at=then)
            )
            await session.execute(
                update(EventOutcome)
                .where(EventOutcome.event_id == event_id)
                .values(created_at=then)
            )
    await prune_tables(db, retention)
    async with db.sessionmaker() as session:
        kept = set(
            await session.scalars(select(WebhookEvent.id).where(WebhookEvent.id.in_([old, recent])))
        )
        outcomes = set(
            await session.scalars(
                select(EventOutcome.event_id).where(EventOutcome.event_id.in_([old, recent]))
            )
        )
    assert kept == {recent}
    assert outcomes == {recent}
    assert RetentionSettings(execution_days=10, inbox_days=3).event_days == 3
