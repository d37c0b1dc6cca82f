"""The gallery's comment → DM growth template, run as the gallery offers it (only the keyword's
account and the notify URL differ), through real workers, Prefect and the Graph API emulator:
keyword comment → a rotating public reply and a private reply with a button → tap → asked for
the email → "nope" → re-asked → the valid email saved to the contact, tagged, notified."""

from __future__ import annotations

import json
import uuid
from typing import Any

from socialflow.contacts import (
    Contact,
    ContactFieldValue,
    ContactTag,
    ContactTagLink,
    release,
    take_over,
)
from socialflow.instagram import build_comment, build_postback
from socialflow.nodes.builtins.rotate import pick
from socialflow.orchestration import EngineRuntime, EventOutcome, WebhookEvent
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.api.test_ask_field_checks import growth_graph
from tests.fixtures.contacts import rows
from tests.fixtures.graph_emulator import graph_emulator, ledger, use_emulator  # noqa: F401
from tests.fixtures.http_server import serve
from tests.fixtures.llm_server import LOOPBACK_ALLOWED
from tests.nodes.test_contact_nodes import define_field
from tests.orchestration.test_waits import (  # noqa: F401 - fixture
    Shop,
    Workers,
    _waits_in,
    node_runs,
    until,
    workers,
)


def configured(notify_url: str) -> dict[str, Any]:
    graph = growth_graph()
    [notify] = [n for n in graph["nodes"] if n["id"] == "notify"]
    notify["config"]["url"] = notify_url
    return graph


async def test_the_growth_template_captures_an_email_from_a_keyword_comment(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    workers: Workers,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    runtime.settings = runtime.settings.model_copy(
        update={"http": runtime.settings.http.model_copy(update=LOOPBACK_ALLOWED)}
    )
    shop = Shop(runtime, graph_emulator)
    await define_field(runtime.db, shop.workspace_id, "email", "email")
    person = f"55{uuid.uuid4().int % 10**10:010d}"
    with serve() as hook:
        await shop.open(configured(f"{hook.url}/leads"))
        workers.start()
        comment = graph_emulator.state.add_comment(
            {"account": shop.account, "from_id": person, "from_username": "ann", "text": "hi"}
        )
        cid = comment["id"]
        await shop.deliver(
            build_comment(
                "Guide please!",
                account_id=shop.account,
                from_id=person,
                from_username="ann",
                comment_id=cid,
            )
        )
        await until(lambda: shop.status("waiting"))
        # one of the rotating public replies, the one this comment's id picks
        [public] = [c for c in graph_emulator.calls("/replies") if c["method"] == "POST"]
        texts = next(n for n in growth_graph()["nodes"] if n["id"] == "pick")["config"]["texts"]
        expected = texts[pick(cid, len(texts))].replace("{{ trigger.from_username }}", "ann")
        assert public["body"]["message"] == expected
        # the private reply carries the button
        [private] = [
            c["body"]["message"]
            for c in graph_emulator.calls("/messages")
            if c["method"] == "POST" and c["body"]["recipient"] == {"comment_id": cid}
        ]
        template = private["attachment"]["payload"]
        assert template["text"].startswith("Hi @ann! Want the free guide?")
        assert [b["payload"] for b in template["buttons"]] == ["SEND_GUIDE"]

        await shop.deliver(
            build_postback(
                "SEND_GUIDE",
                title="Send me the guide",
                account_id=shop.account,
                sender_id=person,
            )
        )
        await until(lambda: _waits_in(shop, 2))
        await until(lambda: shop.status("waiting"))
        assert shop.texts(person) == ["Great! What is your email? The guide goes there."]
        await shop.say("nope", person)
        await until(lambda: _waits_in(shop, 3))
        await until(lambda: shop.status("waiting"))
        assert shop.texts(person)[-1] == "Hmm, that is not an email address. What is your email?"
        await shop.say("Ann@Example.com", person)
        await until(lambda: shop.status("completed"))
        assert "/leads" in hook.hits

    assert shop.texts(person) == [
        "Great! What is your email? The guide goes there.",
        "Hmm, that is not an email address. What is your email?",
        "Thanks! The guide is on its way to Ann@example.com.",
    ]
    # one run for the whole conversation
    [run] = await shop.runs()
    nodes = await node_runs(runtime, run.id)
    assert {n: r.status for n, r in nodes.items()} == dict.fromkeys(nodes, "completed")
    assert nodes["email"].output["answer"]["saved"] == {"email": "Ann@example.com"}
    # the notify URL got the lead as JSON (the echo server answers with what it received)
    echoed = json.dumps(nodes["notify"].output)
    assert "Ann@example.com" in echoed and "Guide please!" in echoed
    # the contact: email saved, tagged lead
    [contact] = await rows(runtime.db, Contact, Contact.workspace_id == shop.workspace_id)
    assert contact.igsid == person
    [value] = await rows(runtime.db, ContactFieldValue, ContactFieldValue.contact_id == contact.id)
    assert value.value == "Ann@example.com"
    [link] = await rows(runtime.db, ContactTagLink, ContactTagLink.contact_id == contact.id)
    [tag] = await rows(runtime.db, ContactTag, ContactTag.id == link.tag_id)
    assert tag.name == "lead"
    # every send once in the ledger
    sends = await ledger(runtime, workspace_id=shop.workspace_id)
    assert sorted(r.action for r in sends) == sorted(
        ["reply_comment", "private_reply", "send_dm", "send_dm", "send_dm"]
    )
    assert {r.status for r in sends} == {"sent"}
    assert len({r.idempotency_key for r in sends}) == 5


async def test_a_taken_over_contact_s_reply_leaves_their_waiting_run_waiting(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    workers: Workers,  # noqa: F811
) -> None:
    use_emulator(runtime, graph_emulator)
    shop = await Shop(runtime, graph_emulator).open()
    person = f"56{uuid.uuid4().int % 10**10:010d}"
    workers.start()
    await shop.say("hi", person)
    await until(lambda: shop.status("waiting"))
    [contact] = await rows(runtime.db, Contact, Contact.workspace_id == shop.workspace_id)
    async with runtime.db.sessionmaker() as session:
        row = await session.get(Contact, contact.id)
        assert row is not None
        take_over(row, None)
        await session.commit()
    # words a trigger takes too: neither the waiting run nor the DM flow gets them
    answer = await shop.say("hi, me@example.com", person)
    await until(lambda: _dispatched(runtime, answer))
    [wait] = await shop.waits()
    assert wait.status == "waiting"  # the person answering it is a human now
    [outcome] = await rows(runtime.db, EventOutcome, EventOutcome.event_id == answer)
    assert outcome.code == "human_takeover"
    assert shop.texts(person) == ["What is your email?"]

    async with runtime.db.sessionmaker() as session:
        row = await session.get(Contact, contact.id)
        assert row is not None
        release(row)
        await session.commit()
    await shop.say("me@example.com", person)
    await until(lambda: shop.status("completed"))
    assert shop.texts(person)[-1] == "Thanks, me@example.com"


async def _dispatched(runtime: EngineRuntime, event_id: uuid.UUID) -> bool:
    [event] = await rows(runtime.db, WebhookEvent, WebhookEvent.id == event_id)
    return bool(event.status != "pending")
