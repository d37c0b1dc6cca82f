"""Broadcasts end to end below the API: the preview counts per reason in SQL, the sender
sends exactly the eligible contacts through the ledger (the emulator receives nothing else),
checks the window again at send time, stays under the account's pace, resumes after a crash
without sending twice, and runs as a Prefect flow run a worker takes."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import delete, select, update

from socialflow.broadcasts import (
    Broadcast,
    BroadcastContext,
    BroadcastFields,
    BroadcastRecipient,
    BroadcastStatus,
    Segment,
    Sender,
    broadcasts,
)
from socialflow.contacts import Contact, ContactTag, ContactTagLink, contact_id
from socialflow.core.db import utcnow
from socialflow.instagram import OutboxMessage
from socialflow.orchestration import EngineRuntime, Worker
from socialflow.publishing import set_publishing_pool
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import connect_account, use_emulator

HOUR = 3600.0


class Scene:
    """An emulator, an account of this test's own, and contacts made at will."""

    def __init__(self, runtime: EngineRuntime, emulator: GraphEmulator, account: Any) -> None:
        self.runtime, self.emulator, self.account = runtime, emulator, account
        self.ig = account.ig_user_id
        self.workspace_id = account.workspace_id
        self.tags: dict[str, uuid.UUID] = {}

    async def contact(
        self,
        *,
        age_hours: float | None,
        tags: tuple[str, ...] = (),
        opted_out: bool = False,
        source: str = "dm",
    ) -> str:
        """A contact whose last message is ``age_hours`` old (None: never), known to the
        emulator's windows as Meta would know it; its IGSID."""
        igsid = f"77{secrets.randbelow(10**14):014d}"
        now = utcnow()
        last = None if age_hours is None else now - timedelta(hours=age_hours)
        cid = contact_id(self.workspace_id, self.ig, igsid)
        async with self.runtime.db.sessionmaker() as session:
            session.add(
                Contact(
                    id=cid,
                    workspace_id=self.workspace_id,
                    account_id=self.ig,
                    igsid=igsid,
                    username=f"user{igsid[-5:]}",
                    source=source,
                    last_seen_at=last or now,
                    last_inbound_at=last,
                    opted_out=opted_out,
                )
            )
            for name in tags:
                if name not in self.tags:
                    tag = ContactTag(workspace_id=self.workspace_id, name=name)
                    session.add(tag)
                    await session.flush()
                    self.tags[name] = tag.id
                session.add(ContactTagLink(contact_id=cid, tag_id=self.tags[name]))
            await session.commit()
        if age_hours is not None:
            self.emulator.state.add_message(self.ig, igsid, age_seconds=age_hours * HOUR)
        return igsid

    async def broadcast(self, segment: Segment, text: str = "Sale starts now!") -> Broadcast:
        fields = BroadcastFields(
            account_id=self.account.id, name="Sale", text=text, segment=segment
        )
        async with self.runtime.db.sessionmaker() as session:
            return await broadcasts.create(session, self.workspace_id, fields, user_id=None)

    def sender(self, page_size: int = 2) -> Sender:
        context = BroadcastContext(
            settings=self.runtime.settings,
            db=self.runtime.db,
            keys=self.runtime.key_wrapper(),
            page_size=page_size,
        )
        return Sender(context)

    def sent_to(self) -> list[str]:
        """Recipients of the DMs the emulator received for this account, in order."""
        return [
            str(c["body"]["recipient"]["id"])
            for c in self.emulator.state.calls
            if c["method"] == "POST"
            and c["path"].endswith("/messages")
            and isinstance(c["body"], dict)
            and "recipient" in c["body"]
        ]

    async def recipients(self, broadcast_id: uuid.UUID) -> dict[str, tuple[str, str | None]]:
        async with self.runtime.db.sessionmaker() as session:
            rows = await session.execute(
                select(Contact.igsid, BroadcastRecipient.status, BroadcastRecipient.reason)
                .join(Contact, Contact.id == BroadcastRecipient.contact_id)
                .where(BroadcastRecipient.broadcast_id == broadcast_id)
            )
            return {igsid: (status, reason) for igsid, status, reason in rows.tuples()}

    async def row(self, broadcast_id: uuid.UUID) -> Broadcast:
        async with self.runtime.db.sessionmaker() as session:
            found = await session.get(Broadcast, broadcast_id)
            assert found is not None
            return found


@pytest.fixture
async def scene(runtime: EngineRuntime) -> AsyncIterator[Scene]:
    emulator = GraphEmulator().start()
    ig = str(17_841_490_000_000_000 + secrets.randbelow(10**9))
    token = "IGQ-broadcast-" + secrets.token_urlsafe(8)
    emulator.state.add_account(ig, "shop", token)
    use_emulator(runtime, emulator)
    account = await connect_account(runtime, ig_user_id=ig, token=token)
    try:
        yield Scene(runtime, emulator, account)
    finally:
        emulator.stop()


