"""A payload the engine cannot hand on fails its execution once, with a reason naming the
field, instead of crashing attempt after attempt; its detail answers 200.

The edge now refuses such payloads, but the inbox holds events stored before it did (and
re-runs replay old payloads): 300 levels of nesting (more than pydantic serialises), a NUL
character (which Prefect's server on PostgreSQL refuses with 503). Before, the worker's start
failed, its lease lapsed and each new claim failed alike until the third attempt ended
``crashed`` with "each worker stopped mid-run" (the NUL one retried Prefect's 503 for minutes
per attempt), and the detail route answered 500 on the deep one. A body at the edge's depth
limit is accepted and runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from socialflow.core import safejson
from socialflow.orchestration import EngineRuntime, FlowExecution, Worker, store_events
from tests.api.conftest import Team, app, client, team  # noqa: F401 - fixtures
from tests.api.test_hooks import publish_hook
from tests.orchestration.test_dispatch import hook_event

FINAL = ("completed", "failed", "crashed", "cancelled")


async def _run_until_final(runtime: EngineRuntime, flow_id: str) -> FlowExecution:
    """Run a worker (short leases, so an attempt that dies is retried within seconds) until
    the flow's one execution is final."""
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, lease_seconds=1.5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while True:
            async with runtime.db.sessionmaker() as session:
                rows = list(
                    await session.scalars(
                        select(FlowExecution).where(FlowExecution.flow_id == uuid.UUID(flow_id))
                    )
                )
            if rows and all(r.status in FINAL for r in rows):
                break
            assert asyncio.get_running_loop().time() < deadline, [
                (r.status, r.attempt) for r in rows
            ]
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    [row] = rows
    return row


async def _detail(client: httpx.AsyncClient, team: Team, execution_id: uuid.UUID) -> Any:  # noqa: F811
    answer = await client.get(
        f"/api/workspaces/{team.workspace_id}/executions/{execution_id}",
        headers=team.viewer.headers,
    )
    assert answer.status_code == 200, answer.text[:500]
    return answer.json()


async def test_a_body_at_the_depth_limit_is_accepted_and_runs(
    client: httpx.AsyncClient,  # noqa: F811 - the fixture imported above
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
) -> None:
    flow_id, info = await publish_hook(client, team)
    body: Any = {"n": 2, "deep": "bottom"}
    for _ in range(safejson.MAX_DEPTH - 1):
        body = {"n": 2, "deep": body}
    accepted = await client.post(
        f"/hooks/{flow_id}",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", "X-Socialflow-Secret": info["secret"]},
    )
    assert accepted.status_code == 202, accepted.text
    row = await _run_until_final(runtime, flow_id)
    assert (row.status, row.attempt) == ("completed", 1), (row.status, row.error)
    detail = await _detail(client, team, row.id)
    assert detail["trigger_payload"]["body"] == body


async def _store_legacy_event(
    runtime: EngineRuntime, workspace_id: str, flow_id: str, body: Any
) -> None:
    """An event as an earlier version accepted it (the inbox's own door, as the route used)."""
    async with runtime.db.sessionmaker() as session:
        event = dataclasses.replace(
            hook_event(uuid.UUID(flow_id), 0),
            payload={"method": "POST", "body": body, "query": {}, "headers": {}},
            workspace_id=uuid.UUID(workspace_id),
        )
        await store_events(session, [event])


async def test_a_payload_stored_before_the_depth_limit_fails_once_and_stays_readable(
    client: httpx.AsyncClient,  # noqa: F811
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
) -> None:
    flow_id, _ = await publish_hook(client, team)
    deep: Any = "bottom"
    for _ in range(300):
        deep = {"a": deep}
    await _store_legacy_event(runtime, team.workspace_id, flow_id, deep)

    row = await _run_until_final(runtime, flow_id)
    assert (row.status, row.attempt) == ("failed", 1), (row.status, row.attempt, row.error)
    assert row.error is not None and "deeper than 128 levels" in row.error, row.error
    assert "$.body.a.a" in row.error, row.error
    detail = await _detail(client, team, row.id)
    assert detail["status"] == "failed" and detail["error"] == row.error
    # shown as a preview: the detail of a run must never be too deep to send
    assert detail["trigger_payload"]["truncated"] is True
    assert "nests deeper" in detail["trigger_payload"]["reason"]


# PostgreSQL never stored a NUL (it refuses one in text and JSON): only SQLite inboxes can hold
# such events from before the edge refused them
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_nul_stored_before_the_edge_refused_it_fails_once_naming_the_field(
    client: httpx.AsyncClient,  # noqa: F811
    team: Team,  # noqa: F811
    runtime: EngineRuntime,
    database_url: str,
) -> None:
    flow_id, _ = await publish_hook(client, team)
    await _store_legacy_event(runtime, team.workspace_id, flow_id, {"n": 2, "note": "a\x00b"})

    row = await _run_until_final(runtime, flow_id)
    assert (row.status, row.attempt) == ("failed", 1), (row.status, row.attempt, row.error)
    assert row.error is not None and "$.body.note" in row.error and "NUL" in row.error
    detail = await _detail(client, team, row.id)
    assert detail["status"] == "failed"
    assert detail["trigger_payload"]["body"] == {"n": 2, "note": "a\ufffdb"}
