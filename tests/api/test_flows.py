"""The builder API: drafts, validation, export and import, publishing, versions and rollback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import Field

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.credentials import Credential
from socialflow.nodes import BaseNode, NodeConfig, NodeContext, NodeRegistry
from tests.api.conftest import Team, api_settings


class CredentialedNode(BaseNode):
    """A node naming a workspace credential in its config, as provider nodes do."""

    kind = "test.credentialed"
    title = "Credentialed"
    category = "action"
    credentials: ClassVar[tuple[str, ...]] = ("instagram",)

    class Config(NodeConfig):
        credential: str = Field(min_length=1, description="Name of a workspace credential.")

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        return {"out": {}}


@pytest.fixture
async def app(db: Any, test_registry: NodeRegistry) -> AsyncIterator[Any]:
    """The API with the test kinds plus a kind that names credentials."""
    registry = NodeRegistry([*test_registry, CredentialedNode])
    application = create_app(api_settings(db.url), db=db, registry=registry, email=LogEmailSender())
    async with application.router.lifespan_context(application):
        yield application


def valid_graph(greeting: str = "hi") -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "kind": "trigger.manual", "position": {"x": 0, "y": 0}},
            {"id": "set", "kind": "data.set", "config": {"values": {"greeting": greeting}}},
        ],
        "edges": [{"source": "start", "source_port": "event", "target": "set"}],
    }


def credential_graph(*names: str) -> dict[str, Any]:
    graph = valid_graph()
    for index, name in enumerate(names):
        node_id = f"send{index}"
        graph["nodes"].append(
            {"id": node_id, "kind": "test.credentialed", "config": {"credential": name}}
        )
        graph["edges"].append({"source": "set", "target": node_id})
    return graph


async def add_credential(app: Any, workspace_id: str, name: str, kind: str = "instagram") -> None:
    async with app.state.db.session() as session:
        session.add(
            Credential(
                workspace_id=uuid.UUID(workspace_id),
                name=name,
                kind=kind,
                ciphertext=b"sealed",
                wrapped_key=b"wrapped",
                key_id="test",
            )
        )


class Flows:
    """Calls to one workspace's flow routes as one member."""

    def __init__(self, client: httpx.AsyncClient, workspace_id: str, headers: dict[str, str]):
        self.client = client
        self.base = f"/api/workspaces/{workspace_id}/flows"
        self.headers = headers

    async def call(self, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, self.base + path, headers=self.headers, **kwargs)

    async def create(self, name: str = "Welcome", **body: Any) -> dict[str, Any]:
        answer = await self.call("POST", json={"name": name, **body})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


@pytest.fixture
def editor(client: httpx.AsyncClient, team: Team) -> Flows:
    return Flows(client, team.workspace_id, team.editor.headers)


