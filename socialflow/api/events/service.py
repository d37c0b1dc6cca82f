"""The event log: a workspace's inbound events and, per flow that could have taken each, whether
it ran or the reason the dispatcher recorded for not running it.

A workspace sees the events addressed to it (its webhooks) and the Instagram events of the
accounts it connected. "Ran" comes from the executions an event queued; "did not run" from
``event_outcome``, written by the dispatcher with the reason of the very code that decided.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.events.schemas import (
    EventDetail,
    EventFlowOutcome,
    EventOutcomeKind,
    EventPage,
    EventQuery,
    EventSummary,
)
from socialflow.core.errors import NotFoundError
from socialflow.instagram import InstagramAccount
from socialflow.orchestration import (
    ConversationWait,
    EventOutcome,
    EventStatus,
    FlowExecution,
    WaitStatus,
    WebhookEvent,
    readable_json,
)

__all__ = ["get_event", "list_events", "redact", "visible_to"]

REDACTED = "[redacted]"
#: keys whose values are never shown: credentials a sender may have put in a body or header
_SECRET_KEY = re.compile(
    r"(token|secret|passw|signature|authori[sz]ation|api[-_]?key|cookie|session|credential)",
    re.IGNORECASE,
)
_PREVIEW = 140
_RAW_TEXT_LIMIT = 20_000


def redact(value: Any) -> Any:
    """``value`` with every value under a key that names a secret replaced, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def visible_to(workspace_id: uuid.UUID) -> ColumnElement[bool]:
    """The events a workspace sees: its webhooks', and its connected accounts' Instagram events."""
    accounts = select(InstagramAccount.ig_user_id).where(
        InstagramAccount.workspace_id == workspace_id
    )
    return or_(
        WebhookEvent.workspace_id == workspace_id,
        and_(WebhookEvent.source == "instagram", WebhookEvent.account_id.in_(accounts)),
    )


def _ran(workspace_id: uuid.UUID) -> ColumnElement[bool]:
    return exists().where(
        FlowExecution.trigger_event_id == WebhookEvent.id,
        FlowExecution.workspace_id == workspace_id,
    )


def _resumed(workspace_id: uuid.UUID) -> ColumnElement[bool]:
    return exists().where(
        ConversationWait.event_id == WebhookEvent.id,
        ConversationWait.workspace_id == workspace_id,
        ConversationWait.status == WaitStatus.ANSWERED,
    )


def _conditions(workspace_id: uuid.UUID, query: EventQuery) -> list[ColumnElement[bool]]:
    conditions = [visible_to(workspace_id)]
    if query.source:
        conditions.append(WebhookEvent.source.in_(query.source))
    if query.kind:
        conditions.append(WebhookEvent.kind == query.kind)
    if query.account:
        conditions.append(WebhookEvent.account_id == query.account)
    if query.flow_id is not None:
        conditions.append(
            or_(
                WebhookEvent.flow_id == query.flow_id,
                exists().where(
                    FlowExecution.trigger_event_id == WebhookEvent.id,
                    FlowExecution.flow_id == query.flow_id,
                    FlowExecution.workspace_id == workspace_id,
                ),
                exists().where(
                    EventOutcome.event_id == WebhookEvent.id,
                    EventOutcome.flow_id == query.flow_id,
                    EventOutcome.workspace_id == workspace_id,
                ),
            )
        )
    if query.outcome == "ran":
        conditions.append(_ran(workspace_id))
    elif query.outcome == "resumed":
        conditions.append(~_ran(workspace_id))
        conditions.append(_resumed(workspace_id))
    elif query.outcome == "not_run":
        conditions.append(WebhookEvent.status.in_((EventStatus.DISPATCHED, EventStatus.IGNORED)))
        conditions.append(~_ran(workspace_id))
        conditions.append(~_resumed(workspace_id))
    elif query.outcome == "pending":
        conditions.append(WebhookEvent.status == EventStatus.PENDING)
    elif query.outcome == "failed":
        conditions.append(WebhookEvent.status == EventStatus.FAILED)
    if query.received_after is not None:
        conditions.append(WebhookEvent.received_at >= query.received_after)
    if query.received_before is not None:
        conditions.append(WebhookEvent.received_at < query.received_before)
    return conditions