async def test_a_tag_broadcast_skips_who_is_outside_the_window_and_says_why(
    scene: Scene,
) -> None:
    inside = [await scene.contact(age_hours=h, tags=("vip",)) for h in (1, 5, 23)]
    human_agent = await scene.contact(age_hours=30, tags=("vip",))
    outside = await scene.contact(age_hours=24 * 10, tags=("vip", "old"))
    opted = await scene.contact(age_hours=2, tags=("vip",), opted_out=True)
    never = await scene.contact(age_hours=None, tags=("vip",), source="comment")
    closing = await scene.contact(age_hours=3, tags=("vip",))
    untagged = await scene.contact(age_hours=1)

    segment = Segment(tags_any=["vip"])
    async with scene.runtime.db.sessionmaker() as session:
        before = await broadcasts.preview(session, scene.workspace_id, scene.account.id, segment)
    assert before.total == 8 and before.eligible == 4
    assert before.skipped == {
        "opted_out": 1,
        "never_messaged": 1,
        "human_agent_only": 1,
        "outside_window": 1,
    }

    # between the preview and the send, one window closes: the send checks again
    async with scene.runtime.db.sessionmaker() as session:
        await session.execute(
            update(Contact)
            .where(Contact.igsid == closing)
            .values(last_inbound_at=utcnow() - timedelta(hours=25))
        )
        await session.commit()

    row = await scene.broadcast(segment)
    assert await scene.sender().send(row.id) == BroadcastStatus.DONE

    assert sorted(scene.sent_to()) == sorted(inside)
    assert untagged not in scene.sent_to()
    found = await scene.recipients(row.id)
    assert {i: found[i] for i in inside} == dict.fromkeys(inside, ("sent", None))
    assert found[human_agent] == ("skipped", "human_agent_only")
    assert found[closing] == ("skipped", "human_agent_only")
    assert found[outside] == ("skipped", "outside_window")
    assert found[opted] == ("skipped", "opted_out")
    assert found[never] == ("skipped", "never_messaged")
    assert untagged not in found
    async with scene.runtime.db.sessionmaker() as session:
        done = await broadcasts.get(session, scene.workspace_id, row.id)
        progress = await broadcasts.progress(session, done)
        ledger = (
            await session.scalars(select(OutboxMessage).where(OutboxMessage.execution_id == row.id))
        ).all()
    assert (progress.total, progress.handled, progress.sent, progress.failed) == (8, 8, 3, 0)
    assert progress.skipped == {
        "human_agent_only": 2,
        "outside_window": 1,
        "opted_out": 1,
        "never_messaged": 1,
    }
    assert sorted(r.target for r in ledger) == sorted(inside)
    assert {r.status for r in ledger} == {"sent"}


async def test_segments_combine_tags_fields_seen_and_source(scene: Scene) -> None:
    a = await scene.contact(age_hours=1, tags=("x", "y"), source="comment")
    await scene.contact(age_hours=1, tags=("x",), source="comment")
    await scene.contact(age_hours=1, tags=("x", "y"), source="dm")
    account = scene.account.id

    async def count(**segment: Any) -> int:
        async with scene.runtime.db.sessionmaker() as session:
            found = await broadcasts.preview(
                session, scene.workspace_id, account, Segment.model_validate(segment)
            )
        return found.total

    assert await count(tags_any=["x"]) == 3
    assert await count(tags_all=["x", "y"]) == 2
    assert await count(tags_all=["x", "y"], sources=["comment"]) == 1
    assert await count(seen_after=(utcnow() - timedelta(minutes=30)).isoformat()) == 0
    assert await count(seen_before=utcnow().isoformat()) == 3
    # injection attempts are values compared as text, never SQL
    assert await count(tags_any=["x' OR '1'='1"]) == 0
    assert await count(tags_any=['x"); DROP TABLE contact; --']) == 0
    assert await count(fields=[{"key": "plan", "op": "unset"}]) == 3
    assert await count(fields=[{"key": "plan", "op": "eq", "value": "' OR 1=1 --"}]) == 0
    assert await count() == 3  # the table is still there
    assert a