async def test_create_get_update_delete(editor: Flows, team: Team) -> None:
    blank = await editor.create("Blank", description="nothing yet")
    assert blank["status"] == "draft"
    assert blank["graph"] == {"nodes": [], "edges": []}
    assert blank["active_version"] is None
    assert [p["code"] for p in blank["problems"]] == ["no_trigger"]
    assert blank["workspace_id"] == team.workspace_id

    flow = await editor.create("Welcome", graph=valid_graph())
    assert flow["problems"] == []
    assert flow["unpublished_changes"] is True
    got = await editor.call("GET", f"/{flow['id']}")
    assert got.status_code == 200
    assert got.json()["graph"]["nodes"][1]["config"] == {"values": {"greeting": "hi"}}

    changed = await editor.call(
        "PATCH", f"/{flow['id']}", json={"name": "Hello", "graph": valid_graph("hey")}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Hello"
    assert changed.json()["description"] == ""
    assert changed.json()["graph"]["nodes"][1]["config"]["values"]["greeting"] == "hey"
    assert changed.json()["updated_at"] >= flow["updated_at"]

    assert (await editor.call("DELETE", f"/{flow['id']}")).status_code == 204
    gone = await editor.call("GET", f"/{flow['id']}")
    assert gone.status_code == 404
    assert gone.json()["code"] == "flow_not_found"


@pytest.mark.prefect
async def test_list_search_filter_and_paginate(editor: Flows) -> None:
    names = ["Welcome DM", "Price question", "welcome back", "FAQ 100%_off"]
    created = [await editor.create(name, graph=valid_graph()) for name in names]
    published = await editor.call("POST", f"/{created[1]['id']}/publish")
    assert published.status_code == 201, published.text

    everything = (await editor.call("GET")).json()
    assert everything["total"] == 4
    assert everything["limit"] == 20 and everything["offset"] == 0
    # most recently changed first: the published flow was touched last
    assert [f["name"] for f in everything["items"]] == [
        "Price question",
        "FAQ 100%_off",
        "welcome back",
        "Welcome DM",
    ]
    assert "graph" not in everything["items"][0]
    assert everything["items"][0]["active_version"] == 1

    found = (await editor.call("GET", params={"search": "WELCOME"})).json()
    assert sorted(f["name"] for f in found["items"]) == ["Welcome DM", "welcome back"]
    assert found["total"] == 2
    # LIKE wildcards in the search are taken literally
    literal = (await editor.call("GET", params={"search": "0%_"})).json()
    assert [f["name"] for f in literal["items"]] == ["FAQ 100%_off"]
    assert (await editor.call("GET", params={"search": "%"})).json()["total"] == 1

    active = (await editor.call("GET", params={"status": "active"})).json()
    assert [f["name"] for f in active["items"]] == ["Price question"]
    drafts = (await editor.call("GET", params={"status": "draft", "search": "e"})).json()
    assert sorted(f["name"] for f in drafts["items"]) == ["Welcome DM", "welcome back"]

    pages = [
        (await editor.call("GET", params={"limit": 3, "offset": offset})).json()
        for offset in (0, 3)
    ]
    assert [len(p["items"]) for p in pages] == [3, 1]
    assert all(p["total"] == 4 and p["limit"] == 3 for p in pages)
    paged = [f["id"] for p in pages for f in p["items"]]
    assert paged == [f["id"] for f in everything["items"]]

    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "running"}):
        assert (await editor.call("GET", params=params)).status_code == 422


async def test_invalid_graph_lists_every_problem_and_can_be_saved_as_work_in_progress(
    editor: Flows,
) -> None:
    broken = {
        "nodes": [
            {"id": "start", "kind": "trigger.manual"},
            {"id": "ghost", "kind": "no.such.kind"},
            {"id": "wait", "kind": "logic.delay", "config": {"seconds": -5}},
            {"id": "island", "kind": "test.sleep"},
        ],
        "edges": [
            {"source": "start", "source_port": "event", "target": "wait"},
            {"source": "start", "source_port": "nope", "target": "wait"},
        ],
    }
    refused = await editor.call("POST", json={"name": "Broken", "graph": broken})
    assert refused.status_code == 422
    body = refused.json()
    assert body["code"] == "validation_error"
    found = {(p["code"], p["node_id"], p["field"]) for p in body["details"]["problems"]}
    assert found >= {
        ("unknown_node_kind", "ghost", "kind"),
        ("invalid_config", "wait", "config.seconds"),
        ("unknown_port", "start", "edges[1].source_port"),
        ("unreachable", "island", "edges"),
    }
    assert all(p["message"] for p in body["details"]["problems"])
    assert (await editor.call("GET")).json()["total"] == 0

    flow = await editor.create("Work in progress", graph=valid_graph())
    patched = await editor.call("PATCH", f"/{flow['id']}", json={"graph": broken})
    assert patched.status_code == 422
    assert len(patched.json()["details"]["problems"]) == len(body["details"]["problems"])
    unchanged = (await editor.call("GET", f"/{flow['id']}")).json()
    assert unchanged["graph"] == flow["graph"]

    saved = await editor.call(
        "PATCH", f"/{flow['id']}", params={"validate": "false"}, json={"graph": broken}
    )
    assert saved.status_code == 200, saved.text
    assert {p["node_id"] for p in saved.json()["problems"]} >= {"ghost", "wait", "island"}

    # what does not parse as a graph is refused even when validation is off
    malformed = await editor.call(
        "PATCH",
        f"/{flow['id']}",
        params={"validate": "false"},
        json={"graph": {"nodes": [{"id": "bad id!", "kind": "x"}], "edges": [], "extra": 1}},
    )
    assert malformed.status_code == 422
    fields = {p["field"] for p in malformed.json()["details"]["problems"]}
    assert {"body.graph.nodes.0.id", "body.graph.extra"} <= fields


