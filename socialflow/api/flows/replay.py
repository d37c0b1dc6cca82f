"""Replay past events through a flow's draft, in the sandbox, and compare with what the published
version did with the same events: node by node, and the sends in words.

A replay queues, per event, a sandbox run of one snapshot of the draft with the event's trigger
payload, unless the draft's trigger would not take the event (the dispatcher's own ``explain``
says why). Nothing is ever sent: sandbox runs record what they would send in the ledger. The
comparison is computed when the replay is read, so it fills in as the runs finish.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.events.schemas import EventQuery
from socialflow.api.events.service import list_events, visible_to
from socialflow.api.flows.models import Flow, FlowReplay
from socialflow.core.errors import NotFoundError, ValidationError
from socialflow.instagram import OutboxMessage
from socialflow.nodes import NodeRegistry, Rejection
from socialflow.orchestration import (
    EventOutcome,
    ExecutionStatus,
    FlowExecution,
    FlowTrigger,
    GraphSpec,
    NodeRun,
    WebhookEvent,
    compile_graph,
    enqueue_run,
    explain_event,
    readable_json,
    save_snapshot,
)

__all__ = [
    "NodeDiff",
    "ReplayItemRead",
    "ReplayRead",
    "ReplayRequest",
    "ReplaySummary",
    "SendRead",
    "read_replay",
    "start_replay",
]

MAX_REPLAY = 200
_FINAL = frozenset(
    {
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.CRASHED,
    }
)
#: fields of an action result that differ between any two runs (ids, keys, Meta's answer)
_VOLATILE = frozenset(
    {"ledger_id", "idempotency_key", "duplicate", "response", "scheduled_for", "status"}
)
_VERBS = {
    "reply_comment": ("replied", "replies", "a public reply"),
    "private_reply": ("sent a private reply", "sends a private reply", "a private reply"),
    "send_dm": ("sent a DM", "sends a DM", "a DM"),
    "hide_comment": ("hid the comment", "hides the comment", "hiding the comment"),
}


class ReplayRequest(BaseModel):
    """What to replay: given events, given past executions, or the flow's last N events."""

    model_config = ConfigDict(extra="forbid")
    event_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=MAX_REPLAY, description="Events of the event log."
    )
    execution_ids: list[uuid.UUID] | None = Field(
        default=None,
        max_length=MAX_REPLAY,
        description="Past executions of the flow: their events (or trigger payloads).",
    )
    last: int | None = Field(
        default=None,
        ge=1,
        le=MAX_REPLAY,
        description="The flow's last N events: those it ran on or was offered.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ReplayRequest:
        given = [n for n in ("event_ids", "execution_ids", "last") if getattr(self, n)]
        if len(given) != 1:
            msg = "give exactly one of event_ids, execution_ids or last"
            raise ValueError(msg)
        return self


class SendRead(BaseModel):
    """One entry of the send ledger a run wrote."""

    node_id: str
    action: str
    target: str
    text: str | None
    status: str = Field(description="sent, sandboxed, refused, failed, queued or sending.")
    policy_reason: str | None


class NodeDiff(BaseModel):
    """One node in the published run and in the draft's."""

    node_id: str
    label: str
    kind: str
    published_status: str | None = Field(description="None: not in the published run.")
    draft_status: str | None = Field(description="None: not in the draft's run.")
    published_output: Any = None
    draft_output: Any = None
    change: Literal["same", "added", "removed", "status", "output"]


class RunRef(BaseModel):
    """A run taking part in the comparison."""

    execution_id: uuid.UUID
    status: str
    version_number: int | None


class ReplayItemRead(BaseModel):
    """One replayed event: the published run, the draft's run, and how they differ."""

    event_id: uuid.UUID | None
    source_execution_id: uuid.UUID | None
    received_at: datetime | None
    preview: str
    published: RunRef | None = Field(description="The published version's run of the event.")
    published_reason: str | None = Field(
        description="Why the published version did not run it, when it did not."
    )
    draft: RunRef | None = Field(description="The draft's sandbox run.")
    draft_reason: str | None = Field(description="Why the draft would not run it.")
    finished: bool = Field(description="Both runs (those there are) have finished.")
    nodes: list[NodeDiff]
    published_sends: list[SendRead]
    draft_sends: list[SendRead]
    sends_changed: bool
    difference: list[str] = Field(description="The difference in words.")


class ReplaySummary(BaseModel):
    """A replay at a glance."""

    total: int
    finished: int
    changed_sends: int = Field(description="Events whose sends differ.")
    draft_not_run: int = Field(description="Events the draft's trigger would not take.")
    newly_run: int = Field(
        description="Events the published version did not run and the draft does."
    )
    nodes_differing: dict[str, int] = Field(description="Per node id: events where it differs.")
    words: str


class ReplayRead(BaseModel):
    """A replay with every item compared so far."""

    id: uuid.UUID
    flow_id: uuid.UUID
    created_at: datetime
    status: Literal["running", "finished"]
    summary: ReplaySummary
    items: list[ReplayItemRead]


async def start_replay(
    flow: Flow,
    request: ReplayRequest,
    *,
    registry: NodeRegistry,
    user_id: uuid.UUID,
    session: AsyncSession,
) -> FlowReplay:
    """Queue a sandbox run of the draft for each event asked for; record the replay.

    Raises:
        ValidationError: The draft has problems, or an id is not an event or execution of
            this workspace's flow.
    """
    spec = GraphSpec.model_validate(flow.draft)
    compiled = compile_graph(spec, registry)
    trigger_node = compiled.trigger
    draft_trigger = FlowTrigger(
        flow_id=flow.id,
        workspace_id=flow.workspace_id,
        flow_name=flow.name,
        version_id=uuid.uuid4(),
        version_number=0,
        trigger_kind=trigger_node.spec.kind,
        trigger_config=trigger_node.config.model_dump(mode="json"),
        graph="",
        active=True,
        removed=False,
    )
    sources = await _sources(flow, request, session=session)
    draft_version_id = uuid.uuid4()
    await save_snapshot(session, draft_version_id, spec.model_dump_json(exclude_defaults=True))
    items: list[dict[str, Any]] = []
    for event, past in sources:
        item: dict[str, Any] = {
            "event_id": str(event.id) if event is not None else None,
            "source_execution_id": str(past.id) if past is not None else None,
            "draft_execution_id": None,
            "draft_reason": None,
        }
        payload = past.trigger_payload if past is not None else None
        if event is not None:
            verdict = await explain_event(session, registry, event, draft_trigger)
            if verdict is None:
                item["draft_reason"] = (
                    f"the draft's trigger ({trigger_node.spec.kind}) does not take "
                    f"{event.kind} events"
                )
            elif isinstance(verdict, Rejection):
                item["draft_reason"] = verdict.message
            payload = event.payload
        if item["draft_reason"] is None:
            execution_id = await enqueue_run(
                session,
                workspace_id=flow.workspace_id,
                flow_id=flow.id,
                flow_name=flow.name,
                trigger_kind=trigger_node.spec.kind,
                payload=payload or {},
                version_id=draft_version_id,
                sandbox=True,
            )
            item["draft_execution_id"] = str(execution_id)
        items.append(item)
    replay = FlowReplay(
        workspace_id=flow.workspace_id,
        flow_id=flow.id,
        draft_version_id=draft_version_id,
        items=items,
        created_by=user_id,
    )
    session.add(replay)
    await session.commit()
    return replay


async def _sources(
    flow: Flow, request: ReplayRequest, *, session: AsyncSession
) -> list[tuple[WebhookEvent | None, FlowExecution | None]]:
    workspace_id = flow.workspace_id
    if request.last:
        page = await list_events(
            workspace_id, EventQuery(flow_id=flow.id, limit=request.last), session=session
        )
        event_ids = [item.id for item in page.items]
        events = await _events(workspace_id, event_ids, session=session)
        return [(events[i], None) for i in reversed(event_ids) if i in events]
    if request.event_ids:
        events = await _events(workspace_id, request.event_ids, session=session)
        missing = [str(i) for i in request.event_ids if i not in events]
        if missing:
            error = _unknown("event_ids", f"not events of this workspace: {', '.join(missing)}")
            raise error
        return [(events[i], None) for i in request.event_ids]
    ids = request.execution_ids or []
    rows = {
        row.id: row
        for row in await session.scalars(
            select(FlowExecution).where(
                FlowExecution.id.in_(ids),
                FlowExecution.workspace_id == workspace_id,
                FlowExecution.flow_id == flow.id,
            )
        )
    }
    missing = [str(i) for i in ids if i not in rows]
    if missing:
        error = _unknown("execution_ids", f"not executions of this flow: {', '.join(missing)}")
        raise error
    event_ids = [r.trigger_event_id for r in rows.values() if r.trigger_event_id is not None]
    events = await _events(workspace_id, event_ids, session=session)
    pairs: list[tuple[WebhookEvent | None, FlowExecution | None]] = []
    for i in ids:
        event_id = rows[i].trigger_event_id
        pairs.append((events.get(event_id) if event_id is not None else None, rows[i]))
    return pairs


def _unknown(field: str, message: str) -> ValidationError:
    problem = {"field": f"body.{field}", "message": message, "type": "unknown_id"}
    return ValidationError(f"{field}: {message}", problems=[problem])


async def _events(
    workspace_id: uuid.UUID, ids: Sequence[uuid.UUID], *, session: AsyncSession
) -> dict[uuid.UUID, WebhookEvent]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(WebhookEvent).where(WebhookEvent.id.in_(ids), visible_to(workspace_id))
    )
    return {row.id: row for row in rows}


