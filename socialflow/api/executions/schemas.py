"""What the execution endpoints and the live run stream send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from socialflow.knowledge import Usage, sum_usage
from socialflow.orchestration import ExecutionStatus, readable_json

__all__ = [
    "ExecutionEventRead",
    "ExecutionPage",
    "ExecutionQuery",
    "ExecutionRead",
    "ExecutionSnapshotRead",
    "ExecutionSummaryRead",
    "NodeEventRead",
    "NodeRunRead",
    "RunUsageRead",
]


def _duration_ms(started_at: datetime | None, finished_at: datetime | None) -> float | None:
    if started_at is None or finished_at is None:
        return None
    return round((finished_at - started_at).total_seconds() * 1000, 3)


class ExecutionQuery(BaseModel):
    """Which executions to list (every given filter must match), and which page."""

    flow_id: uuid.UUID | None = Field(default=None, description="Runs of this flow.")
    flow_version_id: uuid.UUID | None = Field(
        default=None, description="Runs of this published version."
    )
    status: list[ExecutionStatus] | None = Field(
        default=None, description="Runs in any of these statuses (repeat the parameter)."
    )
    created_after: datetime | None = Field(
        default=None, description="Runs created at or after this time (UTC when no offset)."
    )
    created_before: datetime | None = Field(
        default=None, description="Runs created before this time (UTC when no offset)."
    )
    limit: int = Field(default=50, ge=1, le=200, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Executions to skip.")

    @field_validator("created_after", "created_before")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class RunUsageRead(BaseModel):
    """Tokens and cost of a run's model calls, summed over its AI nodes."""

    calls: int = Field(description="Model calls made.")
    input_tokens: int = Field(description="Prompt tokens.")
    output_tokens: int = Field(description="Completion tokens.")
    total_tokens: int = Field(description="Prompt and completion tokens.")
    cost_usd: float = Field(description="Cost in USD of the priced calls.")
    unpriced_calls: int = Field(
        description="Calls of models missing from the price table: their cost is unknown."
    )

    @classmethod
    def of(cls, usage: Usage) -> RunUsageRead | None:
        """The run-level view of ``usage``; None when no model was called."""
        if usage.calls == 0 and usage.total_tokens == 0:
            return None
        return cls.model_validate(usage.model_dump(exclude={"provider", "model"}))


class NodeRunRead(BaseModel):
    """One node of an execution, as recorded (inputs and outputs capped in size)."""

    model_config = ConfigDict(from_attributes=True)

    node_id: str
    kind: str
    version: int
    label: str = Field(description="The node's label, else its kind's title.")
    seq: int = Field(
        description="Place in graph order (topological, ties by position on the canvas)."
    )
    status: str = Field(
        description="pending, running, retrying, completed, failed, skipped or cancelled."
    )
    attempts: int
    input: Any = Field(description="Inputs as recorded; a preview when input_truncated.")
    output: Any = Field(description="Outputs as recorded; a preview when output_truncated.")
    input_truncated: bool
    output_truncated: bool
    fired_ports: list[str] | None
    error: str | None
    error_code: str | None
    prefect_task_run_id: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def duration_ms(self) -> float | None:
        """Milliseconds from first start to finish."""
        return _duration_ms(self.started_at, self.finished_at)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def usage(self) -> Usage | None:
        """Tokens and cost of the node's model calls (kept when the output is truncated);
        null for a node that called no model."""
        return Usage.of_output(self.output)

    @field_validator("input", "output")
    @classmethod
    def _sendable(cls, value: Any) -> Any:
        # rows written before values were capped may be too deep for the response to serialise
        return readable_json(value)


