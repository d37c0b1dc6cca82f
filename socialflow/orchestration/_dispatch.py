"""The dispatcher: turns stored inbox events into queued executions, exactly once.

It claims pending events for the length of its transaction (``socialflow.core.lease``'s
``lock_for_claim``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several dispatchers share the
work; the database's write lock on SQLite, so they take turns), offers each to the flows that
could take it (the event's own flow, or the flows of the workspaces that connected its account
whose trigger kind takes its kind, paused ones included), and inserts one execution per (event,
version) that accepts it with ``ON CONFLICT DO NOTHING`` on that pair: a retry, a second
dispatcher or a restart can never queue a second run. For every flow that does not take it, the
reason the deciding code gave is written to ``event_outcome`` in the same transaction, so the
event log shows why. Before any trigger, a message or button tap answers the run of each
workspace that waits for its sender on its account (``_waits.resume_for_event``): that run is
queued again, and the event starts no new run in that workspace; a global keyword ends the wait
instead and goes to the triggers as usual. In the same transaction the batch's Instagram events
create or update the contacts they name (``socialflow.contacts.record_sightings``: one upsert per
batch, whose failure is logged and never holds an event back); the profiles of people who
messaged are read after the commit, outside the claim. An event whose dispatch fails stays
pending and is retried with backoff; nothing accepted is dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.contacts import EventRef, contact_id, record_sightings, sighting, taken_over
from socialflow.core.db import Database, utcnow
from socialflow.core.lease import lock_for_claim
from socialflow.core.logging import get_logger
from socialflow.instagram import InstagramAccount, LoginKind, mentions_username
from socialflow.nodes import BaseNode, NodeRegistry, Rejection
from socialflow.nodes.builtins.instagram_triggers import own_event_rejection
from socialflow.orchestration._cancel import mark_prefect_cancelled
from socialflow.orchestration._inbox import QUEUE_CHANNEL, notify
from socialflow.orchestration._inbox_models import (
    EventOutcome,
    EventStatus,
    FlowTrigger,
    WebhookEvent,
)
from socialflow.orchestration._models import ExecutionStatus, FlowExecution
from socialflow.orchestration._wait_models import WaitStatus
from socialflow.orchestration._waits import WaitResolution, resume_for_event
from socialflow.orchestration._wakeup import Wakeup

__all__ = [
    "Dispatcher",
    "backoff_seconds",
    "explain",
    "instagram_owners",
    "map_page_entries",
    "verdict",
]

_log = get_logger(__name__)
_MAX_BACKOFF = 600.0
#: inbox kinds in which Instagram Login delivers @mentions of the account (SPEC U6)
_MENTION_CARRIERS = ("instagram.comment",)
#: inbox kinds whose account is the webhook's ``entry.id``, which may be a Page id (SPEC U3)
_ENTRY_ADDRESSED = ("instagram.comment", "instagram.live_comment", "instagram.mention")
_BASE_ACCEPTS = BaseNode.accepts.__func__  # type: ignore[attr-defined]

#: reads the profiles of contacts that just messaged an account (``ProfileReader.refresh``)
ProfileRefresh = Callable[[list[uuid.UUID]], Awaitable[object]]

#: per Instagram account: the workspaces that connected it, each with the handle whose
#: @mentions in comments count as mentions (Instagram Login accounts only), or None
Owners = dict[str, dict[uuid.UUID, str | None]]


def backoff_seconds(attempts: int) -> float:
    """Delay before retry number ``attempts``: 1, 2, 4 … seconds, at most ten minutes."""
    return float(min(_MAX_BACKOFF, 2 ** max(0, attempts - 1)))


class Dispatcher:
    """Queues executions for pending events.

    Args:
        db: The application database.
        registry: Node kinds, to ask each trigger whether it accepts an event.
        batch: Events claimed per round.
        profiles: Called after each round with the contacts that messaged an account in it,
            to read their profiles from Meta outside the round's transaction; None reads none.
    """

    def __init__(
        self,
        db: Database,
        registry: NodeRegistry,
        *,
        batch: int = 200,
        profiles: ProfileRefresh | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.batch = batch
        self.profiles = profiles
        self._background: set[asyncio.Future[object]] = set()

    async def dispatch_once(self) -> int:
        """Dispatch one batch of due events.

        Returns:
            How many events were handled (dispatched, ignored or deferred).
        """
        async with self.db.sessionmaker() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            query = (
                select(WebhookEvent)
                .where(
                    WebhookEvent.status == EventStatus.PENDING,
                    WebhookEvent.next_attempt_at <= utcnow(),
                )
                .order_by(WebhookEvent.received_at)
                .limit(self.batch)
            )
            query = await lock_for_claim(session, query, WebhookEvent)
            events = list((await session.scalars(query)).all())
            if not events:
                await session.rollback()
                return 0
            await map_page_entries(session, events)
            triggers = await self._triggers(session, events)
            owners = await self._instagram_owners(session, events)
            consented = await self._contacts(session, events, owners)
            paused = await self._taken_over(session, events, owners)
            queued = 0
            cancelled: list[uuid.UUID] = []
            for event in events:
                try:
                    async with session.begin_nested():
                        # a run waiting for this sender's answer takes it before any trigger;
                        # a person who took the conversation over answers it instead
                        held = paused.get(event.id, frozenset())
                        resolved = await resume_for_event(
                            session, event, set(owners.get(event.account_id or "", {})) - held
                        )
                        queued += await self._dispatch(
                            session, event, triggers, postgres, owners, resolved, held
                        )
                        cancelled += [
                            r.prefect_flow_run_id
                            for r in resolved
                            if r.prefect_flow_run_id is not None
                        ]
                except Exception as exc:
                    event.attempts += 1
                    event.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    event.next_attempt_at = utcnow() + timedelta(
                        seconds=backoff_seconds(event.attempts)
                    )
                    _log.warning(
                        "dispatch failed; will retry",
                        event_id=str(event.id),
                        error=event.last_error,
                    )
            # an event of a conversation leaving the inbox may free later runs of it to start
            if queued or any(e.conversation_key for e in events):
                await notify(session, QUEUE_CHANNEL)
            await session.commit()
        if consented and self.profiles is not None:
            task = asyncio.ensure_future(self.profiles(consented))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        for flow_run_id in cancelled:  # runs a global keyword ended while they waited
            await mark_prefect_cancelled(flow_run_id)
        return len(events)

    async def run(self, stop: asyncio.Event, wakeup: Wakeup) -> None:
        """Dispatch until ``stop`` is set, sleeping on ``wakeup`` when there is nothing to do."""
        while not stop.is_set():
            try:
                handled = await self.dispatch_once()
            except Exception:
                _log.exception("dispatcher round failed")
                handled = 0
            if handled < self.batch:
                await wakeup.wait()

    async def _triggers(
        self, session: AsyncSession, events: list[WebhookEvent]
    ) -> list[FlowTrigger]:
        flow_ids = {e.flow_id for e in events if e.flow_id is not None}
        kinds = {e.kind for e in events}
        trigger_kinds = [
            n.kind for n in self.registry if n.is_trigger() and set(n.event_kinds) & kinds
        ]
        # paused flows too: they take nothing, and their events say so
        rows = await session.scalars(
            select(FlowTrigger).where(
                FlowTrigger.removed.is_(False),
                or_(FlowTrigger.flow_id.in_(flow_ids), FlowTrigger.trigger_kind.in_(trigger_kinds)),
            )
        )
        return list(rows)

    async def _instagram_owners(self, session: AsyncSession, events: list[WebhookEvent]) -> Owners:
        return await instagram_owners(session, events)

    async def _contacts(
        self, session: AsyncSession, events: list[WebhookEvent], owners: Owners
    ) -> list[uuid.UUID]:
        """Create or update the contacts the batch's Instagram events name, in one statement;
        a failure here is logged and never keeps an event from being dispatched."""
        refs = [
            EventRef(e.id, e.account_id, e.payload)
            for e in events
            if e.source == "instagram" and e.account_id and e.account_id in owners
        ]
        if not refs:
            return []
        try:
            async with session.begin_nested():
                return await record_sightings(session, refs, owners)
        except Exception:
            _log.exception("contacts not recorded for a batch of events", events=len(refs))
            return []

    async def _taken_over(
        self, session: AsyncSession, events: list[WebhookEvent], owners: Owners
    ) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
        """For each event from a contact a person took over: the workspaces whose flows skip
        it (a contact is per workspace and account)."""
        people: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]] = {}
        for event in events:
            if event.source != "instagram" or not event.account_id:
                continue
            seen = sighting(EventRef(event.id, event.account_id, event.payload))
            if seen is None:
                continue
            people[event.id] = [
                (workspace, contact_id(workspace, event.account_id, seen.igsid))
                for workspace in owners.get(event.account_id, {})
            ]
        held = await taken_over(session, (c for found in people.values() for _, c in found))
        if not held:
            return {}
        return {
            event_id: frozenset(w for w, c in found if c in held)
            for event_id, found in people.items()
            if any(c in held for _, c in found)
        }

    async def _dispatch(
        self,
        session: AsyncSession,
        event: WebhookEvent,
        triggers: list[FlowTrigger],
        postgres: bool,
        owners: Owners | None = None,
        resolved: list[WaitResolution] | None = None,
        held: frozenset[uuid.UUID] = frozenset(),
    ) -> int:
        matches: list[FlowTrigger] = []
        refused: list[tuple[FlowTrigger, Rejection]] = []
        # a workspace whose waiting run this event answered starts no new run with it
        answered = {r.workspace_id for r in resolved or () if r.status == WaitStatus.ANSWERED}
        for trigger in triggers:
            if trigger.workspace_id in answered:
                continue
            verdict = self.verdict(event, trigger, owners or {})
            if verdict is True and trigger.workspace_id in held:
                verdict = Rejection(
                    "human_takeover",
                    "a person took over the conversation with this contact; flows skip them "
                    "until the takeover ends or is released",
                )
            if verdict is True:
                matches.append(trigger)
            elif isinstance(verdict, Rejection):
                refused.append((trigger, verdict))
        insert = pg_insert if postgres else sqlite_insert
        for trigger in matches:
            await session.execute(
                insert(FlowExecution)
                .values(
                    id=uuid.uuid4(),
                    workspace_id=trigger.workspace_id,
                    flow_id=trigger.flow_id,
                    flow_version_id=trigger.version_id,
                    version_number=trigger.version_number,
                    flow_name=trigger.flow_name,
                    trigger_kind=trigger.trigger_kind,
                    trigger_event_id=event.id,
                    trigger_payload=event.payload,
                    conversation_key=event.conversation_key,
                    conversation_at=event.conversation_at,
                    conversation_seq=event.conversation_seq,
                    status=ExecutionStatus.QUEUED,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["trigger_event_id", "flow_version_id"])
            )
        if refused:
            await session.execute(
                insert(EventOutcome)
                .values(
                    [
                        {
                            "event_id": event.id,
                            "flow_id": trigger.flow_id,
                            "workspace_id": trigger.workspace_id,
                            "flow_name": trigger.flow_name,
                            "version_number": trigger.version_number,
                            "code": reason.code,
                            "message": reason.message[:2000],
                            "field": reason.field,
                            "created_at": utcnow(),
                        }
                        for trigger, reason in refused
                    ]
                )
                .on_conflict_do_nothing(index_elements=["event_id", "flow_id"])
            )
        event.status = EventStatus.DISPATCHED if matches or answered else EventStatus.IGNORED
        event.dispatched_at = utcnow()
        event.attempts += 1
        return len(matches) + len(answered)

    def verdict(
        self, event: WebhookEvent, trigger: FlowTrigger, owners: Owners
    ) -> bool | Rejection | None:
        """What becomes of ``event`` for the flow of ``trigger`` (see ``verdict``)."""
        return verdict(self.registry, event, trigger, owners)


async def map_page_entries(session: AsyncSession, events: list[WebhookEvent]) -> None:
    """Readdress events whose account is a Facebook Page to the Instagram account linked to it.

    Under Facebook Login a webhook's ``entry.id`` may be the Page id rather than the Instagram
    account id (SPEC U3). Only the kinds whose account is taken from ``entry.id`` (comments,
    live comments, mentions) are readdressed: a message names the Instagram account as its
    recipient already, and a message whose recipient is the Page is a Messenger message to
    the Facebook Page, no Instagram event. The event then names the linked account
    (``entry_id`` keeps the Page id as sent), so triggers, templates and actions see one
    account whichever id Meta used; a comment the account made itself becomes ``is_self``.
    """
    ids = {
        e.account_id
        for e in events
        if e.source == "instagram" and e.kind in _ENTRY_ADDRESSED and e.account_id
    }
    if not ids:
        return
    rows = await session.execute(
        select(InstagramAccount.page_id, InstagramAccount.ig_user_id)
        .where(InstagramAccount.page_id.in_(ids))
        .distinct()
    )
    linked = {page_id: ig_user_id for page_id, ig_user_id in rows.tuples() if page_id}
    for event in events:
        if event.source != "instagram" or event.kind not in _ENTRY_ADDRESSED:
            continue
        ig_user_id = linked.get(event.account_id or "")
        if ig_user_id is None:
            continue
        payload = {**event.payload, "account_id": ig_user_id}
        if event.kind != "instagram.mention" and payload.get("from_id") == ig_user_id:
            payload["is_self"] = True
        event.account_id = ig_user_id
        event.payload = payload


async def instagram_owners(session: AsyncSession, events: list[WebhookEvent]) -> Owners:
    """Workspaces that connected each Instagram account the events are addressed to."""
    accounts = {e.account_id for e in events if e.source == "instagram" and e.account_id}
    if not accounts:
        return {}
    rows = await session.execute(
        select(
            InstagramAccount.ig_user_id,
            InstagramAccount.workspace_id,
            InstagramAccount.username,
            InstagramAccount.login_kind,
        ).where(InstagramAccount.ig_user_id.in_(accounts))
    )
    owners: Owners = {}
    for ig_user_id, workspace_id, username, login_kind in rows.tuples():
        # under Facebook Login mentions have their own field; a comment is only a comment
        handle = username if login_kind == LoginKind.INSTAGRAM else None
        owners.setdefault(ig_user_id, {})[workspace_id] = handle or None
    return owners


async def explain(
    session: AsyncSession, registry: NodeRegistry, event: WebhookEvent, trigger: FlowTrigger
) -> bool | Rejection | None:
    """``verdict`` for one event and a trigger that need not be stored (a draft's), with the
    event's account owners read here: what dispatching would decide."""
    return verdict(registry, event, trigger, await instagram_owners(session, [event]))


def verdict(
    registry: NodeRegistry, event: WebhookEvent, trigger: FlowTrigger, owners: Owners
) -> bool | Rejection | None:
    """What becomes of ``event`` for the flow of ``trigger``.

    Returns:
        ``True``: the flow runs. A ``Rejection``: the flow could have taken the event and
        did not, for that reason (recorded). ``None``: the event is none of the flow's
        business (another flow's webhook, another workspace, a kind its trigger never
        takes), which is not recorded.
    """
    if event.flow_id is not None and event.flow_id != trigger.flow_id:
        return None
    if event.workspace_id is not None and event.workspace_id != trigger.workspace_id:
        return None
    # tenant isolation: only workspaces that connected the account see its events
    if event.source == "instagram" and trigger.workspace_id not in owners.get(
        event.account_id or "", {}
    ):
        return None
    try:
        node = registry.get(trigger.trigger_kind)
    except Exception:
        return None
    if event.kind not in node.event_kinds:
        return None
    if not trigger.active:
        return Rejection("flow_paused", "the flow is paused")
    if event.source == "instagram":
        # the account's own messages and comments (echoes) and dashboard tests never start
        # a flow, whatever the trigger kind: a reply to them would answer itself forever
        own = own_event_rejection(event.payload)
        if own is not None:
            return own
    config = node.Config.model_validate(trigger.trigger_config)
    payload = event.payload
    if event.source == "instagram" and event.kind in _MENTION_CARRIERS:
        handle = owners.get(event.account_id or "", {}).get(trigger.workspace_id)
        if mentions_username(payload.get("text"), handle):
            payload = {**payload, "mentions_account": True}
    rejection = node.rejection(config, payload)
    if rejection is not None:
        return rejection
    # a kind written against the older contract decides in ``accepts`` alone
    if getattr(node.accepts, "__func__", None) is not _BASE_ACCEPTS and not node.accepts(
        config, payload
    ):
        return Rejection("filter_not_matched", f"the {node.title} trigger did not take it")
    return True