async def list_events(
    workspace_id: uuid.UUID, query: EventQuery, *, session: AsyncSession
) -> EventPage:
    """A page of the workspace's events matching ``query``, newest first."""
    conditions = _conditions(workspace_id, query)
    total = await session.scalar(select(func.count()).select_from(WebhookEvent).where(*conditions))
    rows = list(
        await session.scalars(
            select(WebhookEvent)
            .where(*conditions)
            .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    )
    flows = await _flow_outcomes(workspace_id, [row.id for row in rows], session=session)
    items = [_summary(row, flows.get(row.id, [])) for row in rows]
    return EventPage(items=items, total=total or 0, limit=query.limit, offset=query.offset)


async def get_event(
    workspace_id: uuid.UUID, event_id: uuid.UUID, *, session: AsyncSession
) -> EventDetail:
    """One event of the workspace with its payload and what became of it.

    Raises:
        NotFoundError: No such event visible to this workspace.
    """
    row = await session.scalar(
        select(WebhookEvent).where(WebhookEvent.id == event_id, visible_to(workspace_id))
    )
    if row is None:
        msg = f"event {event_id} not found in this workspace"
        raise NotFoundError(msg, code="event_not_found")
    flows = await _flow_outcomes(workspace_id, [row.id], session=session)
    summary = _summary(row, flows.get(row.id, []))
    payload = readable_json(redact(row.payload))
    return EventDetail(
        **summary.model_dump(),
        payload=payload,
        raw_body=_raw_body(row.raw_body),
        headers=redact(row.headers or {}),
        attempts=row.attempts,
        last_error=row.last_error,
        dispatched_at=row.dispatched_at,
        sample={
            "label": f"{row.kind} of {row.received_at:%Y-%m-%d %H:%M}",
            "kind": row.kind,
            "payload": payload,
        },
    )


async def _flow_outcomes(
    workspace_id: uuid.UUID, event_ids: Sequence[uuid.UUID], *, session: AsyncSession
) -> dict[uuid.UUID, list[EventFlowOutcome]]:
    if not event_ids:
        return {}
    out: dict[uuid.UUID, list[EventFlowOutcome]] = {}
    runs = await session.execute(
        select(
            FlowExecution.trigger_event_id,
            FlowExecution.flow_id,
            FlowExecution.flow_name,
            FlowExecution.version_number,
            FlowExecution.id,
            FlowExecution.status,
            FlowExecution.sandbox,
        )
        .where(
            FlowExecution.trigger_event_id.in_(event_ids),
            FlowExecution.workspace_id == workspace_id,
        )
        .order_by(FlowExecution.created_at)
    )
    for event_id, flow_id, name, version, execution_id, status, sandbox in runs.tuples():
        if event_id is None or flow_id is None:
            continue
        out.setdefault(event_id, []).append(
            EventFlowOutcome(
                flow_id=flow_id,
                flow_name=name or "",
                version_number=version,
                ran=True,
                execution_id=execution_id,
                execution_status=str(status),
                sandbox=sandbox,
            )
        )
    await _wait_outcomes(workspace_id, event_ids, out, session=session)
    refused = await session.scalars(
        select(EventOutcome)
        .where(EventOutcome.event_id.in_(event_ids), EventOutcome.workspace_id == workspace_id)
        .order_by(EventOutcome.flow_name)
    )
    for outcome in refused:
        out.setdefault(outcome.event_id, []).append(
            EventFlowOutcome(
                flow_id=outcome.flow_id,
                flow_name=outcome.flow_name,
                version_number=outcome.version_number,
                ran=False,
                code=outcome.code,
                reason=outcome.message,
                field=outcome.field,
            )
        )
    return out


async def _wait_outcomes(
    workspace_id: uuid.UUID,
    event_ids: Sequence[uuid.UUID],
    out: dict[uuid.UUID, list[EventFlowOutcome]],
    *,
    session: AsyncSession,
) -> None:
    """The waiting runs the events answered (resumed) or, global keywords, ended."""
    waits = await session.execute(
        select(ConversationWait, FlowExecution.flow_name, FlowExecution.version_number)
        .join(FlowExecution, FlowExecution.id == ConversationWait.execution_id)
        .where(
            ConversationWait.event_id.in_(event_ids),
            ConversationWait.workspace_id == workspace_id,
        )
        .order_by(ConversationWait.created_at)
    )
    for wait, name, version in waits.tuples():
        if wait.event_id is None or wait.flow_id is None:
            continue
        answered = wait.status != WaitStatus.CANCELLED
        out.setdefault(wait.event_id, []).append(
            EventFlowOutcome(
                flow_id=wait.flow_id,
                flow_name=name or "",
                version_number=version,
                ran=False,
                resumed=answered,
                execution_id=wait.execution_id,
                code="resumed_wait" if answered else "wait_cancelled",
                reason=(
                    f"answered the run waiting at node {wait.node_id!r}, which went on"
                    if answered
                    else f"a global keyword: ended the run waiting at node {wait.node_id!r} "
                    "and went to the flows"
                ),
            )
        )


def _summary(row: WebhookEvent, flows: list[EventFlowOutcome]) -> EventSummary:
    outcome: EventOutcomeKind
    if any(flow.ran for flow in flows):
        outcome, reason = "ran", None
    elif any(flow.resumed for flow in flows):
        outcome, reason = "resumed", None
    elif row.status == EventStatus.PENDING:
        outcome = "pending"
        reason = "waiting to be dispatched" + (
            f" (attempt {row.attempts + 1}; last error: {row.last_error})" if row.last_error else ""
        )
    elif row.status == EventStatus.FAILED:
        outcome, reason = "failed", f"dispatching failed: {row.last_error or 'unknown error'}"
    else:
        outcome = "not_run"
        refused = [flow for flow in flows if not flow.ran]
        reason = refused[0].reason if refused else _no_listener(row)
    return EventSummary(
        id=row.id,
        source=row.source,
        kind=row.kind,
        account_id=row.account_id,
        flow_id=row.flow_id,
        received_at=row.received_at,
        status=row.status,
        outcome=outcome,
        preview=_preview(row),
        reason=reason,
        flows=flows,
    )


def _no_listener(row: WebhookEvent) -> str:
    if row.source == "instagram":
        return (
            f"no published flow of this workspace takes {row.kind} events of account "
            f"{row.account_id}"
        )
    if row.flow_id is not None:
        return "the flow it was addressed to was no longer published when it was dispatched"
    return f"no published flow of this workspace takes {row.kind} events"


def _preview(row: WebhookEvent) -> str:
    payload = row.payload if isinstance(row.payload, dict) else {}
    text = payload.get("text")
    if not isinstance(text, str) or not text:
        body = payload.get("body")
        text = json.dumps(redact(body), ensure_ascii=False) if body not in (None, {}) else ""
    if not text:
        text = str(payload.get("kind") or row.kind)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 1] + "…"


def _raw_body(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return readable_json(redact(json.loads(raw)))
    except (ValueError, RecursionError):
        text = raw.decode("utf-8", errors="replace")
    # a form body (``a=1&token=…``) is redacted field by field, as JSON is by key
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        pairs = []
    if pairs:
        text = urlencode(
            [(key, REDACTED if _SECRET_KEY.search(key) else value) for key, value in pairs]
        )
    return text if len(text) <= _RAW_TEXT_LIMIT else text[:_RAW_TEXT_LIMIT] + "…"
