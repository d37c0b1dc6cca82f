"""Live chat basics: an editor takes a contact's conversation over (for a time or until
released); meanwhile the dispatcher starts no flow for them and answers none of their waiting
runs, and the event log says human_takeover; released, they run flows again. A person replies
from the app through the send ledger, inside Meta's window."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from socialflow.contacts import Contact
from socialflow.core.db import utcnow
from socialflow.core.settings import Settings
from socialflow.instagram import AccountMode, OutboxMessage, build_dm
from socialflow.orchestration import EventOutcome, FlowExecution
from tests.api.conftest import Team, make_team
from tests.fixtures.contacts import connect, drain, new_account_id, new_igsid, rows, store
from tests.fixtures.flows import publish

ON_DM = {
    "nodes": [
        {"id": "dm", "kind": "instagram.dm", "config": {}},
        {"id": "tag", "kind": "contact.add_tag", "config": {"tags": ["lead"]}},
    ],
    "edges": [{"source": "dm", "source_port": "event", "target": "tag"}],
}


class Chat:
    def __init__(self, app: Any, registry: Any, team: Team, account: str, person: str) -> None:
        self.db = app.state.db
        self.registry = registry
        self.team = team
        self.account = account
        self.person = person
        self.contact_id = ""
        self.flow_id = uuid.uuid4()

    def url(self, contact_id: str | None = None) -> str:
        return (
            f"/api/workspaces/{self.team.workspace_id}/contacts/"
            f"{contact_id or self.contact_id}/takeover"
        )

    async def say(self, text: str) -> uuid.UUID:
        [event] = await store(
            self.db, build_dm(text, account_id=self.account, sender_id=self.person)
        )
        await drain(self.db, self.registry)
        return event

    async def runs(self) -> int:
        return len(await rows(self.db, FlowExecution, FlowExecution.flow_id == self.flow_id))


@pytest.fixture
async def chat(app: Any, client: httpx.AsyncClient, test_registry: Any) -> Chat:
    team = await make_team(client)
    made = Chat(app, test_registry, team, new_account_id(), new_igsid())
    workspace = uuid.UUID(team.workspace_id)
    await connect(made.db, workspace, made.account, mode=AccountMode.SANDBOX)
    made.flow_id, _ = await publish(
        made.db, test_registry, Settings(), ON_DM, name="on dm", workspace_id=workspace
    )
    await made.say("hello")
    [contact] = await rows(made.db, Contact, Contact.account_id == made.account)
    made.contact_id = str(contact.id)
    assert await made.runs() == 1
    return made


async def test_a_taken_over_contact_runs_no_flow_and_the_log_says_why(
    client: httpx.AsyncClient, chat: Chat
) -> None:
    editor = chat.team.editor.headers
    taken = await client.post(chat.url(), json={"minutes": None}, headers=editor)
    assert taken.status_code == 200, taken.text
    assert taken.json()["taken_over"] is True and taken.json()["takeover_until"] is None
    event = await chat.say("a question for a human")
    assert await chat.runs() == 1  # no new run
    [outcome] = await rows(chat.db, EventOutcome, EventOutcome.event_id == event)
    assert outcome.code == "human_takeover" and outcome.flow_id == chat.flow_id
    assert "took over" in outcome.message
    # the contact's page says so to viewers too
    read = await client.get(
        f"/api/workspaces/{chat.team.workspace_id}/contacts/{chat.contact_id}",
        headers=chat.team.viewer.headers,
    )
    assert read.json()["taken_over"] is True

    released = await client.delete(chat.url(), headers=editor)
    assert released.status_code == 200, released.text
    assert released.json()["taken_over"] is False
    await chat.say("thanks, bye")
    assert await chat.runs() == 2


async def test_a_takeover_for_a_time_ends_by_itself(client: httpx.AsyncClient, chat: Chat) -> None:
    taken = await client.post(chat.url(), json={"minutes": 30}, headers=chat.team.editor.headers)
    assert taken.status_code == 200, taken.text
    until = taken.json()["takeover_until"]
    assert until is not None
    await chat.say("still there?")
    assert await chat.runs() == 1
    # the half hour is over
    async with chat.db.sessionmaker() as session:
        row = await session.get(Contact, uuid.UUID(chat.contact_id))
        assert row is not None
        row.takeover_until = utcnow() - timedelta(seconds=1)
        await session.commit()
    await chat.say("hello again")
    assert await chat.runs() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minutes": 0}, "minutes"),
        ({"minutes": 30 * 24 * 60 + 1}, "minutes"),
        ({"minutes": "soon"}, "minutes"),
        ({"minutes": 10**30}, "minutes"),
        ({"minutes": 5, "by": "someone"}, "by"),
    ],
)
async def test_bad_durations_are_refused_naming_the_field(
    client: httpx.AsyncClient, chat: Chat, body: dict[str, Any], field: str
) -> None:
    refused = await client.post(chat.url(), json=body, headers=chat.team.editor.headers)
    assert refused.status_code == 422
    assert field in refused.text


async def test_other_workspaces_contacts_and_viewers_are_refused(
    client: httpx.AsyncClient, chat: Chat
) -> None:
    team = chat.team
    outsider = team.outsider.headers
    other = f"/api/workspaces/{team.other_workspace_id}/contacts/{chat.contact_id}/takeover"
    assert (await client.post(other, json={}, headers=outsider)).status_code == 404
    assert (await client.delete(other, headers=outsider)).status_code == 404
    missing = chat.url(str(uuid.uuid4()))
    assert (await client.post(missing, json={}, headers=team.editor.headers)).status_code == 404
    viewer = await client.post(chat.url(), json={}, headers=team.viewer.headers)
    assert viewer.status_code == 403
    assert await chat.runs() == 1


def message_url(chat: Chat, contact_id: str | None = None) -> str:
    return chat.url(contact_id).removesuffix("/takeover") + "/messages"


async def test_a_reply_from_the_app_goes_through_the_ledger_once(
    client: httpx.AsyncClient, chat: Chat
) -> None:
    body = {"text": "Hi, a human here!", "client_id": str(uuid.uuid4())}
    sent = await client.post(message_url(chat), json=body, headers=chat.team.editor.headers)
    assert sent.status_code == 200, sent.text
    assert sent.json()["status"] == "sandboxed" and sent.json()["duplicate"] is False
    again = await client.post(message_url(chat), json=body, headers=chat.team.editor.headers)
    assert again.json()["duplicate"] is True
    assert again.json()["ledger_id"] == sent.json()["ledger_id"]
    [row] = await rows(
        chat.db, OutboxMessage, OutboxMessage.id == uuid.UUID(sent.json()["ledger_id"])
    )
    assert (row.action, row.target, row.node_id) == ("send_dm", chat.person, "live_chat")


async def test_a_reply_outside_the_window_is_refused_with_the_reason(
    client: httpx.AsyncClient, chat: Chat
) -> None:
    async with chat.db.sessionmaker() as session:
        row = await session.get(Contact, uuid.UUID(chat.contact_id))
        assert row is not None
        row.last_inbound_at = utcnow() - timedelta(days=2)
        await session.commit()
    late = {"text": "Still there?", "client_id": str(uuid.uuid4())}
    refused = await client.post(message_url(chat), json=late, headers=chat.team.editor.headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "instagram_policy_refused"
    assert "24-hour" in refused.json()["message"]
    [row] = await rows(chat.db, OutboxMessage, OutboxMessage.target == chat.person)
    assert row.status == "refused"  # the ledger keeps the refusal and its reason
    tagged = {**late, "client_id": str(uuid.uuid4()), "human_agent": True}
    human = await client.post(message_url(chat), json=tagged, headers=chat.team.editor.headers)
    assert human.json()["status"] == "sandboxed", human.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "x" * 1001}, "text"),
        ({"text": "hi", "client_id": "not-a-uuid"}, "client_id"),
        ({"text": "hi"}, "client_id"),
        ({"text": "hi", "human_agent": "maybe"}, "human_agent"),
    ],
)
async def test_bad_replies_are_refused_naming_the_field(
    client: httpx.AsyncClient, chat: Chat, body: dict[str, Any], field: str
) -> None:
    body = {"client_id": str(uuid.uuid4()), **body} if field != "client_id" else body
    refused = await client.post(message_url(chat), json=body, headers=chat.team.editor.headers)
    assert refused.status_code == 422
    assert field in refused.text


async def test_replies_to_other_workspaces_contacts_or_by_viewers_are_refused(
    client: httpx.AsyncClient, chat: Chat
) -> None:
    team = chat.team
    body = {"text": "hi", "client_id": str(uuid.uuid4())}
    other = f"/api/workspaces/{team.other_workspace_id}/contacts/{chat.contact_id}/messages"
    assert (await client.post(other, json=body, headers=team.outsider.headers)).status_code == 404
    missing = message_url(chat, str(uuid.uuid4()))
    assert (await client.post(missing, json=body, headers=team.editor.headers)).status_code == 404
    viewer = await client.post(message_url(chat), json=body, headers=team.viewer.headers)
    assert viewer.status_code == 403
    assert await rows(chat.db, OutboxMessage, OutboxMessage.target == chat.person) == []
