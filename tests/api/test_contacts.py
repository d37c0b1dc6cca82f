"""The contacts API: list and filter, a profile with its timeline, tags and typed fields, bulk
tagging, CSV export safe from formulas, and erasure of a person's data."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import httpx
from sqlalchemy import select

from socialflow.contacts import Contact
from socialflow.instagram import InstagramAccount, OutboxMessage, build_comment, build_dm
from socialflow.orchestration import FlowExecution, WebhookEvent
from tests.api.conftest import Team, make_team
from tests.fixtures.contacts import connect, drain, new_account_id, new_igsid, rows, store


class People:
    """A workspace whose account met three people: ann (comment), bob (DM), eve (a comment
    whose username is a spreadsheet formula)."""

    def __init__(self, team: Team, account: str, ids: dict[str, str]) -> None:
        self.team = team
        self.account = account
        self.ids = ids

    def url(self, path: str = "") -> str:
        return f"/api/workspaces/{self.team.workspace_id}/contacts{path}"


async def meet_people(app: Any, client: httpx.AsyncClient, test_registry: Any) -> People:
    team = await make_team(client)
    db = app.state.db
    account = new_account_id()
    await connect(db, uuid.UUID(team.workspace_id), account)
    ann, bob, eve = new_igsid(), new_igsid(), new_igsid()
    await store(
        db,
        build_comment("price please", account_id=account, from_id=ann, from_username="ann.smith"),
        build_dm("hello there", account_id=account, sender_id=bob),
        build_comment("hi", account_id=account, from_id=eve, from_username="=HYPERLINK(1)"),
    )
    await drain(db, test_registry)
    found = {c.igsid: str(c.id) for c in await rows(db, Contact, Contact.account_id == account)}
    return People(team, account, {"ann": found[ann], "bob": found[bob], "eve": found[eve]})


async def define(client: httpx.AsyncClient, people: People, **field: Any) -> None:
    answer = await client.post(
        f"/api/workspaces/{people.team.workspace_id}/contact-fields",
        json=field,
        headers=people.team.editor.headers,
    )
    assert answer.status_code == 201, answer.text


async def test_contacts_are_listed_searched_and_filtered(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    viewer = people.team.viewer.headers

    async def names(**params: Any) -> set[str]:
        answer = await client.get(people.url(), params=params, headers=viewer)
        assert answer.status_code == 200, answer.text
        by_id = {v: k for k, v in people.ids.items()}
        return {by_id[item["id"]] for item in answer.json()["items"]}

    assert await names() == {"ann", "bob", "eve"}
    assert await names(q="SMITH") == {"ann"}
    assert await names(q="%") == set(), "wildcards are searched for, not expanded"
    assert await names(source="dm") == {"bob"}
    assert await names(source=["comment", "dm"]) == {"ann", "bob", "eve"}
    assert await names(window="open") == {"bob"}
    assert await names(window="closed") == {"ann", "eve"}
    assert await names(account=people.account) == {"ann", "bob", "eve"}
    assert await names(seen_after="2999-01-01T00:00:00") == set()
    page = await client.get(people.url(), params={"limit": 2}, headers=viewer)
    assert page.json()["total"] == 3 and len(page.json()["items"]) == 2


async def test_tags_and_typed_fields_are_edited_and_filtered(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    editor = people.team.editor.headers
    await define(client, people, key="email", label="Email", type="email")
    await define(client, people, key="plan", label="Plan", type="choice", choices=["free", "pro"])
    await define(client, people, key="age", label="Age", type="number")
    changed = await client.patch(
        people.url(f"/{people.ids['ann']}"),
        json={
            "add_tags": ["lead", "vip"],
            "fields": {"email": "Ann@Example.COM", "plan": "pro", "age": "41"},
        },
        headers=editor,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["tags"] == ["lead", "vip"]
    assert body["fields"] == {"email": "Ann@example.com", "plan": "pro", "age": 41}

    by_tag = await client.get(people.url(), params={"tag": "vip"}, headers=editor)
    assert [i["id"] for i in by_tag.json()["items"]] == [people.ids["ann"]]
    by_field = await client.get(people.url(), params={"field": "plan=pro"}, headers=editor)
    assert [i["id"] for i in by_field.json()["items"]] == [people.ids["ann"]]
    tags = await client.get(
        f"/api/workspaces/{people.team.workspace_id}/contact-tags", headers=editor
    )
    assert {t["name"]: t["contacts"] for t in tags.json()} == {"lead": 1, "vip": 1}

    cleared = await client.patch(
        people.url(f"/{people.ids['ann']}"),
        json={"remove_tags": ["vip"], "fields": {"age": None}, "opted_out": True},
        headers=editor,
    )
    assert cleared.json()["tags"] == ["lead"]
    assert cleared.json()["fields"] == {"email": "Ann@example.com", "plan": "pro"}
    assert cleared.json()["opted_out"] is True


async def test_wrong_types_and_huge_values_are_refused_naming_the_field(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    editor = people.team.editor.headers
    await define(client, people, key="age", label="Age", type="number")
    await define(client, people, key="note", label="Note", type="text")
    await define(client, people, key="site", label="Site", type="url")
    url = people.url(f"/{people.ids['bob']}")
    for fields, says in [
        ({"age": "old"}, "'age' (number): expected a number"),
        ({"note": "x" * 5000}, "'note' (text): is 5,000 characters long"),
        ({"note": {"deep": [[["nested"]]]}}, "'note' (text): expected text"),
        ({"site": "javascript:alert(1)"}, "'site' (url)"),
        ({"nope": "1"}, "no contact field 'nope'"),
    ]:
        answer = await client.patch(url, json={"fields": fields}, headers=editor)
        assert answer.status_code == 400, answer.text
        assert says in answer.json()["message"], answer.text
    # nothing of a refused change was kept, even its valid parts
    mixed = await client.patch(
        url, json={"add_tags": ["kept?"], "fields": {"age": "old"}}, headers=editor
    )
    assert mixed.status_code == 400
    detail = await client.get(url, headers=editor)
    assert detail.json()["tags"] == [] and detail.json()["fields"] == {}
    for bad_tag in ["<script>", "", "x" * 61]:
        answer = await client.patch(url, json={"add_tags": [bad_tag]}, headers=editor)
        assert answer.status_code in (400, 422), answer.text
    too_many = await client.patch(
        url, json={"add_tags": [f"t{i}" for i in range(51)]}, headers=editor
    )
    assert too_many.status_code == 422
    unknown = await client.patch(url, json={"colour": "red"}, headers=editor)
    assert unknown.status_code == 422 and "colour" in unknown.text
    bad_filter = await client.get(people.url(), params={"field": "no-equals"}, headers=editor)
    assert bad_filter.status_code == 422 and "key=value" in bad_filter.text
    long_search = await client.get(people.url(), params={"q": "x" * 101}, headers=editor)
    assert long_search.status_code == 422


async def test_field_and_tag_definitions(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    base = f"/api/workspaces/{people.team.workspace_id}"
    editor, admin = people.team.editor.headers, people.team.admin.headers
    await define(client, people, key="plan", label="Plan", type="choice", choices=["a", "b"])
    again = await client.post(
        f"{base}/contact-fields",
        json={"key": "plan", "label": "x", "type": "text"},
        headers=editor,
    )
    assert again.status_code == 409
    for body in [
        {"key": "Bad Key", "label": "x", "type": "text"},
        {"key": "c", "label": "x", "type": "choice"},
        {"key": "t", "label": "x", "type": "text", "choices": ["a"]},
        {"key": "k", "label": "x", "type": "colour"},
        {"key": "d", "label": "x", "type": "choice", "choices": ["a", "a"]},
    ]:
        answer = await client.post(f"{base}/contact-fields", json=body, headers=editor)
        assert answer.status_code == 422, (body, answer.text)
    [field] = (await client.get(f"{base}/contact-fields", headers=editor)).json()
    renamed = await client.patch(
        f"{base}/contact-fields/{field['id']}",
        json={"label": "Plan level", "choices": ["a", "b", "c"]},
        headers=editor,
    )
    assert renamed.json()["choices"] == ["a", "b", "c"]
    tag = await client.post(f"{base}/contact-tags", json={"name": "vip"}, headers=editor)
    assert tag.status_code == 201
    dup = await client.post(f"{base}/contact-tags", json={"name": "vip"}, headers=editor)
    assert dup.status_code == 409
    await client.patch(
        people.url(f"/{people.ids['ann']}"), json={"add_tags": ["vip"]}, headers=editor
    )
    gone = await client.delete(f"{base}/contact-tags/{tag.json()['id']}", headers=admin)
    assert gone.status_code == 204
    ann = await client.get(people.url(f"/{people.ids['ann']}"), headers=editor)
    assert ann.json()["tags"] == []
    # another workspace's definitions answer 404
    other = f"/api/workspaces/{people.team.other_workspace_id}"
    theirs = await client.post(
        f"{other}/contact-tags", json={"name": "theirs"}, headers=people.team.outsider.headers
    )
    assert theirs.status_code == 201
    cross = await client.delete(f"{base}/contact-tags/{theirs.json()['id']}", headers=admin)
    assert cross.status_code == 404


async def test_bulk_tagging_by_ids_and_by_filter_stays_in_the_workspace(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    other = await meet_people(app, client, test_registry)
    editor = people.team.editor.headers
    by_ids = await client.post(
        people.url("/bulk-tags"),
        json={
            "action": "add",
            "tags": ["promo"],
            "ids": [people.ids["ann"], people.ids["bob"], other.ids["ann"]],
        },
        headers=editor,
    )
    assert by_ids.status_code == 200, by_ids.text
    assert by_ids.json() == {"matched": 2, "tags": ["promo"]}
    tagged = await client.get(people.url(), params={"tag": "promo"}, headers=editor)
    assert tagged.json()["total"] == 2
    theirs = await client.get(other.url(f"/{other.ids['ann']}"), headers=other.team.admin.headers)
    assert theirs.json()["tags"] == [], "another workspace's contact was not touched"

    by_filter = await client.post(
        people.url("/bulk-tags"),
        json={"action": "add", "tags": ["dm-people"], "filter": {"source": ["dm"]}},
        headers=editor,
    )
    assert by_filter.json()["matched"] == 1
    removed = await client.post(
        people.url("/bulk-tags"),
        json={"action": "remove", "tags": ["promo"], "filter": {"tag": ["promo"]}},
        headers=editor,
    )
    assert removed.json()["matched"] == 2
    assert (await client.get(people.url(), params={"tag": "promo"}, headers=editor)).json()[
        "total"
    ] == 0
    both = await client.post(
        people.url("/bulk-tags"),
        json={"action": "add", "tags": ["x"], "ids": [], "filter": {}},
        headers=editor,
    )
    assert both.status_code == 422 and "exactly one" in both.text


async def test_csv_export_streams_every_contact_and_defuses_formulas(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    await define(client, people, key="note", label="Note", type="text")
    await define(client, people, key="memo", label="Memo", type="text")
    tagged = await client.patch(
        people.url(f"/{people.ids['bob']}"),
        json={"fields": {"note": "+1 call me", "memo": "@SUM(1+1)"}, "add_tags": ["home"]},
        headers=people.team.editor.headers,
    )
    assert tagged.status_code == 200, tagged.text
    answer = await client.get(people.url("/export"), headers=people.team.admin.headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(table) == 3
    by_id = {row["id"]: row for row in table}
    assert by_id[people.ids["eve"]]["username"] == "'=HYPERLINK(1)"
    assert by_id[people.ids["bob"]]["field:note"] == "'+1 call me"
    assert by_id[people.ids["bob"]]["field:memo"] == "'@SUM(1+1)"
    assert by_id[people.ids["bob"]]["tags"] == "home"
    assert by_id[people.ids["ann"]]["username"] == "ann.smith"
    filtered = await client.get(
        people.url("/export"), params={"source": "dm"}, headers=people.team.admin.headers
    )
    assert len(list(csv.DictReader(io.StringIO(filtered.text)))) == 1
    denied = await client.get(people.url("/export"), headers=people.team.editor.headers)
    assert denied.status_code == 403


async def test_a_profile_shows_the_timeline_of_events_runs_and_messages(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    db = app.state.db
    bob = uuid.UUID(people.ids["bob"])
    async with db.sessionmaker() as session:
        contact = await session.get(Contact, bob)
        assert contact is not None
        account = await session.scalar(
            select(InstagramAccount).where(InstagramAccount.ig_user_id == people.account)
        )
        session.add(
            OutboxMessage(
                idempotency_key=f"test:{uuid.uuid4()}",
                workspace_id=uuid.UUID(people.team.workspace_id),
                account_id=account.id if account else None,
                action="send_dm",
                target=contact.igsid,
                payload={"text": "Thanks Bob, here is the link"},
                status="sent",
            )
        )
        await session.commit()
    detail = await client.get(people.url(f"/{bob}"), headers=people.team.viewer.headers)
    assert detail.status_code == 200, detail.text
    timeline = detail.json()["timeline"]
    kinds = [(i["type"], i.get("direction"), i.get("text")) for i in timeline]
    assert ("event", "in", "hello there") in kinds
    assert ("message", "out", "Thanks Bob, here is the link") in kinds
    assert detail.json()["window"]["open"] is True
    assert detail.json()["window"]["expires_at"] is not None


async def test_erasing_a_contact_removes_their_data_from_events_runs_and_ledger(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    db = app.state.db
    workspace = uuid.UUID(people.team.workspace_id)
    ann = uuid.UUID(people.ids["ann"])
    await define(client, people, key="email", label="Email", type="email")
    await client.patch(
        people.url(f"/{ann}"),
        json={"add_tags": ["lead"], "fields": {"email": "ann@example.com"}},
        headers=people.team.editor.headers,
    )
    [contact] = await rows(db, Contact, Contact.id == ann)
    comments = await rows(
        db,
        WebhookEvent,
        WebhookEvent.account_id == people.account,
        WebhookEvent.kind == "instagram.comment",
    )
    [event] = [e for e in comments if e.payload.get("from_id") == contact.igsid]
    execution_id = uuid.uuid4()
    async with db.sessionmaker() as session:
        session.add(
            FlowExecution(
                id=execution_id,
                workspace_id=workspace,
                flow_name="reply",
                trigger_kind="instagram.comment",
                trigger_event_id=event.id,
                trigger_payload=event.payload,
                status="completed",
            )
        )
        session.add(
            OutboxMessage(
                idempotency_key=f"test:{uuid.uuid4()}",
                workspace_id=workspace,
                execution_id=execution_id,
                action="private_reply",
                target=str(event.payload["comment_id"]),
                payload={"text": "Hi ann.smith, your price is 29 €"},
                status="sent",
            )
        )
        await session.commit()

    outsider = await client.delete(
        f"/api/workspaces/{people.team.other_workspace_id}/contacts/{ann}",
        headers=people.team.outsider.headers,
    )
    assert outsider.status_code == 404
    editor = await client.delete(people.url(f"/{ann}"), headers=people.team.editor.headers)
    assert editor.status_code == 403

    erased = await client.delete(people.url(f"/{ann}"), headers=people.team.admin.headers)
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["erased"] is True
    assert report["field_values_deleted"] == 1 and report["tags_removed"] == 1
    assert report["events_scrubbed"] == 1 and report["runs_scrubbed"] == 1
    assert report["messages_scrubbed"] == 1
    assert report["kept"] == {"events": 1, "runs": 1, "messages": 1}

    gone = await client.get(people.url(f"/{ann}"), headers=people.team.admin.headers)
    assert gone.status_code == 404
    [event] = await rows(db, WebhookEvent, WebhookEvent.id == event.id)
    [run] = await rows(db, FlowExecution, FlowExecution.id == execution_id)
    [sent] = await rows(db, OutboxMessage, OutboxMessage.execution_id == execution_id)
    stored = (
        f"{event.payload} {event.raw_body!r} {run.trigger_payload} {sent.payload} {sent.target}"
    )
    for personal in (contact.igsid, "ann.smith", "price please", "ann@example.com"):
        assert personal not in stored, personal
    assert event.payload["kind"] == "comment" and event.payload["text"] == "[erased]"
    assert event.payload["account_id"] == people.account
    assert sent.payload["text"] == "[erased]" and sent.status == "sent"
    # the others are untouched
    bob = await client.get(people.url(f"/{people.ids['bob']}"), headers=people.team.admin.headers)
    assert bob.status_code == 200
    assert any(i.get("text") == "hello there" for i in bob.json()["timeline"])


async def test_another_workspaces_contact_answers_404(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    other = await meet_people(app, client, test_registry)
    theirs = other.ids["ann"]
    admin = people.team.admin.headers
    for method, body in (("GET", None), ("PATCH", {"add_tags": ["x"]}), ("DELETE", None)):
        answer = await client.request(method, people.url(f"/{theirs}"), json=body, headers=admin)
        assert answer.status_code == 404, (method, answer.text)
        assert answer.json()["code"] == "contact_not_found"
    still = await client.get(other.url(f"/{theirs}"), headers=other.team.admin.headers)
    assert still.status_code == 200 and still.json()["tags"] == []


async def test_deleting_the_workspace_deletes_its_contacts(
    app: Any, client: httpx.AsyncClient, test_registry: Any
) -> None:
    people = await meet_people(app, client, test_registry)
    await define(client, people, key="email", label="Email", type="email")
    await client.patch(
        people.url(f"/{people.ids['ann']}"),
        json={"add_tags": ["lead"], "fields": {"email": "ann@example.com"}},
        headers=people.team.editor.headers,
    )
    gone = await client.delete(
        f"/api/workspaces/{people.team.workspace_id}", headers=people.team.admin.headers
    )
    assert gone.status_code == 204, gone.text
    workspace = uuid.UUID(people.team.workspace_id)
    assert await rows(app.state.db, Contact, Contact.workspace_id == workspace) == []
    assert await rows(app.state.db, Contact, Contact.account_id == people.account) == []