async def read_replay(flow: Flow, replay_id: uuid.UUID, *, session: AsyncSession) -> ReplayRead:
    """The replay with each item compared as far as its runs have got.

    Raises:
        NotFoundError: No such replay of this flow.
    """
    replay = await session.scalar(
        select(FlowReplay).where(FlowReplay.id == replay_id, FlowReplay.flow_id == flow.id)
    )
    if replay is None:
        msg = f"replay {replay_id} not found for this flow"
        raise NotFoundError(msg, code="replay_not_found")
    event_ids = [uuid.UUID(i["event_id"]) for i in replay.items if i["event_id"]]
    events = {
        row.id: row
        for row in await session.scalars(select(WebhookEvent).where(WebhookEvent.id.in_(event_ids)))
    }
    draft_ids = [
        uuid.UUID(i["draft_execution_id"]) for i in replay.items if i["draft_execution_id"]
    ]
    source_ids = [
        uuid.UUID(i["source_execution_id"]) for i in replay.items if i["source_execution_id"]
    ]
    runs = await _runs(flow.workspace_id, [*draft_ids, *source_ids], session=session)
    published = await _published_runs(flow, event_ids, session=session)
    refusals = await _published_refusals(flow, event_ids, session=session)
    pairs = []
    for raw in replay.items:
        event = events.get(uuid.UUID(raw["event_id"])) if raw["event_id"] else None
        source = (
            runs.get(uuid.UUID(raw["source_execution_id"])) if raw["source_execution_id"] else None
        )
        published_run = source or (published.get(event.id) if event is not None else None)
        draft_run = (
            runs.get(uuid.UUID(raw["draft_execution_id"])) if raw["draft_execution_id"] else None
        )
        pairs.append((raw, event, published_run, draft_run))
    compared = [r.id for _, _, *both in pairs for r in both if r is not None]
    records = await _Records.read(compared, session=session)
    items = [
        _compare(
            event,
            raw,
            published_run,
            draft_run,
            refusals.get(event.id) if event is not None else None,
            records,
        )
        for raw, event, published_run, draft_run in pairs
    ]
    summary = _summarise(items)
    return ReplayRead(
        id=replay.id,
        flow_id=replay.flow_id,
        created_at=replay.created_at,
        status="finished" if summary.finished == summary.total else "running",
        summary=summary,
        items=items,
    )


