"""Maintenance flows: prune old history, and put stuck inbox events back in front of dispatchers.

Both are deployments of prefect.yaml in the ``socialflow-maintenance`` pool, so every
``socialflow worker`` runs their due runs in-process (see ``_worker._static_runs.STATIC_POOLS``);
they use this process's engine runtime (``get_runtime``) for settings and the database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from prefect import flow
from sqlalchemy import delete, func, select, update

from socialflow.core.db import Database, rows_touched, utcnow
from socialflow.core.errors import UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import RetentionSettings
from socialflow.instagram import OutboxMessage, OutboxStatus
from socialflow.orchestration._inbox import INBOX_CHANNEL, notify
from socialflow.orchestration._inbox_models import EventOutcome, EventStatus, WebhookEvent
from socialflow.orchestration._models import ExecutionStatus, ExecutionUpdateBatch, FlowExecution
from socialflow.orchestration._prefect_prune import prune_prefect_runs
from socialflow.orchestration._recorder import prune_executions
from socialflow.orchestration._runtime import get_runtime

__all__ = [
    "PruneReport",
    "RedispatchReport",
    "prune_history",
    "prune_tables",
    "redispatch_stuck",
    "redispatch_stuck_events",
]

_log = get_logger(__name__)

#: relayed live updates are only a stream; a row older than this has been read by everyone
RELAY_KEEP = timedelta(minutes=5)
#: ledger rows that are settled (a queued or sending row is never pruned)
_SETTLED = (OutboxStatus.SENT, OutboxStatus.SANDBOXED, OutboxStatus.REFUSED, OutboxStatus.FAILED)


@dataclass(frozen=True)
class PruneReport:
    """Rows one prune pass deleted, by table."""

    executions: int
    inbox_events: int
    execution_updates: int
    ledger_rows: int
    prefect_flow_runs: int = 0


@dataclass(frozen=True)
class RedispatchReport:
    """What one pass over stuck work found."""

    events_redispatched: int
    executions_queued_too_long: int


async def prune_tables(db: Database, retention: RetentionSettings) -> PruneReport:
    """Delete history past its retention.

    Executions (with their node runs) past ``execution_days``; inbox events already
    dispatched or ignored (the event log, with their recorded outcomes) past ``event_days``
    (``inbox_days``, else ``execution_days``); relayed live updates older than five minutes;
    settled send-ledger rows past ``ledger_days``. Pending or failed inbox events and queued
    or sending ledger rows are kept whatever their age.

    Args:
        db: The application database.
        retention: How long each kind of row is kept.

    Returns:
        How many rows were deleted from each table.
    """
    executions = await prune_executions(db, older_than_days=retention.execution_days)
    now = utcnow()
    async with db.session() as session:
        event_cutoff = now - timedelta(days=retention.event_days)
        inbox = await session.execute(
            delete(WebhookEvent).where(
                WebhookEvent.status.in_((EventStatus.DISPATCHED, EventStatus.IGNORED)),
                WebhookEvent.received_at < event_cutoff,
            )
        )
        # an outcome is written when its event is dispatched, so never before it was received
        await session.execute(delete(EventOutcome).where(EventOutcome.created_at < event_cutoff))
        updates = await session.execute(
            delete(ExecutionUpdateBatch).where(ExecutionUpdateBatch.created_at < now - RELAY_KEEP)
        )
        ledger = await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.status.in_(_SETTLED),
                OutboxMessage.created_at < now - timedelta(days=retention.ledger_days),
            )
        )
    report = PruneReport(
        executions=executions,
        inbox_events=rows_touched(inbox),
        execution_updates=rows_touched(updates),
        ledger_rows=rows_touched(ledger),
    )
    _log.info("pruned history", **asdict(report))
    return report


async def redispatch_stuck_events(
    db: Database, *, stuck_minutes: float = 5.0, queued_minutes: float = 10.0
) -> RedispatchReport:
    """Make overdue pending inbox events due now and wake dispatchers; count stale queued runs.

    An event is stuck when it is ``pending`` and its ``next_attempt_at`` passed more than
    ``stuck_minutes`` ago (its dispatcher died, or a NOTIFY was lost). Executions ``queued``
    for more than ``queued_minutes`` are logged as a warning: workers are missing or saturated.

    Args:
        db: The application database.
        stuck_minutes: How overdue a pending event must be to count as stuck.
        queued_minutes: How long an execution may wait for a worker before it is reported.

    Returns:
        How many events were made due again and how many executions wait too long.

    Raises:
        UserError: A threshold is not positive.
    """
    if stuck_minutes <= 0 or queued_minutes <= 0:
        msg = (
            "stuck_minutes and queued_minutes must be greater than 0, "
            f"got {stuck_minutes} and {queued_minutes}"
        )
        raise UserError(msg, code="invalid_threshold")
    now = utcnow()
    async with db.session() as session:
        result = await session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.status == EventStatus.PENDING,
                WebhookEvent.next_attempt_at < now - timedelta(minutes=stuck_minutes),
            )
            .values(next_attempt_at=now)
        )
        events = rows_touched(result)
        if events:
            await notify(session, INBOX_CHANNEL)
        queued = int(
            await session.scalar(
                select(func.count())
                .select_from(FlowExecution)
                .where(
                    FlowExecution.status == ExecutionStatus.QUEUED,
                    FlowExecution.created_at < now - timedelta(minutes=queued_minutes),
                )
            )
            or 0
        )
    if events:
        _log.warning("stuck inbox events made due again", events=events)
    if queued:
        _log.warning(
            "executions wait for a worker too long; add workers or check they are running",
            executions=queued,
            queued_minutes=queued_minutes,
        )
    return RedispatchReport(events_redispatched=events, executions_queued_too_long=queued)


@flow(name="socialflow-prune-history", persist_result=False)
async def prune_history() -> dict[str, int]:
    """Delete history past retention (deployment ``prune-history`` in prefect.yaml)."""
    from dataclasses import replace

    from prefect.client.orchestration import get_client

    runtime = get_runtime()
    retention = runtime.settings.retention
    report = await prune_tables(runtime.db, retention)
    # Prefect's records of the same runs go with them (their events by Prefect's own
    # retention, set to the same days by `socialflow up`)
    cutoff = utcnow() - timedelta(days=retention.execution_days)
    try:
        async with get_client() as client:
            pruned = await prune_prefect_runs(client, ended_before=cutoff)
    except Exception as exc:
        _log.warning("pruning Prefect's flow runs failed; the next pass retries", error=repr(exc))
        pruned = 0
    return asdict(replace(report, prefect_flow_runs=pruned))


@flow(name="socialflow-redispatch-stuck", persist_result=False)
async def redispatch_stuck(
    stuck_minutes: float = 5.0, queued_minutes: float = 10.0
) -> dict[str, int]:
    """Make stuck inbox events due again (deployment ``redispatch-stuck`` in prefect.yaml).

    Args:
        stuck_minutes: How overdue a pending event must be to count as stuck.
        queued_minutes: How long an execution may wait for a worker before it is reported.
    """
    report = await redispatch_stuck_events(
        get_runtime().db, stuck_minutes=stuck_minutes, queued_minutes=queued_minutes
    )
    return asdict(report)
