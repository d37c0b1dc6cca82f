"""``GET /metrics``: Prometheus exposition of this process's counters plus shared state from the DB.

The route needs no sign-in, so it must never be public: the NGINX in front of the API answers
``/metrics`` with 404 (deployments/nginx/socialflow.conf) and Prometheus scrapes the replicas
directly on the internal network. Gauges of state every process shares (queue depths, dispatch
lag, runs by status) are read from the database at each scrape, so any replica answers the
same; counters are those of the answering process.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.deps import DatabaseDep
from socialflow.core.db import Database, utcnow
from socialflow.core.metrics import REGISTRY
from socialflow.instagram import OutboxMessage, OutboxStatus
from socialflow.orchestration import EventStatus, FlowExecution, WebhookEvent

__all__ = ["SharedState", "read_shared_state", "render_metrics", "router"]

router = APIRouter(tags=["health"])


@dataclass
class SharedState:
    """Database-wide figures read at one scrape."""

    queue_depth: int = 0
    ledger_queue_depth: int = 0
    dispatch_lag_seconds: float = 0.0
    runs_by_status: dict[str, int] = field(default_factory=dict)


class _SharedCollector(Collector):
    def __init__(self, state: SharedState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        yield GaugeMetricFamily(
            "socialflow_queue_depth",
            "Executions queued for a worker (workers' autoscaler target).",
            value=state.queue_depth,
        )
        yield GaugeMetricFamily(
            "socialflow_ledger_queue_depth",
            "Send-ledger entries (outbox_message) queued to be sent.",
            value=state.ledger_queue_depth,
        )
        yield GaugeMetricFamily(
            "socialflow_dispatch_lag_seconds",
            "Age of the oldest pending inbox event (0 when none is pending).",
            value=state.dispatch_lag_seconds,
        )
        runs = GaugeMetricFamily(
            "socialflow_runs", "Executions in the database, by status.", labels=["status"]
        )
        for status, count in sorted(state.runs_by_status.items()):
            runs.add_metric([status], count)
        yield runs


async def read_shared_state(session: AsyncSession) -> SharedState:
    """Read the gauges' values: four small aggregate queries.

    Args:
        session: A session on the application database.
    """
    rows = await session.execute(
        select(FlowExecution.status, func.count()).group_by(FlowExecution.status)
    )
    runs = {str(status): int(count) for status, count in rows.tuples().all()}
    oldest = await session.scalar(
        select(func.min(WebhookEvent.received_at)).where(WebhookEvent.status == EventStatus.PENDING)
    )
    ledger = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.status == OutboxStatus.QUEUED)
    )
    lag = max((utcnow() - _aware(oldest)).total_seconds(), 0.0) if oldest is not None else 0.0
    return SharedState(
        queue_depth=runs.get("queued", 0),
        ledger_queue_depth=int(ledger or 0),
        dispatch_lag_seconds=lag,
        runs_by_status=runs,
    )


def _aware(value: datetime | str) -> datetime:
    """``min()`` over a datetime column comes back naive, or as text on SQLite: read it as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def render_metrics(db: Database) -> bytes:
    """The exposition text: this process's metrics, then the shared gauges.

    Args:
        db: The application database.
    """
    async with db.sessionmaker() as session:
        state = await read_shared_state(session)
    shared = CollectorRegistry(auto_describe=False)
    shared.register(_SharedCollector(state))
    return generate_latest(REGISTRY) + generate_latest(shared)


@router.get("/metrics", name="metrics", include_in_schema=False)
async def metrics(database: DatabaseDep) -> Response:
    """Prometheus metrics (internal network only; see the module docstring)."""
    body = await render_metrics(database)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