async def _runs(
    workspace_id: uuid.UUID, ids: Sequence[uuid.UUID], *, session: AsyncSession
) -> dict[uuid.UUID, FlowExecution]:
    if not ids:
        return {}
    rows = await session.scalars(
        select(FlowExecution).where(
            FlowExecution.id.in_(ids), FlowExecution.workspace_id == workspace_id
        )
    )
    return {row.id: row for row in rows}


async def _published_runs(
    flow: Flow, event_ids: Sequence[uuid.UUID], *, session: AsyncSession
) -> dict[uuid.UUID, FlowExecution]:
    if not event_ids:
        return {}
    rows = await session.scalars(
        select(FlowExecution)
        .where(
            FlowExecution.trigger_event_id.in_(event_ids),
            FlowExecution.flow_id == flow.id,
            FlowExecution.sandbox.is_(False),
        )
        .order_by(FlowExecution.created_at)
    )
    # the latest version's run of each event
    return {row.trigger_event_id: row for row in rows if row.trigger_event_id is not None}


async def _published_refusals(
    flow: Flow, event_ids: Sequence[uuid.UUID], *, session: AsyncSession
) -> dict[uuid.UUID, str]:
    if not event_ids:
        return {}
    rows = await session.execute(
        select(EventOutcome.event_id, EventOutcome.message).where(
            EventOutcome.event_id.in_(event_ids), EventOutcome.flow_id == flow.id
        )
    )
    return dict(rows.tuples().all())