async def test_a_restart_mid_broadcast_sends_nobody_twice(scene: Scene) -> None:
    eligible = [await scene.contact(age_hours=1, tags=("all",)) for _ in range(6)]
    # one send per 0.4 s: the crash lands while the sender waits for a slot
    scene.runtime.settings = scene.runtime.settings.model_copy(
        update={
            "instagram": scene.runtime.settings.instagram.model_copy(
                update={"send_limit": 1, "send_window_seconds": 0.4}
            )
        }
    )
    row = await scene.broadcast(Segment(tags_any=["all"]))
    task = asyncio.create_task(scene.sender(page_size=4).send(row.id))
    for _ in range(200):
        if len(scene.sent_to()) >= 2:
            break
        await asyncio.sleep(0.05)
    task.cancel()  # the process dies
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.5)  # a send already taken finishes recording (it is shielded)
    first = list(scene.sent_to())
    assert 2 <= len(first) < 6
    assert (await scene.row(row.id)).status == BroadcastStatus.SENDING

    # and a crash between a send and its recipient row: the ledger knows it was sent
    async with scene.runtime.db.sessionmaker() as session:
        await session.execute(
            delete(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == row.id)
        )
        await session.execute(update(Broadcast).where(Broadcast.id == row.id).values(cursor=None))
        await session.commit()

    assert await scene.sender(page_size=4).send(row.id) == BroadcastStatus.DONE
    sent = scene.sent_to()
    assert sorted(sent) == sorted(eligible), "each eligible contact exactly once"
    assert len(set(sent)) == len(sent)
    found = await scene.recipients(row.id)
    assert {found[i] for i in eligible} == {("sent", None)}
    # a third run of a finished broadcast does nothing
    assert await scene.sender().send(row.id) == BroadcastStatus.DONE
    assert len(scene.sent_to()) == 6


async def test_sends_stay_under_the_accounts_pace(scene: Scene) -> None:
    for _ in range(9):
        await scene.contact(age_hours=1, tags=("paced",))
    scene.runtime.settings = scene.runtime.settings.model_copy(
        update={
            "instagram": scene.runtime.settings.instagram.model_copy(
                update={"send_limit": 3, "send_window_seconds": 0.5}
            )
        }
    )
    row = await scene.broadcast(Segment(tags_any=["paced"]))
    assert await scene.sender(page_size=4).send(row.id) == BroadcastStatus.DONE
    async with scene.runtime.db.sessionmaker() as session:
        slots = sorted(
            (
                await session.scalars(
                    select(OutboxMessage.scheduled_for).where(OutboxMessage.execution_id == row.id)
                )
            ).all()
        )
    assert len(slots) == 9
    # any 4 consecutive sends span at least one window: never 4 within 0.5 s
    for i in range(len(slots) - 3):
        assert (slots[i + 3] - slots[i]).total_seconds() >= 0.5 - 1e-3


async def test_a_cancelled_broadcast_stops_before_its_next_page(scene: Scene) -> None:
    for _ in range(5):
        await scene.contact(age_hours=1, tags=("c",))
    row = await scene.broadcast(Segment(tags_any=["c"]))
    async with scene.runtime.db.sessionmaker() as session:
        await session.execute(
            update(Broadcast).where(Broadcast.id == row.id).values(status="cancelled")
        )
        await session.commit()
    assert await scene.sender().send(row.id) == BroadcastStatus.CANCELLED
    assert scene.sent_to() == []


@pytest.fixture
def pool() -> Iterator[str]:
    """A publishing pool of this test's own: other tests' workers never take its runs."""
    name = f"socialflow-publishing-{uuid.uuid4().hex[:8]}"
    set_publishing_pool(name)
    try:
        yield name
    finally:
        set_publishing_pool(None)


async def test_a_broadcast_is_a_prefect_run_a_worker_takes(scene: Scene, pool: str) -> None:
    eligible = [await scene.contact(age_hours=2, tags=("run",)) for _ in range(3)]
    await scene.contact(age_hours=40, tags=("run",))
    row = await scene.broadcast(Segment(tags_any=["run"]))
    at = utcnow() + timedelta(seconds=1)
    async with scene.runtime.db.sessionmaker() as session:
        fresh = await broadcasts.get(session, scene.workspace_id, row.id)
        fresh = await broadcasts.send(session, fresh, at)
    assert fresh.status == BroadcastStatus.SCHEDULED and fresh.prefect_flow_run_id is not None
    async with get_client() as client:
        run = await client.read_flow_run(fresh.prefect_flow_run_id)
    assert run.state is not None and run.state.is_scheduled()
    assert run.parameters == {"broadcast_id": str(row.id)}
    assert f"workspace:{scene.workspace_id}" in run.tags

    worker = Worker(scene.runtime, concurrency=2, poll_interval=0.05, schedule_poll=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        for _ in range(600):
            if (await scene.row(row.id)).status == BroadcastStatus.DONE:
                break
            assert not task.done(), task.exception()
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert (await scene.row(row.id)).status == BroadcastStatus.DONE
    assert sorted(scene.sent_to()) == sorted(eligible)
