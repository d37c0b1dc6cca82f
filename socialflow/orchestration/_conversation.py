"""Running the executions of one conversation in order: the condition a worker's claim adds.

Events that concern the same conversation (an Instagram DM thread, a comment thread; see
``socialflow.instagram.conversation_key``) carry a ``conversation_key`` and their place in it,
``(conversation_at, conversation_seq, event id)``: when the event happened, then its position in
the body it came in, then its id so the order is total. Their executions copy these columns.

An execution with a key may be claimed only when, in its workspace, no execution of another
event of the conversation is running, none of an earlier event is waiting to run, and no
earlier event of the conversation is still in the inbox (pending dispatch, which may queue an
earlier run). The rule lives in the database, so it holds across workers and slots, through
restarts, and whichever dispatcher queued what: a later event's run never starts before an
earlier one's has finished. Runs of one event (several flows) may run together.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, or_, tuple_
from sqlalchemy.orm import aliased

from socialflow.orchestration._inbox_models import EventStatus, WebhookEvent
from socialflow.orchestration._models import ExecutionStatus, FlowExecution

__all__ = ["conversation_turn"]


def conversation_turn(now: datetime) -> ColumnElement[bool]:
    """A condition on ``FlowExecution``: true when the row may start now as far as its
    conversation goes (always, for a row without a conversation).

    Args:
        now: The claim's clock, to tell a live run (lease held) from an abandoned one.
    """
    other = aliased(FlowExecution)
    place = tuple_(
        FlowExecution.conversation_at,
        FlowExecution.conversation_seq,
        FlowExecution.trigger_event_id,
    )
    live = (other.status == ExecutionStatus.RUNNING) & (other.lease_until >= now)
    other_place = tuple_(other.conversation_at, other.conversation_seq, other.trigger_event_id)
    earlier_run = exists().where(
        other.conversation_key == FlowExecution.conversation_key,
        other.workspace_id == FlowExecution.workspace_id,
        other.trigger_event_id != FlowExecution.trigger_event_id,
        other.status.in_((ExecutionStatus.QUEUED, ExecutionStatus.RUNNING)),
        # a live run blocks whatever its place (an older event that came late waits for it);
        # a queued or abandoned one only when it comes first
        or_(live, other_place < place),
    )
    earlier_event = exists().where(
        WebhookEvent.conversation_key == FlowExecution.conversation_key,
        WebhookEvent.status == EventStatus.PENDING,
        # events of a per-flow endpoint belong to one workspace; app-level ones to any
        or_(
            WebhookEvent.workspace_id.is_(None),
            WebhookEvent.workspace_id == FlowExecution.workspace_id,
        ),
        tuple_(WebhookEvent.conversation_at, WebhookEvent.conversation_seq, WebhookEvent.id)
        < place,
    )
    return or_(
        FlowExecution.conversation_key.is_(None),
        and_(~earlier_run, ~earlier_event),
    )