@pytest.mark.prefect
async def test_duplicate_and_export_import_round_trip(
    app: Any, client: httpx.AsyncClient, editor: Flows, team: Team
) -> None:
    await add_credential(app, team.workspace_id, "main account")
    flow = await editor.create(
        "Answer comments", description="FAQ bot", graph=credential_graph("main account")
    )
    assert flow["problems"] == []
    published = await editor.call("POST", f"/{flow['id']}/publish")
    assert published.status_code == 201, published.text

    copy = await editor.call("POST", f"/{flow['id']}/duplicate")
    assert copy.status_code == 201, copy.text
    assert copy.json()["name"] == "Answer comments (copy)"
    assert copy.json()["status"] == "draft"
    assert copy.json()["active_version"] is None
    assert copy.json()["graph"] == flow["graph"]
    assert copy.json()["id"] != flow["id"]
    versions = await editor.call("GET", f"/{copy.json()['id']}/versions")
    assert versions.json()["total"] == 0

    exported = await editor.call("GET", f"/{flow['id']}/export")
    assert exported.status_code == 200
    document = exported.json()
    assert document == {
        "format": "socialflow.flow",
        "version": 1,
        "name": "Answer comments",
        "description": "FAQ bot",
        "graph": flow["graph"],
        "credentials": ["main account"],
    }

    # into another workspace that has the credential under the same name
    other = Flows(client, team.other_workspace_id, team.outsider.headers)
    await add_credential(app, team.other_workspace_id, "main account")
    imported = await other.call("POST", "/import", json=document)
    assert imported.status_code == 201, imported.text
    assert imported.json()["name"] == "Answer comments"
    assert imported.json()["status"] == "draft"
    assert imported.json()["workspace_id"] == team.other_workspace_id
    assert imported.json()["graph"] == flow["graph"]
    again = await other.call("GET", f"/{imported.json()['id']}/export")
    assert again.json() == document

    wrong_format = await other.call("POST", "/import", json={**document, "format": "n8n"})
    assert wrong_format.status_code == 422


async def test_import_reports_every_missing_credential(
    app: Any, client: httpx.AsyncClient, team: Team
) -> None:
    other = Flows(client, team.other_workspace_id, team.outsider.headers)
    await add_credential(app, team.other_workspace_id, "present")
    await add_credential(app, team.other_workspace_id, "openai key", kind="openai")
    document = {
        "format": "socialflow.flow",
        "version": 1,
        "name": "Imported",
        "description": "",
        "graph": credential_graph("present", "missing one", "missing two", "openai key"),
        "credentials": ["present", "missing one", "missing two", "openai key"],
    }
    document["graph"]["nodes"].append({"id": "ghost", "kind": "no.such.kind"})
    answer = await other.call("POST", "/import", json=document)
    assert answer.status_code == 422, answer.text
    problems = answer.json()["details"]["problems"]
    found = {(p["code"], p["node_id"], p["field"]) for p in problems}
    assert found == {
        ("credential_not_found", "send1", "config.credential"),
        ("credential_not_found", "send2", "config.credential"),
        ("credential_kind_mismatch", "send3", "config.credential"),
        ("unknown_node_kind", "ghost", "kind"),
    }
    assert any("'missing one'" in p["message"] for p in problems)
    assert (await other.call("GET")).json()["total"] == 0