class _Records:
    """The node runs and ledger entries of a replay's runs, read in one query each."""

    def __init__(
        self, nodes: dict[uuid.UUID, list[NodeRun]], sends: dict[uuid.UUID, list[SendRead]]
    ):
        self._nodes, self._sends = nodes, sends

    @classmethod
    async def read(cls, ids: Sequence[uuid.UUID], *, session: AsyncSession) -> _Records:
        nodes: dict[uuid.UUID, list[NodeRun]] = {}
        sends: dict[uuid.UUID, list[SendRead]] = {}
        if ids:
            for run in await session.scalars(
                select(NodeRun).where(NodeRun.execution_id.in_(ids)).order_by(NodeRun.started_at)
            ):
                nodes.setdefault(run.execution_id, []).append(run)
            for row in await session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.execution_id.in_(ids))
                .order_by(OutboxMessage.created_at)
            ):
                if row.execution_id is None:
                    continue
                sends.setdefault(row.execution_id, []).append(
                    SendRead(
                        node_id=row.node_id,
                        action=row.action,
                        target=row.target,
                        text=(row.payload or {}).get("text"),
                        status=row.status,
                        policy_reason=row.policy_reason,
                    )
                )
        return cls(nodes, sends)

    def nodes(self, run: FlowExecution | None) -> list[NodeRun]:
        return self._nodes.get(run.id, []) if run is not None else []

    def sends(self, run: FlowExecution | None) -> list[SendRead]:
        return self._sends.get(run.id, []) if run is not None else []


