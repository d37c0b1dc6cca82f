"""User A can never read, list, change, run or stream anything of workspace B: not with B's
workspace id, and not with B's object ids under A's own workspace."""

from __future__ import annotations

from typing import Any

import httpx

from socialflow.orchestration import EngineRuntime, GraphSpec, RunMeta, start_graph_run
from tests.api.conftest import Actor, sign_up

GRAPH = {
    "nodes": [
        {"id": "t", "kind": "trigger.manual", "label": "Start"},
        {"id": "s", "kind": "data.set", "label": "Set", "config": {"values": {"a": "1"}}},
    ],
    "edges": [{"source": "t", "source_port": "event", "target": "s"}],
}


async def _workspace(client: httpx.AsyncClient, owner: Actor, name: str) -> str:
    created = await client.post("/api/workspaces", json={"name": name}, headers=owner.headers)
    assert created.status_code == 201
    return str(created.json()["id"])


async def test_nothing_of_b_is_reachable_from_a(
    client: httpx.AsyncClient, runtime: EngineRuntime
) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    ws_a = await _workspace(client, alice, "A")
    ws_b = await _workspace(client, bob, "B")

    # B owns a flow with a published version, a credential and an execution
    flow = await client.post(
        f"/api/workspaces/{ws_b}/flows",
        json={"name": "B flow", "graph": GRAPH},
        headers=bob.headers,
    )
    assert flow.status_code == 201, flow.text
    flow_id = flow.json()["id"]
    published = await client.post(
        f"/api/workspaces/{ws_b}/flows/{flow_id}/publish", json={"note": "v1"}, headers=bob.headers
    )
    assert published.status_code in (200, 201), published.text
    credential = await client.post(
        f"/api/workspaces/{ws_b}/credentials",
        json={
            "name": "b-key",
            "kind": "http-header",
            "secret": {"header_name": "X-Key", "header_value": "b-secret-value-123"},
        },
        headers=bob.headers,
    )
    assert credential.status_code == 201, credential.text
    credential_id = credential.json()["id"]
    meta = RunMeta(flow_name="B flow", workspace_id=ws_b, flow_id=flow_id)
    await start_graph_run(GraphSpec.model_validate(GRAPH), {}, meta)
    execution_id = str(meta.execution_id)
    assert (
        await client.get(f"/api/workspaces/{ws_b}/executions/{execution_id}", headers=bob.headers)
    ).status_code == 200

    # with B's workspace id: 404 everywhere, the same answer as for a workspace that does not exist
    for method, path in [
        ("GET", f"/api/workspaces/{ws_b}"),
        ("GET", f"/api/workspaces/{ws_b}/members"),
        ("GET", f"/api/workspaces/{ws_b}/flows"),
        ("GET", f"/api/workspaces/{ws_b}/flows/{flow_id}"),
        ("GET", f"/api/workspaces/{ws_b}/flows/{flow_id}/versions"),
        ("GET", f"/api/workspaces/{ws_b}/flows/{flow_id}/export"),
        ("POST", f"/api/workspaces/{ws_b}/flows/{flow_id}/publish"),
        ("POST", f"/api/workspaces/{ws_b}/flows/{flow_id}/pause"),
        ("DELETE", f"/api/workspaces/{ws_b}/flows/{flow_id}"),
        ("GET", f"/api/workspaces/{ws_b}/credentials"),
        ("GET", f"/api/workspaces/{ws_b}/credentials/{credential_id}"),
        ("DELETE", f"/api/workspaces/{ws_b}/credentials/{credential_id}"),
        ("GET", f"/api/workspaces/{ws_b}/executions"),
        ("GET", f"/api/workspaces/{ws_b}/executions/{execution_id}"),
    ]:
        answer = await client.request(
            method, path, headers=alice.headers, json={} if method == "POST" else None
        )
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text}"
        assert answer.json()["code"] == "workspace_not_found"

    # with A's own workspace id and B's object ids: still nothing
    for method, path in [
        ("GET", f"/api/workspaces/{ws_a}/flows/{flow_id}"),
        ("GET", f"/api/workspaces/{ws_a}/flows/{flow_id}/versions"),
        ("GET", f"/api/workspaces/{ws_a}/flows/{flow_id}/versions/1"),
        ("GET", f"/api/workspaces/{ws_a}/flows/{flow_id}/export"),
        ("PATCH", f"/api/workspaces/{ws_a}/flows/{flow_id}"),
        ("POST", f"/api/workspaces/{ws_a}/flows/{flow_id}/publish"),
        ("POST", f"/api/workspaces/{ws_a}/flows/{flow_id}/duplicate"),
        ("POST", f"/api/workspaces/{ws_a}/flows/{flow_id}/pause"),
        ("DELETE", f"/api/workspaces/{ws_a}/flows/{flow_id}"),
        ("GET", f"/api/workspaces/{ws_a}/credentials/{credential_id}"),
        ("PATCH", f"/api/workspaces/{ws_a}/credentials/{credential_id}"),
        ("DELETE", f"/api/workspaces/{ws_a}/credentials/{credential_id}"),
        ("GET", f"/api/workspaces/{ws_a}/executions/{execution_id}"),
    ]:
        body: Any = {"name": "stolen"} if method in ("PATCH", "POST") else None
        answer = await client.request(method, path, headers=alice.headers, json=body)
        assert answer.status_code == 404, f"{method} {path}: {answer.status_code} {answer.text}"

    # A's lists never show B's things
    for path in ("flows", "credentials", "executions"):
        listed = await client.get(f"/api/workspaces/{ws_a}/{path}", headers=alice.headers)
        assert listed.status_code == 200
        assert str(listed.json()).count(flow_id) == 0 and execution_id not in str(listed.json())
        assert credential_id not in str(listed.json())

    # and B's objects are intact after all of A's attempts
    still = await client.get(f"/api/workspaces/{ws_b}/flows/{flow_id}", headers=bob.headers)
    assert still.status_code == 200 and still.json()["name"] == "B flow"
    assert (
        await client.get(f"/api/workspaces/{ws_b}/credentials/{credential_id}", headers=bob.headers)
    ).status_code == 200
