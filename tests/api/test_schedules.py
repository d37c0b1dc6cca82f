"""A flow with a schedule trigger runs from its Prefect deployment on schedule; pausing stops it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from sqlalchemy import func, select

from socialflow.orchestration import EngineRuntime, FlowExecution, Worker
from tests.api.conftest import Team

SCHEDULED = {
    "nodes": [
        {
            "id": "tick",
            "kind": "trigger.schedule",
            "label": "Every 5 s",
            "config": {"interval_seconds": 5},
        },
        {
            "id": "note",
            "kind": "data.set",
            "label": "Note",
            "config": {"values": {"at": "{{ trigger }}"}},
        },
    ],
    "edges": [{"source": "tick", "source_port": "event", "target": "note"}],
}


async def runs_of(runtime: EngineRuntime, flow_id: str, status: str | None = None) -> int:
    async with runtime.db.sessionmaker() as session:
        query = (
            select(func.count())
            .select_from(FlowExecution)
            .where(FlowExecution.flow_id == uuid.UUID(flow_id))
        )
        if status:
            query = query.where(FlowExecution.status == status)
        return int(await session.scalar(query) or 0)


async def test_scheduled_flow_runs_from_its_deployment_and_pausing_stops_it(
    client: httpx.AsyncClient, team: Team, runtime: EngineRuntime
) -> None:
    base = f"/api/workspaces/{team.workspace_id}/flows"
    created = await client.post(
        base, json={"name": "Ticker", "graph": SCHEDULED}, headers=team.editor.headers
    )
    assert created.status_code == 201, created.text
    flow_id = created.json()["id"]
    published = await client.post(
        f"{base}/{flow_id}/publish", json={"note": "go"}, headers=team.editor.headers
    )
    assert published.status_code == 201, published.text

    async with get_client() as prefect:
        deployments = await prefect.read_deployments()
        [deployment] = [d for d in deployments if f"flow:{flow_id}" in (d.tags or [])]
        assert deployment.paused is False
        assert deployment.work_pool_name == "socialflow"
        assert [s.schedule.interval.total_seconds() for s in deployment.schedules] == [5.0]
        assert deployment.name.startswith("Ticker")

    worker = Worker(runtime, concurrency=2, poll_interval=0.1, schedule_poll=0.5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + 90
        while await runs_of(runtime, flow_id, "completed") < 2:
            assert asyncio.get_running_loop().time() < deadline, "no scheduled runs arrived"
            await asyncio.sleep(0.5)
        paused = await client.post(f"{base}/{flow_id}/pause", headers=team.editor.headers)
        assert paused.json()["status"] == "paused"
        async with get_client() as prefect:
            assert (await prefect.read_deployment(deployment.id)).paused is True
        await asyncio.sleep(2)  # let a run that was already claimed finish
        settled = await runs_of(runtime, flow_id)
        await asyncio.sleep(12)  # more than two intervals
        assert await runs_of(runtime, flow_id) == settled, "a paused flow must not run"
    finally:
        stop.set()
        await task
    async with runtime.db.sessionmaker() as session:
        rows: Any = (
            await session.scalars(
                select(FlowExecution).where(FlowExecution.flow_id == uuid.UUID(flow_id))
            )
        ).all()
    assert all(r.status == "completed" for r in rows)
    assert all(
        r.prefect_flow_run_id is not None and r.workspace_id == uuid.UUID(team.workspace_id)
        for r in rows
    )
