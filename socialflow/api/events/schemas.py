"""What the event log endpoints take and send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "EventDetail",
    "EventFlowOutcome",
    "EventOutcomeKind",
    "EventPage",
    "EventQuery",
    "EventSummary",
]

#: ran: at least one flow of the workspace ran; resumed: it answered a run waiting for the
#: sender's reply, which went on (and started no new run); not_run: dispatched and no flow ran
#: (each flow that could have taken it says why); pending: not dispatched yet; failed:
#: dispatching it failed for good
EventOutcomeKind = Literal["ran", "resumed", "not_run", "pending", "failed"]


class EventQuery(BaseModel):
    """Which events to list (every given filter must match), and which page."""

    source: list[str] | None = Field(
        default=None,
        description=(
            "Events from any of these sources: instagram, webhook, manual (run now and re-runs)"
            " (repeat the parameter)."
        ),
    )
    kind: str | None = Field(
        default=None, max_length=100, description="Events of this kind, e.g. instagram.comment."
    )
    account: str | None = Field(
        default=None, max_length=100, description="Instagram events of this account (ig_user_id)."
    )
    flow_id: uuid.UUID | None = Field(
        default=None,
        description="Events addressed to this flow, that ran it, or that it did not take.",
    )
    outcome: EventOutcomeKind | None = Field(default=None, description="What became of them.")
    received_after: datetime | None = Field(
        default=None, description="Received at or after this time (UTC when no offset)."
    )
    received_before: datetime | None = Field(
        default=None, description="Received before this time (UTC when no offset)."
    )
    limit: int = Field(default=50, ge=1, le=200, description="Page size.")
    offset: int = Field(default=0, ge=0, description="Events to skip.")

    @field_validator("received_after", "received_before")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class EventFlowOutcome(BaseModel):
    """What became of an event for one flow that could have taken it."""

    flow_id: uuid.UUID
    flow_name: str
    version_number: int | None = Field(description="The published version that decided.")
    ran: bool
    resumed: bool = Field(
        default=False,
        description="The event answered this flow's run that waited for the sender's reply: "
        "that run went on (execution_id), no new one started.",
    )
    execution_id: uuid.UUID | None = Field(
        default=None, description="The run, when it ran or was resumed."
    )
    execution_status: str | None = Field(default=None, description="The run's status.")
    sandbox: bool | None = Field(default=None, description="Whether the run sent nothing.")
    code: str | None = Field(
        default=None,
        description=(
            "Why it did not run: filter_not_matched, kind_off, account_filter, media_filter, "
            "not_mentioned, echo, own_comment, dashboard_test, flow_paused, human_takeover; "
            "resumed_wait when "
            "it answered a waiting run; wait_cancelled when, a global keyword, it ended one."
        ),
    )
    reason: str | None = Field(default=None, description="Why it did not run, in words.")
    field: str | None = Field(default=None, description="The event field the reason is about.")


class EventSummary(BaseModel):
    """One inbound event in the list."""

    id: uuid.UUID
    source: str
    kind: str
    account_id: str | None
    flow_id: uuid.UUID | None = Field(description="The flow a webhook event was addressed to.")
    received_at: datetime
    status: str = Field(description="Inbox status: pending, dispatched, ignored or failed.")
    outcome: EventOutcomeKind
    preview: str = Field(description="The event's text or what it is, shortened.")
    reason: str | None = Field(
        description="When nothing ran: why, in words (the first flow's reason, or the event's)."
    )
    flows: list[EventFlowOutcome] = Field(
        description="Per flow of the workspace that could have taken it: ran, or why not."
    )


class EventPage(BaseModel):
    """A page of events, newest first."""

    items: list[EventSummary]
    total: int
    limit: int
    offset: int


class EventDetail(EventSummary):
    """One event with its payload (secrets and tokens replaced by ``[redacted]``)."""

    payload: Any = Field(description="The event as triggers receive it (``trigger.*``).")
    raw_body: Any = Field(
        description="The body as it arrived: JSON when it parsed, else text; null when not kept."
    )
    headers: dict[str, Any] = Field(description="Headers kept with the event.")
    attempts: int = Field(description="Dispatch attempts.")
    last_error: str | None = Field(description="The last dispatch error.")
    dispatched_at: datetime | None
    sample: dict[str, Any] = Field(
        description="The event as a test sample: {label, kind, payload} for a draft's test run."
    )
