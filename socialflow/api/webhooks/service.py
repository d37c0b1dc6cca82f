"""Storing a verified Instagram webhook body in the inbox, one row per event; the flow a
per-flow callback feeds."""

from __future__ import annotations

import json
import uuid

from pydantic import BaseModel

from socialflow.core.db import utcnow
from socialflow.core.errors import NotFoundError
from socialflow.instagram import parse_body
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import EventIn, EventStatus, InboxWriter, TriggerCache

__all__ = ["WebhookReceipt", "instagram_flow_workspace", "store_webhook"]


class WebhookReceipt(BaseModel):
    """What became of a webhook body: events found, newly stored, already known."""

    received: int
    stored: int
    duplicates: int


async def store_webhook(
    inbox: InboxWriter,
    body: bytes,
    *,
    flow_id: uuid.UUID | None = None,
    workspace_id: uuid.UUID | None = None,
) -> WebhookReceipt:
    """Split a signature-checked body into events and store them, duplicates acknowledged.

    Events of an unknown kind are stored already ignored; every other event waits for the
    dispatcher, which resolves the owning workspaces through the connected accounts.

    Args:
        inbox: The process's inbox writer; returns once the events are committed.
        body: The raw request body.
        flow_id: The flow of a per-flow endpoint; its events are scoped to that flow.
        workspace_id: The workspace of that flow.

    Raises:
        MalformedWebhookError: The body is not a webhook.
    """
    parsed = parse_body(body, key_scope=f"flow:{flow_id}" if flow_id else "")
    received_at = utcnow()
    rows = [
        EventIn(
            source="instagram",
            kind=p.inbox_kind,
            dedupe_key=p.dedupe_key,
            payload=p.event.model_dump(mode="json"),
            workspace_id=workspace_id,
            flow_id=flow_id,
            account_id=p.event.account_id[:100] or None,
            # the item this event came from (the signed body may hold a thousand of them)
            raw_body=json.dumps(p.raw, ensure_ascii=False, default=str).encode(),
            status=EventStatus.IGNORED if p.event.kind == "unknown" else EventStatus.PENDING,
            # Meta batches events out of order (SPEC §4): a conversation's flows run by the
            # events' timestamps, then by their position in the body
            conversation_key=p.conversation_key,
            conversation_at=p.event.occurred_at or received_at,
            conversation_seq=position,
        )
        for position, p in enumerate(parsed)
    ]
    stored = await inbox.store(rows) if rows else []
    duplicates = sum(1 for s in stored if s.duplicate)
    return WebhookReceipt(received=len(rows), stored=len(rows) - duplicates, duplicates=duplicates)


async def instagram_flow_workspace(
    triggers: TriggerCache, registry: NodeRegistry, flow_id: uuid.UUID
) -> uuid.UUID:
    """The workspace of ``flow_id``, a published flow with an Instagram trigger.

    Raises:
        NotFoundError: The flow has no published Instagram trigger.
    """
    instagram_kinds = {
        n.kind
        for n in registry
        if n.is_trigger() and any(k.startswith("instagram.") for k in n.event_kinds)
    }
    trigger = await triggers.get(flow_id)
    if trigger is None or trigger.trigger_kind not in instagram_kinds:
        msg = f"flow {flow_id} has no published Instagram trigger"
        raise NotFoundError(msg, code="webhook_not_found")
    return trigger.workspace_id