def _ref(run: FlowExecution | None) -> RunRef | None:
    if run is None:
        return None
    return RunRef(execution_id=run.id, status=run.status, version_number=run.version_number)


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        volatile = _VOLATILE if "ledger_id" in value else frozenset()
        return {k: _stable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _node_diffs(published: list[NodeRun], draft: list[NodeRun]) -> list[NodeDiff]:
    before = {run.node_id: run for run in published}
    after = {run.node_id: run for run in draft}
    order = [run.node_id for run in draft] + [
        run.node_id for run in published if run.node_id not in after
    ]
    diffs = []
    for node_id in order:
        old, new = before.get(node_id), after.get(node_id)
        change: Literal["same", "added", "removed", "status", "output"]
        if old is None:
            change = "added"
        elif new is None:
            change = "removed"
        elif old.status != new.status:
            change = "status"
        elif _stable(old.output) != _stable(new.output):
            change = "output"
        else:
            change = "same"
        either = new or old
        assert either is not None
        diffs.append(
            NodeDiff(
                node_id=node_id,
                label=either.label,
                kind=either.kind,
                published_status=old.status if old else None,
                draft_status=new.status if new else None,
                published_output=readable_json(old.output) if old else None,
                draft_output=readable_json(new.output) if new else None,
                change=change,
            )
        )
    return diffs


def _quote(text: str | None) -> str:
    if not text:
        return ""
    clipped = text if len(text) <= 200 else text[:199] + "…"
    return f" '{clipped}'"


def _describe(send: SendRead, *, draft: bool) -> str:
    past, present, noun = _VERBS.get(send.action, (send.action, send.action, send.action))
    if send.status == "refused":
        reason = f": {send.policy_reason}" if send.policy_reason else ""
        return f"{noun}{_quote(send.text)} would be refused{reason}"
    if send.status == "failed":
        return f"{noun}{_quote(send.text)} failed"
    return f"{present if draft else past}{_quote(send.text)}"


def _words(
    published: list[SendRead], draft: list[SendRead], *, published_ran: bool = True
) -> tuple[bool, list[str]]:
    def key(send: SendRead) -> tuple[str, str, str]:
        return (send.node_id, send.action, send.target)

    old = {key(s): s for s in published}
    new = {key(s): s for s in draft}
    words: list[str] = []
    changed = False
    for k, send in new.items():
        before = old.get(k)
        if before is None:
            changed = True
            # "also" beside what the published run sent; "now" where it did not run at all
            words.append(
                f"the draft {'also' if published_ran else 'now'} {_describe(send, draft=True)}"
            )
        elif (before.text, before.status == "refused") != (send.text, send.status == "refused"):
            changed = True
            was, now = _describe(before, draft=False), _describe(send, draft=True)
            words.append(f"published {was}; the draft {now}")
        else:
            words.append(f"both {_describe(send, draft=True)}")
    for k, send in old.items():
        if k not in new:
            changed = True
            words.append(
                f"the draft no longer {_VERBS.get(send.action, ('', send.action, ''))[1]}"
                f" (published {_describe(send, draft=False)})"
            )
    return changed, words


def _compare(
    event: WebhookEvent | None,
    raw: dict[str, Any],
    published: FlowExecution | None,
    draft: FlowExecution | None,
    published_refusal: str | None,
    records: _Records,
) -> ReplayItemRead:
    finished = all(run.status in _FINAL for run in (published, draft) if run is not None)
    published_sends = records.sends(published)
    draft_sends = records.sends(draft)
    nodes = _node_diffs(records.nodes(published), records.nodes(draft))
    difference: list[str] = []
    if draft is None:
        difference.append(f"the draft would not run: {raw['draft_reason']}")
        changed = bool(published_sends)
        if published_sends:
            difference.append(
                "published " + "; ".join(_describe(s, draft=False) for s in published_sends)
            )
    else:
        if published is None:
            reason = published_refusal or "no run of the published version is recorded"
            difference.append(f"the published version did not run ({reason})")
        changed, words = _words(published_sends, draft_sends, published_ran=published is not None)
        if published is None and not draft_sends and finished:
            words.append("the draft sends nothing")
        elif not words and finished:
            words.append("neither sends anything")
        difference.extend(words)
    payload = (
        event.payload if event is not None else (published.trigger_payload if published else {})
    )
    text = (payload or {}).get("text") if isinstance(payload, dict) else None
    return ReplayItemRead(
        event_id=event.id if event is not None else None,
        source_execution_id=uuid.UUID(raw["source_execution_id"])
        if raw["source_execution_id"]
        else None,
        received_at=event.received_at if event is not None else None,
        preview=str(text or (event.kind if event is not None else "payload"))[:140],
        published=_ref(published),
        published_reason=published_refusal if published is None else None,
        draft=_ref(draft),
        draft_reason=raw["draft_reason"],
        finished=finished,
        nodes=nodes,
        published_sends=published_sends,
        draft_sends=draft_sends,
        sends_changed=changed,
        difference=difference,
    )


def _summarise(items: list[ReplayItemRead]) -> ReplaySummary:
    differing: dict[str, int] = {}
    for item in items:
        if item.draft is None:
            continue
        for node in item.nodes:
            if node.change != "same":
                differing[node.node_id] = differing.get(node.node_id, 0) + 1
    total = len(items)
    changed = sum(item.sends_changed for item in items)
    not_run = sum(item.draft is None for item in items)
    newly = sum(item.published is None and item.draft is not None for item in items)
    words = f"{changed} of {total} events change their sends"
    if not_run:
        words += f"; the draft would not run {not_run}"
    if newly:
        words += f"; the draft runs {newly} the published version did not"
    if differing:
        words += "; nodes that differ: " + ", ".join(
            f"{node} ({count})" for node, count in sorted(differing.items())
        )
    return ReplaySummary(
        total=total,
        finished=sum(item.finished for item in items),
        changed_sends=changed,
        draft_not_run=not_run,
        newly_run=newly,
        nodes_differing=differing,
        words=words,
    )
