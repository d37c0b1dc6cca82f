"""Tables owned by orchestration: executions, node runs, and the node-type mirror."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from socialflow.core.db import Base, JSONType, utcnow

__all__ = [
    "ExecutionStatus",
    "ExecutionUpdateBatch",
    "FlowExecution",
    "GraphSnapshot",
    "NodeRun",
    "NodeRunStatus",
    "NodeType",
]


class ExecutionStatus(StrEnum):
    """Where a run of a flow is."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    #: parked until a contact answers (``conversation_wait``); holds no worker
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"


class NodeRunStatus(StrEnum):
    """Where one node of a run is. ``skipped``: behind a port that did not fire;
    ``cancelled``: not run because an upstream node failed; ``waiting``: asked and waits
    for the contact's answer."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class FlowExecution(Base):
    """One run of a flow: what started it, where it ran in Prefect, how it ended."""

    __tablename__ = "flow_execution"
    __table_args__ = (
        Index("ix_flow_execution_flow_created", "flow_id", "created_at"),
        Index("ix_flow_execution_workspace_created", "workspace_id", "created_at"),
        Index("ix_flow_execution_status_lease", "status", "lease_until"),
        Index("ix_flow_execution_conversation_key_status", "conversation_key", "status"),
        # one run per (event, version): the dispatcher's inserts are idempotent on this key
        UniqueConstraint("trigger_event_id", "flow_version_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    flow_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    flow_version_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    flow_name: Mapped[str] = mapped_column(String(200))
    trigger_kind: Mapped[str] = mapped_column(String(200))
    trigger_event_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    trigger_payload: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    sandbox: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(20), default=ExecutionStatus.PENDING, index=True)
    prefect_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_node_id: Mapped[str | None] = mapped_column(String(64), default=None)
    version_number: Mapped[int | None] = mapped_column(default=None)
    attempt: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    # set by a cancel request; the worker running the execution watches for it
    cancel_requested_at: Mapped[datetime | None] = mapped_column(default=None)
    # model usage summed over the run's AI nodes, written when it finishes
    llm_calls: Mapped[int] = mapped_column(default=0)
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    total_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(Double, default=0.0)
    unpriced_calls: Mapped[int] = mapped_column(default=0)
    # the trigger event's conversation and place in it (webhook_event's columns): a worker
    # does not start this run while an earlier one of the conversation waits or runs
    conversation_key: Mapped[str | None] = mapped_column(String(200), default=None)
    conversation_at: Mapped[datetime | None] = mapped_column(default=None)
    conversation_seq: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    node_runs: Mapped[list[NodeRun]] = relationship(
        back_populates="execution",
        cascade="all, delete-orphan",
        passive_deletes=True,
        # graph order; rows written before it was recorded (all 0) in the order they started
        order_by="(NodeRun.seq, NodeRun.started_at)",
    )


class NodeRun(Base):
    """One node of one execution: status, timings, recorded input and output, error."""

    __tablename__ = "node_run"
    __table_args__ = (UniqueConstraint("execution_id", "node_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_execution.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    label: Mapped[str] = mapped_column(String(100))
    # the node's place in graph order (topological, ties by position on the canvas)
    seq: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(default=0)
    input: Mapped[Any | None] = mapped_column(JSONType, default=None)
    output: Mapped[Any | None] = mapped_column(JSONType, default=None)
    input_truncated: Mapped[bool] = mapped_column(default=False)
    output_truncated: Mapped[bool] = mapped_column(default=False)
    fired_ports: Mapped[list[str] | None] = mapped_column(JSONType, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    prefect_task_run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    execution: Mapped[FlowExecution] = relationship(back_populates="node_runs")


class NodeType(Base):
    """The registry mirrored into the database at start-up, for the palette and for joins."""

    __tablename__ = "node_type"
    __table_args__ = (UniqueConstraint("kind", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="builtin")
    available: Mapped[bool] = mapped_column(default=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ExecutionUpdateBatch(Base):
    """Live updates of runs, relayed between processes: a worker appends its runs' node and
    execution events in batches; API processes read what is new and stream it. Rows live for
    minutes (the database is the record; this table only carries the live stream)."""

    __tablename__ = "execution_update"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    origin: Mapped[str] = mapped_column(String(64))
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class GraphSnapshot(Base):
    """The graph an execution runs, by version id: immutable once written, so a run always
    executes the version it was dispatched for, whatever is active by then."""

    __tablename__ = "graph_snapshot"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    graph: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
