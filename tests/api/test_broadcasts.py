"""Broadcasts over HTTP: compose, preview with reasons, progress and recipients; roles;
another workspace's broadcast or account answers 404; oversized, malformed and injected input
is refused with the field named."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.contacts import Contact, ContactTag, ContactTagLink, contact_id
from socialflow.core.credentials import key_wrapper
from socialflow.core.db import utcnow
from tests.api.conftest import Team, api_settings, make_team
from tests.fixtures.graph_emulator import connect_account


class Desk:
    """The app, a team, an account in the team's workspace and one in another."""

    def __init__(self, client: httpx.AsyncClient, db: Any, team: Team) -> None:
        self.client, self.db, self.team = client, db, team
        self.base = f"/api/workspaces/{team.workspace_id}/broadcasts"
        self.account_id = self.other_account_id = self.ig = ""

    def headers(self, who: str = "editor") -> dict[str, str]:
        return self.team.by_role(who).headers

    async def contact(self, age_hours: float | None, tag: str, opted_out: bool = False) -> None:
        workspace_id = uuid.UUID(self.team.workspace_id)
        igsid = f"77{uuid.uuid4().int % 10**14:014d}"
        last = None if age_hours is None else utcnow() - timedelta(hours=age_hours)
        cid = contact_id(workspace_id, self.ig, igsid)
        async with self.db.sessionmaker() as session:
            session.add(
                Contact(
                    id=cid,
                    workspace_id=workspace_id,
                    account_id=self.ig,
                    igsid=igsid,
                    source="dm",
                    last_inbound_at=last,
                    opted_out=opted_out,
                )
            )
            tag_id = await session.scalar(
                select(ContactTag.id).where(
                    ContactTag.workspace_id == workspace_id, ContactTag.name == tag
                )
            )
            if tag_id is None:
                row = ContactTag(workspace_id=workspace_id, name=tag)
                session.add(row)
                await session.flush()
                tag_id = row.id
            session.add(ContactTagLink(contact_id=cid, tag_id=tag_id))
            await session.commit()

    async def create(self, who: str = "editor", **body: Any) -> httpx.Response:
        body = {"account_id": self.account_id, "name": "Sale", "text": "Hi!"} | body
        return await self.client.post(self.base, json=body, headers=self.headers(who))

    async def preview(self, segment: Any, account_id: str | None = None) -> httpx.Response:
        return await self.client.post(
            f"{self.base}/preview",
            json={"account_id": account_id or self.account_id, "segment": segment},
            headers=self.headers("viewer"),
        )


@pytest.fixture
async def desk(db: Any, test_registry: Any, tmp_path: Path) -> AsyncIterator[Desk]:
    settings = api_settings(db.url, data_dir=tmp_path)
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            team = await make_team(client)
            found = Desk(client, db, team)
            runtime = SimpleNamespace(db=db, key_wrapper=lambda: key_wrapper(settings))
            ig = str(17_841_460_000_000_000 + int(uuid.uuid4().int % 10**9))
            account = await connect_account(
                runtime, ig_user_id=ig, workspace_id=uuid.UUID(team.workspace_id)
            )
            other = await connect_account(
                runtime, ig_user_id=ig, workspace_id=uuid.UUID(team.other_workspace_id)
            )
            found.account_id, found.other_account_id, found.ig = str(account.id), str(other.id), ig
            yield found


