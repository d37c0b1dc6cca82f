"""Saving a flow whose ask node saves answers to a contact field: the field must exist in the
workspace and take what the node expects, or the flow's problems name the node and the field.
The graph is the gallery's growth template itself (frontend/src/flows/growth.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Team

GROWTH = Path(__file__).parents[2] / "frontend" / "src" / "flows" / "growth.json"


def growth_graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(GROWTH.read_text(encoding="utf-8"))
    return graph


async def save(client: httpx.AsyncClient, team: Team, graph: dict[str, Any]) -> dict[str, Any]:
    created = await client.post(
        f"/api/workspaces/{team.workspace_id}/flows",
        params={"validate": "false"},
        json={"name": "Growth", "graph": graph},
        headers=team.editor.headers,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def field(client: httpx.AsyncClient, team: Team, workspace: str, **body: Any) -> None:
    actor = team.outsider if workspace == team.other_workspace_id else team.editor
    created = await client.post(
        f"/api/workspaces/{workspace}/contact-fields", json=body, headers=actor.headers
    )
    assert created.status_code == 201, created.text


def problems(flow: dict[str, Any]) -> set[tuple[str, str | None, str | None]]:
    return {(p["code"], p["node_id"], p["field"]) for p in flow["problems"]}


async def test_the_growth_template_needs_its_email_field_and_then_has_no_problem(
    client: httpx.AsyncClient, team: Team
) -> None:
    # the same key in another workspace does not count
    await field(client, team, team.other_workspace_id, key="email", label="Email", type="email")
    flow = await save(client, team, growth_graph())
    assert problems(flow) == {("contact_field_unknown", "email", "config.save_to_field")}
    [problem] = flow["problems"]
    assert "'email'" in problem["message"] and "node 'email'" in problem["message"]
    # saving with validation refuses it with the same problem
    refused = await client.post(
        f"/api/workspaces/{team.workspace_id}/flows",
        json={"name": "Growth", "graph": growth_graph()},
        headers=team.editor.headers,
    )
    assert refused.status_code == 422
    assert "contact_field_unknown" in refused.text and "save_to_field" in refused.text

    await field(client, team, team.workspace_id, key="email", label="Email", type="email")
    read = await client.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow['id']}", headers=team.viewer.headers
    )
    assert read.json()["problems"] == []


async def test_a_field_of_another_type_is_a_problem_naming_both_types(
    client: httpx.AsyncClient, team: Team
) -> None:
    await field(client, team, team.workspace_id, key="email", label="Email", type="number")
    await field(client, team, team.workspace_id, key="notes", label="Notes", type="text")
    graph = growth_graph()
    flow = await save(client, team, graph)
    assert problems(flow) == {("contact_field_type_mismatch", "email", "config.save_to_field")}
    message = flow["problems"][0]["message"]
    assert "'number'" in message and "'email'" in message and "text" in message
    # a text field takes any answer
    texted = copy.deepcopy(graph)
    [ask] = [n for n in texted["nodes"] if n["id"] == "email"]
    ask["config"]["save_to_field"] = "notes"
    assert (await save(client, team, texted))["problems"] == []


async def test_a_bad_field_key_is_a_config_problem_and_reads_no_field(
    client: httpx.AsyncClient, team: Team
) -> None:
    graph = growth_graph()
    [ask] = [n for n in graph["nodes"] if n["id"] == "email"]
    ask["config"]["save_to_field"] = "x' OR '1'='1" + "a" * 5000
    flow = await save(client, team, graph)
    found = problems(flow)
    assert ("invalid_config", "email", "config.save_to_field") in found
    assert len(json.dumps(flow["problems"])) < 20_000
