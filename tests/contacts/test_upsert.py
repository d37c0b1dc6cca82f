"""Contacts are created and updated by the dispatcher from every event that names a person:
once per (workspace, account, person), whatever the order, however many at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialflow.contacts import Contact, ContactEvent, ProfileReader, contact_id
from socialflow.core.db import Database
from socialflow.instagram import build_comment, build_dm
from socialflow.orchestration import EngineRuntime, EventStatus, WebhookEvent
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.contacts import connect, drain, new_account_id, new_igsid, rows, store
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    connect_account,
    emulator_settings,
    graph_emulator,
)


def dm_at(account: str, sender: str, text: str, at: datetime) -> dict[str, Any]:
    body = build_dm(text, account_id=account, sender_id=sender)
    body["entry"][0]["messaging"][0]["timestamp"] = int(at.timestamp() * 1000)
    return body


async def test_a_comment_then_a_dm_make_one_contact_with_its_window(runtime: EngineRuntime) -> None:
    db, workspace, account, person = runtime.db, uuid.uuid4(), new_account_id(), new_igsid()
    await connect(db, workspace, account)
    await store(
        db, build_comment("price?", account_id=account, from_id=person, from_username="ann")
    )
    await drain(db, runtime.registry)
    [contact] = await rows(db, Contact, Contact.account_id == account)
    assert (contact.igsid, contact.username, contact.source) == (person, "ann", "comment")
    assert contact.workspace_id == workspace and contact.last_inbound_at is None
    assert contact.id == contact_id(workspace, account, person)

    # a comment's time is in whole seconds and a DM's 300 ms before its envelope: a DM built
    # within the same second could read as earlier than the comment, so it is dated after it
    later = datetime.now(UTC) + timedelta(seconds=2)
    await store(db, dm_at(account, person, "hi, I want it", later))
    await drain(db, runtime.registry)
    [contact] = await rows(db, Contact, Contact.account_id == account)
    assert contact.source == "comment", "the source is how the person first came"
    assert contact.username == "ann", "a DM carries no username: the comment's is kept"
    assert contact.last_inbound_at is not None
    assert contact.last_seen_at >= contact.first_seen_at
    links = await rows(db, ContactEvent, ContactEvent.contact_id == contact.id)
    assert len(links) == 2


async def test_out_of_order_events_keep_the_earliest_source_and_latest_times(
    runtime: EngineRuntime,
) -> None:
    db, workspace, account, person = runtime.db, uuid.uuid4(), new_account_id(), new_igsid()
    await connect(db, workspace, account)
    now = datetime.now(UTC).replace(microsecond=0)
    await store(db, dm_at(account, person, "newer", now - timedelta(minutes=1)))
    await drain(db, runtime.registry)
    older = build_comment("older", account_id=account, from_id=person, from_username="bo")
    older["entry"][0]["time"] = int((now - timedelta(hours=30)).timestamp())
    await store(db, older)
    await drain(db, runtime.registry)
    [contact] = await rows(db, Contact, Contact.account_id == account)
    assert contact.source == "comment", "the earliest event says how the person first came"
    assert contact.first_seen_at == now - timedelta(hours=30)
    assert contact.last_seen_at == now - timedelta(minutes=1)
    assert contact.last_inbound_at == now - timedelta(minutes=1)
    assert contact.username == "bo", "a username is filled in from whichever event has one"


async def test_each_workspace_that_connected_the_account_has_its_own_contact(
    runtime: EngineRuntime,
) -> None:
    db, account, person = runtime.db, new_account_id(), new_igsid()
    first, second = uuid.uuid4(), uuid.uuid4()
    await connect(db, first, account)
    await connect(db, second, account)
    await store(db, build_dm("hello", account_id=account, sender_id=person))
    await drain(db, runtime.registry)
    found = await rows(db, Contact, Contact.account_id == account)
    assert sorted(c.workspace_id for c in found) == sorted([first, second])


async def test_nobody_is_made_a_contact_from_echoes_tests_or_unconnected_accounts(
    runtime: EngineRuntime,
) -> None:
    db, workspace, account = runtime.db, uuid.uuid4(), new_account_id()
    await connect(db, workspace, account)
    echo = build_dm("our own reply", account_id=account, sender_id=account)
    echo["entry"][0]["messaging"][0]["message"]["is_echo"] = True
    stranger = new_account_id()
    ids = await store(
        db,
        echo,
        build_dm("to an account nobody connected", account_id=stranger, sender_id=new_igsid()),
    )
    await drain(db, runtime.registry)
    assert await rows(db, Contact, Contact.account_id.in_([account, stranger])) == []
    events = await rows(db, WebhookEvent, WebhookEvent.id.in_(ids))
    assert {e.status for e in events} == {EventStatus.IGNORED}


async def test_many_events_of_one_person_at_once_make_one_contact(
    runtime: EngineRuntime,
) -> None:
    db, workspace, account, person = runtime.db, uuid.uuid4(), new_account_id(), new_igsid()
    await connect(db, workspace, account)
    n = 60
    await store(
        db, *(build_dm(f"message {i}", account_id=account, sender_id=person) for i in range(n))
    )
    # four dispatchers with their own connection pools, as four processes would have, each
    # taking small batches: their upserts of the same contact race
    engines = [Database(db.url) for _ in range(4)]
    try:
        await asyncio.gather(*(drain(e, runtime.registry, batch=5) for e in engines))
    finally:
        for engine in engines:
            await engine.dispose()
    found = await rows(db, Contact, Contact.account_id == account)
    assert len(found) == 1
    links = await rows(db, ContactEvent, ContactEvent.contact_id == found[0].id)
    assert len(links) == n


@pytest.mark.postgres
async def test_concurrent_upserts_of_one_contact_on_postgres_never_conflict(
    pg_runtime: EngineRuntime,
) -> None:
    """Without the dispatcher's claim lock in between: sessions writing the same contact
    from different events at the same moment."""
    from socialflow.contacts import EventRef, record_sightings

    db, workspace, account, person = pg_runtime.db, uuid.uuid4(), new_account_id(), new_igsid()
    now = datetime.now(UTC)

    async def write(i: int) -> None:
        payload = {
            "kind": "dm",
            "account_id": account,
            "sender_id": person,
            "occurred_at": (now - timedelta(seconds=i)).isoformat(),
        }
        async with db.sessionmaker() as session:
            await record_sightings(
                session, [EventRef(uuid.uuid4(), account, payload)], {account: [workspace]}
            )
            await session.commit()

    await asyncio.gather(*(write(i) for i in range(40)))
    [contact] = await rows(db, Contact, Contact.account_id == account)
    assert contact.last_seen_at == now and contact.last_inbound_at == now
    assert contact.first_seen_at == now - timedelta(seconds=39)


async def test_profiles_are_read_only_for_people_who_messaged(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    account = new_account_id()
    graph_emulator.state.add_account(account, "shop", "IGQ-contacts")
    connected = await connect_account(runtime, ig_user_id=account, token="IGQ-contacts")
    writer, commenter = new_igsid(), new_igsid()
    graph_emulator.state.add_message(account, writer)
    graph_emulator.state.users[writer] = {"name": "Wren Writer", "username": "wren"}
    await store(
        runtime.db,
        build_dm("hello", account_id=account, sender_id=writer),
        build_comment("nice", account_id=account, from_id=commenter, from_username="cam"),
    )
    reader = ProfileReader(
        runtime.db, runtime.key_wrapper(), emulator_settings(graph_emulator), runtime.http_client()
    )
    asked: list[list[uuid.UUID]] = []

    async def refresh(ids: list[uuid.UUID]) -> int:
        asked.append(ids)
        return await reader.refresh(ids)

    await drain(runtime.db, runtime.registry, profiles=refresh)
    for _ in range(100):
        found = {c.igsid: c for c in await rows(runtime.db, Contact, Contact.account_id == account)}
        if found.get(writer) and found[writer].profile_fetched_at:
            break
        await asyncio.sleep(0.05)
    assert found[writer].name == "Wren Writer" and found[writer].username == "wren"
    assert found[writer].profile_pic and found[writer].profile_error is None
    # the commenter gave no consent: never asked for
    assert found[commenter].profile_fetched_at is None and found[commenter].name is None
    flat = [i for ids in asked for i in ids]
    writer_id = contact_id(connected.workspace_id, account, writer)
    assert writer_id in flat
    assert contact_id(connected.workspace_id, account, commenter) not in flat
    profile_calls = [c for c in graph_emulator.calls() if writer in str(c)]
    assert len(profile_calls) == 1
    assert not [c for c in graph_emulator.calls() if commenter in str(c)]
    # read again soon after: nothing is asked of Meta
    assert await reader.refresh([writer_id]) == 0
    assert len([c for c in graph_emulator.calls() if writer in str(c)]) == 1


async def test_a_refused_profile_read_is_recorded_and_never_fails(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    account = new_account_id()
    graph_emulator.state.add_account(account, "shop", "IGQ-refused")
    await connect_account(runtime, ig_user_id=account, token="IGQ-refused")
    person = new_igsid()  # no conversation in the emulator: Meta refuses the profile
    ids = await store(runtime.db, build_dm("hello", account_id=account, sender_id=person))
    await drain(runtime.db, runtime.registry)
    reader = ProfileReader(
        runtime.db, runtime.key_wrapper(), emulator_settings(graph_emulator), runtime.http_client()
    )
    [contact] = await rows(runtime.db, Contact, Contact.account_id == account)
    assert await reader.refresh([contact.id]) == 0
    [contact] = await rows(runtime.db, Contact, Contact.account_id == account)
    assert contact.profile_error and "consent" in contact.profile_error
    [event] = await rows(runtime.db, WebhookEvent, WebhookEvent.id.in_(ids))
    assert event.status == EventStatus.IGNORED and event.last_error is None
