"""A flow named with characters Prefect refuses (``/ % & < >``) publishes and runs.

The app keeps and shows the name as typed; Prefect gets it with those characters replaced by
look-alikes (so its UI reads the same), each deployment unique by the flow's id. Before, the
deployment was created under the raw name and publishing failed with a 500.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from prefect.types.names import BANNED_CHARACTERS

from socialflow.orchestration import EngineRuntime, Worker
from tests.api.conftest import Team, app, client, team  # noqa: F401 - fixtures
from tests.api.test_hooks import hook_graph

NAME = "Q&A / replies <50%>"
BACK = str.maketrans({"\u2215": "/", "\uff05": "%", "\uff06": "&", "\u2039": "<", "\u203a": ">"})


async def _publish(http: httpx.AsyncClient, workspace_id: str, headers: dict[str, str]) -> str:
    base = f"/api/workspaces/{workspace_id}/flows"
    created = await http.post(base, json={"name": NAME, "graph": hook_graph()}, headers=headers)
    assert created.status_code == 201, created.text
    flow_id = str(created.json()["id"])
    published = await http.post(f"{base}/{flow_id}/publish", headers=headers)
    assert published.status_code == 201, published.text
    shown = await http.get(f"{base}/{flow_id}", headers=headers)
    assert shown.json()["name"] == NAME
    return flow_id


async def test_a_flow_named_with_prefects_banned_characters_publishes_and_runs(
    client: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
) -> None:
    flow_id = await _publish(client, team.workspace_id, team.editor.headers)
    # the same name in another workspace: a deployment of its own
    other_id = await _publish(client, team.other_workspace_id, team.outsider.headers)

    names = {}
    async with get_client() as prefect:
        for fid in (flow_id, other_id):
            [deployment] = await prefect.read_deployments(
                deployment_filter=DeploymentFilter(tags=DeploymentFilterTags(all_=[f"flow:{fid}"]))
            )
            prefect_flow = await prefect.read_flow(deployment.flow_id)
            for shown in (deployment.name, prefect_flow.name):
                assert not set(shown) & set(BANNED_CHARACTERS), shown
            assert deployment.name.translate(BACK) == f"{NAME} [{fid[:8]}]"
            assert prefect_flow.name.translate(BACK) == NAME
            names[fid] = deployment.name
    assert names[flow_id] != names[other_id]

    info = await client.get(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/webhook",
        headers=team.editor.headers,
    )
    hooked = await client.post(
        f"/hooks/{flow_id}", json={"n": 2}, headers={"X-Socialflow-Secret": info.json()["secret"]}
    )
    assert hooked.status_code == 202, hooked.text
    worker = Worker(runtime, concurrency=2, poll_interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    executions = f"/api/workspaces/{team.workspace_id}/executions"
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            page = await client.get(
                executions, params={"flow_id": flow_id}, headers=team.viewer.headers
            )
            items = page.json()["items"]
            if items and items[0]["status"] in ("completed", "failed", "crashed"):
                break
            assert asyncio.get_running_loop().time() < deadline, items
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    [run] = items
    assert run["status"] == "completed", run
    assert run["flow_name"] == NAME
    async with get_client() as prefect:
        flow_run = await prefect.read_flow_run(uuid.UUID(run["prefect_flow_run_id"]))
        prefect_flow = await prefect.read_flow(flow_run.flow_id)
    assert prefect_flow.name.translate(BACK) == NAME
