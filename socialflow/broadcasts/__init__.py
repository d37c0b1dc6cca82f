"""Broadcasts: one message to a segment of contacts, now or at a time, as a Prefect run that
checks Meta's rules per recipient at send time and sends through the Instagram ledger.

The ORM models (``Broadcast``, ``BroadcastRecipient``) register their tables on import.
"""

from socialflow.broadcasts import _service as broadcasts
from socialflow.broadcasts._flow import (
    DEPLOYMENT,
    cancel_run,
    get_broadcast_context,
    schedule_run,
    send_broadcast,
    set_broadcast_context,
)
from socialflow.broadcasts._models import (
    Broadcast,
    BroadcastRecipient,
    BroadcastStatus,
    RecipientStatus,
)
from socialflow.broadcasts._schemas import BroadcastFields, QuickReply
from socialflow.broadcasts._segment import (
    REASONS,
    FieldCondition,
    Segment,
    count_by_reason,
    reason_of,
    segment_conditions,
)
from socialflow.broadcasts._sender import PAGE_SIZE, BroadcastContext, Outcome, Sender
from socialflow.broadcasts._service import Preview, Progress

__all__ = [
    "DEPLOYMENT",
    "PAGE_SIZE",
    "REASONS",
    "Broadcast",
    "BroadcastContext",
    "BroadcastFields",
    "BroadcastRecipient",
    "BroadcastStatus",
    "FieldCondition",
    "Outcome",
    "Preview",
    "Progress",
    "QuickReply",
    "RecipientStatus",
    "Segment",
    "Sender",
    "broadcasts",
    "cancel_run",
    "count_by_reason",
    "get_broadcast_context",
    "reason_of",
    "schedule_run",
    "segment_conditions",
    "send_broadcast",
    "set_broadcast_context",
]