@pytest.mark.prefect
async def test_publish_versions_and_rollback(editor: Flows) -> None:
    flow = await editor.create("Greeter", graph=valid_graph("v1"))
    first = await editor.call("POST", f"/{flow['id']}/publish", json={"note": "first"})
    assert first.status_code == 201, first.text
    assert first.json()["number"] == 1
    assert first.json()["note"] == "first"
    assert first.json()["active"] is True
    assert first.json()["graph"] == flow["graph"]
    published = (await editor.call("GET", f"/{flow['id']}")).json()
    assert published["status"] == "active"
    assert published["active_version"] == 1
    assert published["unpublished_changes"] is False

    await editor.call("PATCH", f"/{flow['id']}", json={"graph": valid_graph("v2")})
    assert (await editor.call("GET", f"/{flow['id']}")).json()["unpublished_changes"] is True
    version_one = (await editor.call("GET", f"/{flow['id']}/versions/1")).json()
    assert version_one["graph"] == first.json()["graph"]  # the draft moved on; v1 did not

    second = await editor.call("POST", f"/{flow['id']}/publish")  # no body: no note
    assert second.status_code == 201, second.text
    assert second.json()["number"] == 2
    assert second.json()["note"] == ""
    assert second.json()["graph"]["nodes"][1]["config"]["values"]["greeting"] == "v2"

    listed = (await editor.call("GET", f"/{flow['id']}/versions")).json()
    assert [v["number"] for v in listed["items"]] == [2, 1]
    assert [v["active"] for v in listed["items"]] == [True, False]
    assert listed["total"] == 2
    assert "graph" not in listed["items"][0]
    assert (await editor.call("GET", f"/{flow['id']}/versions/1")).json() == {
        **version_one,
        "active": False,
    }

    rolled = await editor.call("POST", f"/{flow['id']}/versions/1/activate")
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["active_version"] == 1
    assert rolled.json()["status"] == "active"
    assert rolled.json()["graph"]["nodes"][1]["config"]["values"]["greeting"] == "v2"  # draft
    got = (await editor.call("GET", f"/{flow['id']}")).json()
    assert got["active_version"] == 1
    listed = (await editor.call("GET", f"/{flow['id']}/versions")).json()
    assert listed["total"] == 2  # rollback creates no version
    assert [v["active"] for v in listed["items"]] == [False, True]

    missing = await editor.call("POST", f"/{flow['id']}/versions/3/activate")
    assert missing.status_code == 404
    assert missing.json()["code"] == "flow_version_not_found"
    assert (await editor.call("GET", f"/{flow['id']}/versions/9")).status_code == 404


@pytest.mark.prefect
async def test_publishing_an_invalid_draft_is_refused_and_creates_no_version(
    editor: Flows,
) -> None:
    flow = await editor.create("Greeter", graph=valid_graph())
    assert (await editor.call("POST", f"/{flow['id']}/publish")).status_code == 201
    broken = valid_graph()
    broken["nodes"][1]["config"] = {"values": {}, "unknown": True}
    broken["nodes"].append({"id": "extra", "kind": "trigger.webhook"})
    saved = await editor.call(
        "PATCH", f"/{flow['id']}", params={"validate": "false"}, json={"graph": broken}
    )
    assert saved.status_code == 200

    refused = await editor.call("POST", f"/{flow['id']}/publish", json={"note": "oops"})
    assert refused.status_code == 422
    found = {(p["code"], p["node_id"], p["field"]) for p in refused.json()["details"]["problems"]}
    assert found == {
        ("invalid_config", "set", "config.values"),
        ("invalid_config", "set", "config.unknown"),
        ("too_many_triggers", "extra", "kind"),
    }
    versions = (await editor.call("GET", f"/{flow['id']}/versions")).json()
    assert [v["number"] for v in versions["items"]] == [1]
    assert (await editor.call("GET", f"/{flow['id']}")).json()["active_version"] == 1

    blank = await editor.create("Blank")
    empty = await editor.call("POST", f"/{blank['id']}/publish")
    assert empty.status_code == 422
    assert [p["code"] for p in empty.json()["details"]["problems"]] == ["no_trigger"]