async def test_preview_counts_who_would_be_skipped_and_why(desk: Desk) -> None:
    for hours in (1, 2):
        await desk.contact(hours, "vip")
    await desk.contact(30, "vip")
    await desk.contact(24 * 9, "vip")
    await desk.contact(1, "vip", opted_out=True)
    await desk.contact(None, "vip")
    await desk.contact(1, "other")
    answer = await desk.preview({"tags_any": ["vip"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["total"], body["eligible"]) == (6, 2)
    assert body["skipped"] == {
        "opted_out": 1,
        "never_messaged": 1,
        "human_agent_only": 1,
        "outside_window": 1,
    }
    assert "HUMAN_AGENT" in body["reasons"]["human_agent_only"]


async def test_compose_read_list_recipients_and_delete(desk: Desk) -> None:
    created = await desk.create(
        segment={"tags_all": ["vip"], "fields": [{"key": "plan", "op": "eq", "value": "pro"}]},
        quick_replies=[{"title": "Yes", "payload": "YES"}],
    )
    assert created.status_code == 201, created.text
    broadcast = created.json()
    assert broadcast["status"] == "draft" and broadcast["segment"]["tags_all"] == ["vip"]
    url = f"{desk.base}/{broadcast['id']}"
    read = await desk.client.get(url, headers=desk.headers("viewer"))
    assert read.status_code == 200
    assert read.json()["progress"] == {
        "total": None,
        "handled": 0,
        "sent": 0,
        "failed": 0,
        "skipped": {},
        "failures": {},
    }
    listed = await desk.client.get(desk.base, headers=desk.headers("viewer"))
    assert [b["id"] for b in listed.json()["items"]] == [broadcast["id"]]
    people = await desk.client.get(f"{url}/recipients", headers=desk.headers("viewer"))
    assert people.status_code == 200 and people.json() == {"items": [], "next_after": None}
    # a draft cannot be cancelled; the viewer cannot send or delete
    assert (await desk.client.post(f"{url}/cancel", headers=desk.headers())).status_code == 409
    sent = await desk.client.post(f"{url}/send", json={}, headers=desk.headers("viewer"))
    assert sent.status_code == 403
    assert (await desk.client.delete(url, headers=desk.headers("editor"))).status_code == 403
    assert (await desk.client.delete(url, headers=desk.headers("admin"))).status_code == 204
    assert (await desk.client.get(url, headers=desk.headers())).status_code == 404


async def test_another_workspaces_ids_answer_404(desk: Desk) -> None:
    # the other workspace's account, for preview and compose
    foreign = await desk.preview({}, account_id=desk.other_account_id)
    assert foreign.status_code == 404 and "account_id" in foreign.json()["message"]
    assert (await desk.create(account_id=desk.other_account_id)).status_code == 404
    assert (await desk.create(account_id=str(uuid.uuid4()))).status_code == 404
    # a broadcast of this workspace, asked for through the other workspace
    mine = (await desk.create()).json()["id"]
    outsider = desk.team.outsider.headers
    elsewhere = f"/api/workspaces/{desk.team.other_workspace_id}/broadcasts/{mine}"
    for method, path in (
        ("GET", elsewhere),
        ("GET", f"{elsewhere}/recipients"),
        ("POST", f"{elsewhere}/send"),
        ("POST", f"{elsewhere}/cancel"),
        ("DELETE", elsewhere),
    ):
        body = {} if method == "POST" else None
        answer = await desk.client.request(method, path, json=body, headers=outsider)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.json()["code"] == "broadcast_not_found"


async def test_abuse_is_refused_with_the_field_named(desk: Desk) -> None:
    async def refused(answer: httpx.Response, field: str) -> None:
        assert answer.status_code == 422, answer.text
        assert field in answer.text

    await refused(await desk.create(text="x" * 1001), "text")
    await refused(await desk.create(text="é" * 600), "text")  # 1200 bytes of UTF-8
    await refused(await desk.create(text="x" * 500_000), "text")
    # past the API's body limit it is not even read
    huge = await desk.create(text="x" * 5_000_000)
    assert huge.status_code == 413 and huge.json()["code"] == "payload_too_large"
    await refused(await desk.create(text="   "), "text")
    await refused(
        await desk.create(
            text="y" * 700, buttons=[{"type": "postback", "title": "Go", "payload": "GO"}]
        ),
        "text",
    )
    await refused(
        await desk.create(buttons=[{"type": "web_url", "title": "Go", "url": "javascript:x"}]),
        "url",
    )
    await refused(
        await desk.create(quick_replies=[{"title": "t", "payload": "p"}] * 14), "quick_replies"
    )
    await refused(await desk.create(name="n" * 101), "name")
    await refused(await desk.create(segment={"tags_any": ["t"] * 21}), "tags_any")
    await refused(await desk.create(segment={"tags_any": ["t" * 61]}), "tags_any")
    await refused(await desk.create(segment={"where": "1=1"}), "where")
    await refused(
        await desk.create(segment={"fields": [{"key": "plan; DROP TABLE contact", "op": "eq"}]}),
        "key",
    )
    await refused(await desk.create(segment={"fields": [{"key": "a", "op": "like"}]}), "op")
    await refused(await desk.create(segment={"sources": ["carrier_pigeon"]}), "sources")
    nested: Any = "v"
    for _ in range(200):
        nested = {"tags_any": nested}
    deep = await desk.create(segment=nested)
    assert deep.status_code == 400 and deep.json()["code"] == "json_too_deep", deep.text
    shallow = await desk.create(segment={"tags_any": {"tags_any": ["v"]}})
    await refused(shallow, "tags_any")
    await refused(
        await desk.preview(
            {"seen_after": utcnow().isoformat(), "seen_before": "2020-01-01T00:00:00Z"}
        ),
        "seen_after",
    )
    # injected tag names are compared as values: nothing matches, nothing breaks
    await desk.contact(1, "vip")
    injected = await desk.preview({"tags_any": ["vip' OR '1'='1", "vip'); DROP TABLE contact;--"]})
    assert injected.status_code == 200 and injected.json()["total"] == 0
    async with desk.db.sessionmaker() as session:
        assert (await session.scalar(select(func.count()).select_from(Contact))) >= 1
    bad_reason = await desk.client.get(
        f"{desk.base}/{uuid.uuid4()}/recipients",
        params={"reason": "x' OR 1=1"},
        headers=desk.headers("viewer"),
    )
    await refused(bad_reason, "reason")
