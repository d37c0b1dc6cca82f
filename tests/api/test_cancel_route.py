"""``POST /api/workspaces/{id}/executions/{id}/cancel``: a queued run is cancelled at once, a
running one is stopped by its worker, a finished one is refused, and only editors may ask."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx

from socialflow.orchestration import EngineRuntime, Worker
from tests.api.conftest import Team
from tests.fixtures.flows import FOUR_NODES
from tests.fixtures.prefect import flow_run

# webhook → wait 60 s → set: a run that stays in its middle node until it is cancelled
SLOW: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
        {"id": "wait", "kind": "logic.delay", "label": "Wait", "config": {"seconds": 60}},
        {"id": "after", "kind": "data.set", "label": "After", "config": {"values": {"x": "1"}}},
    ],
    "edges": [
        {"source": "hook", "source_port": "event", "target": "wait"},
        {"source": "wait", "target": "after"},
    ],
}


async def published(client: httpx.AsyncClient, team: Team, graph: dict[str, Any]) -> str:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base,
        json={"name": f"Cancel {uuid.uuid4().hex[:6]}", "graph": json.loads(json.dumps(graph))},
        headers=team.editor.headers,
    )
    assert created.status_code == 201, created.text
    flow_id = str(created.json()["id"])
    publish = await client.post(f"{base}/{flow_id}/publish", headers=team.editor.headers)
    assert publish.status_code == 201, publish.text
    return flow_id


async def run_now(client: httpx.AsyncClient, team: Team, flow_id: str, n: int = 2) -> str:
    answer = await client.post(
        f"/api/workspaces/{team.workspace_id}/flows/{flow_id}/run",
        json={"payload": {"body": {"n": n}}},
        headers=team.editor.headers,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["execution_id"])


def cancel_url(team: Team, execution_id: str, workspace_id: str | None = None) -> str:
    return f"/api/workspaces/{workspace_id or team.workspace_id}/executions/{execution_id}/cancel"


async def read(client: httpx.AsyncClient, team: Team, execution_id: str) -> dict[str, Any]:
    answer = await client.get(
        f"/api/workspaces/{team.workspace_id}/executions/{execution_id}",
        headers=team.viewer.headers,
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def until(check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"never reached: {what}"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def worker_running(runtime: EngineRuntime) -> AsyncIterator[Worker]:
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, cancel_poll=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def test_a_queued_run_is_cancelled_at_once_and_never_runs(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    flow_id = await published(client, team, FOUR_NODES)
    queued = await run_now(client, team, flow_id)
    later = await run_now(client, team, flow_id, n=4)  # queued after it: runs to completion

    # only editors may cancel; callers outside the workspace learn nothing
    viewer = await client.post(cancel_url(team, queued), headers=team.viewer.headers)
    assert viewer.status_code == 403, viewer.text
    assert viewer.json()["code"] == "forbidden"
    assert "editor role" in viewer.json()["message"]
    assert viewer.json()["details"] == {"required_role": "editor"}
    outsider = await client.post(cancel_url(team, queued), headers=team.outsider.headers)
    assert outsider.status_code == 404 and outsider.json()["code"] == "workspace_not_found"
    elsewhere = await client.post(
        cancel_url(team, queued, team.other_workspace_id), headers=team.outsider.headers
    )
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "execution_not_found"
    missing = await client.post(cancel_url(team, str(uuid.uuid4())), headers=team.editor.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "execution_not_found"
    assert (await read(client, team, queued))["status"] == "queued"

    cancelled = await client.post(cancel_url(team, queued), headers=team.editor.headers)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert body["cancel_requested_at"] is not None and body["finished_at"] is not None
    assert body["error"] == "cancelled on request before it started"
    again = await client.post(cancel_url(team, queued), headers=team.editor.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"

    async with worker_running(runtime):
        # the worker claims oldest first: once the later run is done, it has passed this one
        await until(lambda: _status_is(client, team, later, "completed"), "the later run completed")
    row = await read(client, team, queued)
    assert row["status"] == "cancelled"
    assert row["prefect_flow_run_id"] is None and row["node_runs"] == []

    # a finished run cannot be cancelled: 409, saying why
    finished = await client.post(cancel_url(team, later), headers=team.editor.headers)
    assert finished.status_code == 409, finished.text
    assert finished.json()["code"] == "execution_finished"
    assert "already finished (completed)" in finished.json()["message"]
    assert (await read(client, team, later))["cancel_requested_at"] is None


async def test_a_running_run_is_stopped_by_its_worker_and_its_nodes_marked(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    flow_id = await published(client, team, SLOW)
    execution_id = await run_now(client, team, flow_id)
    async with worker_running(runtime) as worker:

        async def waiting() -> bool:
            nodes = {
                n["node_id"]: n["status"]
                for n in (await read(client, team, execution_id))["node_runs"]
            }
            return nodes.get("wait") == "running"

        await until(waiting, "the delay node running")
        viewer = await client.post(cancel_url(team, execution_id), headers=team.viewer.headers)
        assert viewer.status_code == 403 and viewer.json()["code"] == "forbidden"
        asked = await client.post(cancel_url(team, execution_id), headers=team.editor.headers)
        assert asked.status_code == 200, asked.text
        # the worker has yet to stop it: still running, with the request recorded
        assert asked.json()["status"] == "running"
        assert asked.json()["cancel_requested_at"] is not None
        await until(
            lambda: _status_is(client, team, execution_id, "cancelled"),
            "the execution cancelled",
            timeout=30,
        )
    assert worker.cancelled == 1 and worker.completed == 0
    row = await read(client, team, execution_id)
    assert row["error"] == "cancelled on request"
    assert row["finished_at"] is not None
    assert {n["node_id"]: n["status"] for n in row["node_runs"]} == {
        "hook": "completed",
        "wait": "cancelled",
        "after": "cancelled",
    }
    assert row["prefect_flow_run_id"] is not None
    prefect_run = await flow_run(uuid.UUID(row["prefect_flow_run_id"]))
    assert prefect_run.state.type.value == "CANCELLED"
    # asking again changes nothing
    again = await client.post(cancel_url(team, execution_id), headers=team.editor.headers)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


async def _status_is(client: httpx.AsyncClient, team: Team, execution_id: str, status: str) -> bool:
    found = (await read(client, team, execution_id))["status"]
    assert found not in {"completed", "failed", "crashed", "cancelled"} - {status}, found
    return bool(found == status)