@pytest.mark.prefect
async def test_pause_and_resume(editor: Flows) -> None:
    flow = await editor.create("Greeter", graph=valid_graph())
    for action in ("pause", "resume"):
        never = await editor.call("POST", f"/{flow['id']}/{action}")
        assert never.status_code == 409, never.text
        assert never.json()["code"] == "flow_not_published"

    published = await editor.call("POST", f"/{flow['id']}/publish")
    assert published.status_code == 201, published.text
    paused = await editor.call("POST", f"/{flow['id']}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["active_version"] == 1
    assert (await editor.call("POST", f"/{flow['id']}/pause")).json()["status"] == "paused"
    assert (await editor.call("GET", params={"status": "paused"})).json()["total"] == 1

    resumed = await editor.call("POST", f"/{flow['id']}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    assert resumed.json()["active_version"] == 1
    assert (await editor.call("POST", f"/{flow['id']}/resume")).json()["status"] == "active"

    # rolling back a paused flow runs that version again
    await editor.call("POST", f"/{flow['id']}/pause")
    rolled = await editor.call("POST", f"/{flow['id']}/versions/1/activate")
    assert rolled.json()["status"] == "active"

    # a published flow can be deleted, versions and all
    assert (await editor.call("DELETE", f"/{flow['id']}")).status_code == 204
    assert (await editor.call("GET", f"/{flow['id']}/versions/1")).status_code == 404


def flow_routes(flow_id: str) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"/{flow_id}", None),
        ("PATCH", f"/{flow_id}", {"name": "Stolen"}),
        ("DELETE", f"/{flow_id}", None),
        ("POST", f"/{flow_id}/duplicate", None),
        ("GET", f"/{flow_id}/export", None),
        ("POST", f"/{flow_id}/publish", {"note": "x"}),
        ("POST", f"/{flow_id}/pause", None),
        ("POST", f"/{flow_id}/resume", None),
        ("GET", f"/{flow_id}/versions", None),
        ("GET", f"/{flow_id}/versions/1", None),
        ("POST", f"/{flow_id}/versions/1/activate", None),
    ]


@pytest.mark.prefect
async def test_another_workspace_cannot_reach_a_flow(
    client: httpx.AsyncClient, editor: Flows, team: Team
) -> None:
    flow = await editor.create("Private", graph=valid_graph())
    published = await editor.call("POST", f"/{flow['id']}/publish")
    assert published.status_code == 201, published.text
    # through the outsider's own workspace, with the real flow id
    outsider = Flows(client, team.other_workspace_id, team.outsider.headers)
    # and straight at the flow's workspace, of which the outsider is no member
    intruder = Flows(client, team.workspace_id, team.outsider.headers)
    for method, path, body in flow_routes(flow["id"]):
        answer = await outsider.call(method, path, json=body)
        assert answer.status_code == 404, f"{method} {path}: {answer.text}"
        assert answer.json()["code"] == "flow_not_found", f"{method} {path}"
        answer = await intruder.call(method, path, json=body)
        assert answer.status_code == 404, f"{method} {path}: {answer.text}"
        assert answer.json()["code"] == "workspace_not_found", f"{method} {path}"
    for method, path, body in (("GET", "", None), ("POST", "", {"name": "x"})):
        assert (await intruder.call(method, path, json=body)).status_code == 404
    # the flow is looked up before the body is read: a bad body still answers 404
    bad_body = await outsider.call("POST", f"/{flow['id']}/publish", json={"stolen": True})
    assert bad_body.status_code == 404
    assert (await outsider.call("GET")).json()["total"] == 0
    # nothing changed
    still = (await editor.call("GET", f"/{flow['id']}")).json()
    assert still["name"] == "Private" and still["status"] == "active"
    assert (await editor.call("GET", f"/{flow['id']}/versions")).json()["total"] == 1


@pytest.mark.prefect
async def test_viewer_reads_but_cannot_write(
    client: httpx.AsyncClient, editor: Flows, team: Team
) -> None:
    flow = await editor.create("Shared", graph=valid_graph())
    published = await editor.call("POST", f"/{flow['id']}/publish")
    assert published.status_code == 201, published.text
    viewer = Flows(client, team.workspace_id, team.viewer.headers)
    reads = {"GET"}
    for method, path, body in flow_routes(flow["id"]):
        answer = await viewer.call(method, path, json=body)
        expected = 200 if method in reads else 403
        assert answer.status_code == expected, f"{method} {path}: {answer.text}"
        if expected == 403:
            assert answer.json()["details"] == {"required_role": "editor"}
    assert (await viewer.call("GET")).json()["total"] == 1
    assert (await viewer.call("POST", json={"name": "Mine"})).status_code == 403
    document = (await viewer.call("GET", f"/{flow['id']}/export")).json()
    assert (await viewer.call("POST", "/import", json=document)).status_code == 403
    assert (await client.get(editor.base)).status_code == 401
    # the role is checked before the flow is looked up: no probing for ids
    unknown = await viewer.call("POST", f"/{uuid.uuid4()}/publish")
    assert unknown.status_code == 403
    # the admin has every editor right
    admin = Flows(client, team.workspace_id, team.admin.headers)
    assert (await admin.call("POST", f"/{flow['id']}/pause")).status_code == 200