class ExecutionSummaryRead(BaseModel):
    """One run of a flow, without its node runs."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    workspace_id: uuid.UUID | None
    flow_id: uuid.UUID | None
    flow_version_id: uuid.UUID | None
    flow_name: str
    trigger_kind: str
    trigger_event_id: uuid.UUID | None
    status: str = Field(
        description="pending, queued, running, completed, failed, cancelled or crashed."
    )
    cancel_requested_at: datetime | None = Field(
        default=None,
        description="When a cancel was asked for; a running execution stops shortly after.",
    )
    sandbox: bool
    error: str | None
    error_node_id: str | None
    prefect_flow_run_id: uuid.UUID | None
    prefect_url: str | None = Field(
        default=None, description="The flow run in Prefect's UI (operators only)."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    # the row's usage columns, sent as ``usage``
    llm_calls: int = Field(default=0, exclude=True)
    input_tokens: int = Field(default=0, exclude=True)
    output_tokens: int = Field(default=0, exclude=True)
    total_tokens: int = Field(default=0, exclude=True)
    cost_usd: float = Field(default=0.0, exclude=True)
    unpriced_calls: int = Field(default=0, exclude=True)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def duration_ms(self) -> float | None:
        """Milliseconds from start to finish."""
        return _duration_ms(self.started_at, self.finished_at)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def usage(self) -> RunUsageRead | None:
        """Tokens and cost of the run's model calls, totalled when it finishes; null when no
        model was called (or the run has not finished)."""
        return RunUsageRead.of(self._row_usage())

    def _row_usage(self) -> Usage:
        return Usage(
            calls=self.llm_calls,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            total_tokens=self.total_tokens,
            cost_usd=self.cost_usd,
            unpriced_calls=self.unpriced_calls,
        )


class ExecutionRead(ExecutionSummaryRead):
    """One run of a flow with every node run, in graph order."""

    trigger_payload: Any = Field(
        default=None,
        description="The trigger payload as recorded; a preview (truncated, reason) when it "
        "nests too deep to send.",
    )
    node_runs: list[NodeRunRead]

    @field_validator("trigger_payload")
    @classmethod
    def _sendable(cls, value: Any) -> Any:
        # rows written before values were capped may be too deep for the response to serialise
        return readable_json(value)

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def usage(self) -> RunUsageRead | None:
        """Tokens and cost of the run's model calls: the totals written when it finished, else
        (while it runs) the sum over the node runs so far; null when no model was called."""
        totals = self._row_usage()
        if totals.calls == 0 and totals.total_tokens == 0:
            totals = sum_usage(n.output for n in self.node_runs if n.output is not None)
        return RunUsageRead.of(totals)


class ExecutionPage(BaseModel):
    """A page of executions, newest first."""

    items: list[ExecutionSummaryRead]
    total: int = Field(description="Executions matching the filters, over all pages.")
    limit: int
    offset: int


class NodeEventRead(BaseModel):
    """Stream message: a node run's new state (inputs and outputs: read the execution)."""

    model_config = ConfigDict(from_attributes=True)

    type: Literal["node"] = "node"
    workspace_id: uuid.UUID
    execution_id: uuid.UUID
    flow_id: uuid.UUID | None
    node_id: str
    kind: str
    version: int
    label: str
    status: str
    attempts: int
    error: str | None
    error_code: str | None
    fired_ports: list[str] | None
    prefect_task_run_id: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def duration_ms(self) -> float | None:
        """Milliseconds from first start to finish."""
        return _duration_ms(self.started_at, self.finished_at)


class ExecutionEventRead(BaseModel):
    """Stream message: an execution started (running) or ended (its final status)."""

    model_config = ConfigDict(from_attributes=True)

    type: Literal["execution"] = "execution"
    workspace_id: uuid.UUID
    execution_id: uuid.UUID
    flow_id: uuid.UUID | None
    flow_version_id: uuid.UUID | None
    flow_name: str
    status: str
    sandbox: bool
    prefect_flow_run_id: uuid.UUID | None
    error: str | None
    error_node_id: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]  # pydantic's documented pattern
    @property
    def duration_ms(self) -> float | None:
        """Milliseconds from start to finish."""
        return _duration_ms(self.started_at, self.finished_at)


class ExecutionSnapshotRead(BaseModel):
    """Stream message sent first: the current state of the executions the stream covers."""

    type: Literal["snapshot"] = "snapshot"
    workspace_id: uuid.UUID
    execution_id: uuid.UUID | None = Field(description="The one execution followed, if any.")
    executions: list[ExecutionRead] = Field(
        description="Pending and running executions (or the one followed), newest first."
    )
