"""Every published flow has one Prefect deployment: event runs are created from it, a run
started from the Prefect UI with its own parameters runs, and a worker that stops mid-way
through a scheduled run leaves it to another worker."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterTags
from sqlalchemy import select, update

from socialflow.core.db import utcnow
from socialflow.orchestration import (
    EngineRuntime,
    ExecutionStatus,
    FlowExecution,
    GraphSpec,
    NodeRun,
    Worker,
    activate_version,
    deactivate_flow,
    store_events,
)
from tests.orchestration.test_dispatch import hook_event
from tests.orchestration.test_worker import wait_for

ECHO: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
        {
            "id": "echo",
            "kind": "data.set",
            "label": "Echo",
            "config": {"values": {"said": "{{ trigger.body.x }}"}},
        },
    ],
    "edges": [{"source": "hook", "source_port": "event", "target": "echo"}],
}


async def _activate(
    runtime: EngineRuntime,
    flow_id: uuid.UUID,
    *,
    name: str,
    number: int,
    graph: dict[str, Any] = ECHO,
    workspace_id: uuid.UUID,
) -> tuple[uuid.UUID, uuid.UUID]:
    version_id = uuid.uuid4()
    async with runtime.db.session() as session:
        deployment_id = await activate_version(
            flow_id=flow_id,
            flow_name=name,
            version_id=version_id,
            version_number=number,
            graph=GraphSpec.model_validate(graph),
            workspace_id=workspace_id,
            registry=runtime.registry,
            settings=runtime.settings,
            session=session,
        )
    return deployment_id, version_id


async def _deployments_of(flow_id: uuid.UUID) -> list[Any]:
    async with get_client() as prefect:
        return list(
            await prefect.read_deployments(
                deployment_filter=DeploymentFilter(
                    tags=DeploymentFilterTags(all_=[f"flow:{flow_id}"])
                )
            )
        )


async def _executions(runtime: EngineRuntime, flow_id: uuid.UUID) -> list[FlowExecution]:
    async with runtime.db.sessionmaker() as session:
        return list(
            (
                await session.scalars(select(FlowExecution).where(FlowExecution.flow_id == flow_id))
            ).all()
        )


async def _echoed(runtime: EngineRuntime, execution_id: uuid.UUID) -> Any:
    async with runtime.db.sessionmaker() as session:
        node = await session.scalar(
            select(NodeRun).where(NodeRun.execution_id == execution_id, NodeRun.node_id == "echo")
        )
    assert node is not None and node.output is not None
    return node.output


async def test_one_deployment_per_flow_follows_publish_pause_resume_and_rename(
    runtime: EngineRuntime,
) -> None:
    flow_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    first, _ = await _activate(runtime, flow_id, name="Echo", number=1, workspace_id=workspace_id)
    [deployment] = await _deployments_of(flow_id)
    assert deployment.id == first
    assert deployment.name == f"Echo [{str(flow_id)[:8]}]"
    assert deployment.work_pool_name == "socialflow"
    assert deployment.schedules == []  # started by events: no schedule
    assert deployment.parameters["meta"]["version"] == 1
    assert set(deployment.parameter_openapi_schema["properties"]) == {"graph", "trigger", "meta"}
    assert f"workspace:{workspace_id}" in deployment.tags

    # a new version updates the same deployment
    second, _ = await _activate(runtime, flow_id, name="Echo", number=2, workspace_id=workspace_id)
    assert second == first
    [deployment] = await _deployments_of(flow_id)
    assert deployment.version == "2" and deployment.parameters["meta"]["version"] == 2

    # pause and resume
    async with runtime.db.session() as session:
        await deactivate_flow(flow_id=flow_id, workspace_id=workspace_id, session=session)
    [deployment] = await _deployments_of(flow_id)
    assert deployment.paused is True
    await _activate(runtime, flow_id, name="Echo", number=2, workspace_id=workspace_id)
    [deployment] = await _deployments_of(flow_id)
    assert deployment.paused is False

    # renamed: one deployment, under the new name; the old one is gone
    renamed, _ = await _activate(
        runtime, flow_id, name="Echo back", number=3, workspace_id=workspace_id
    )
    [deployment] = await _deployments_of(flow_id)
    assert deployment.id == renamed != first
    assert deployment.name.startswith("Echo back [")

    # a schedule trigger becomes the deployment's schedule, with its timezone
    cron = {
        "nodes": [
            {
                "id": "tick",
                "kind": "trigger.schedule",
                "label": "Weekdays",
                "config": {"cron": "30 9 * * 1-5", "timezone": "Europe/Paris"},
            }
        ],
        "edges": [],
    }
    await _activate(
        runtime, flow_id, name="Echo back", number=4, graph=cron, workspace_id=workspace_id
    )
    [deployment] = await _deployments_of(flow_id)
    [schedule] = deployment.schedules
    assert schedule.schedule.cron == "30 9 * * 1-5"
    assert schedule.schedule.timezone == "Europe/Paris"
    assert schedule.active is True

    async with runtime.db.session() as session:
        await deactivate_flow(
            flow_id=flow_id, workspace_id=workspace_id, session=session, remove=True
        )
    assert await _deployments_of(flow_id) == []


@pytest.mark.parametrize("in_deployment", [True, False], ids=["in-deployment", "tagged"])
async def test_event_runs_and_prefect_ui_runs_belong_to_the_flows_deployment(
    runtime: EngineRuntime, monkeypatch: pytest.MonkeyPatch, in_deployment: bool
) -> None:
    """UI runs always belong to the deployment; event runs with
    engine.event_runs_in_deployment, else they are plain runs tagged with flow and version."""
    monkeypatch.setattr(runtime.settings.engine, "event_runs_in_deployment", in_deployment)
    flow_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    deployment_id, version_id = await _activate(
        runtime, flow_id, name="Echo", number=1, workspace_id=workspace_id
    )
    async with runtime.db.sessionmaker() as session:
        event = dataclasses.replace(hook_event(flow_id, 1), payload={"body": {"x": "an event"}})
        await store_events(session, [event])
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, schedule_poll=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def event_run_done() -> bool:
            rows = await _executions(runtime, flow_id)
            return any(r.status == ExecutionStatus.COMPLETED for r in rows)

        await wait_for(event_run_done, timeout=60)
        # a run started from the Prefect UI ("custom run") with its own trigger payload
        async with get_client() as prefect:
            ui_run = await prefect.create_flow_run_from_deployment(
                deployment_id, parameters={"trigger": {"body": {"x": "from the UI"}}}
            )

        async def ui_run_done() -> bool:
            rows = await _executions(runtime, flow_id)
            return any(r.id == ui_run.id and r.status == "completed" for r in rows)

        await wait_for(ui_run_done, timeout=60)
    finally:
        stop.set()
        await task

    rows = {r.id: r for r in await _executions(runtime, flow_id)}
    assert len(rows) == 2
    ui_row = rows[ui_run.id]
    [event_row] = [r for r in rows.values() if r.id != ui_run.id]
    assert ui_row.flow_version_id == version_id and ui_row.attempt == 1
    assert await _echoed(runtime, ui_row.id) == {"out": {"said": "from the UI"}}
    assert await _echoed(runtime, event_row.id) == {"out": {"said": "an event"}}
    async with get_client() as prefect:
        for row in (ui_row, event_row):
            assert row.prefect_flow_run_id is not None
            flow_run = await prefect.read_flow_run(row.prefect_flow_run_id)
            expected = deployment_id if row is ui_row or in_deployment else None
            assert flow_run.deployment_id == expected
            assert flow_run.state is not None and flow_run.state.is_completed()
            assert {f"flow:{flow_id}", f"workspace:{workspace_id}", "version:1"} <= set(
                flow_run.tags
            )


SLOW: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
        {"id": "nap", "kind": "test.sleep", "label": "Nap", "config": {"seconds": 3}},
    ],
    "edges": [{"source": "hook", "source_port": "event", "target": "nap"}],
}


async def test_a_scheduled_run_left_by_a_stopped_worker_is_run_again_by_another(
    runtime: EngineRuntime,
) -> None:
    """Runs from the deployment (schedules, the Prefect UI) are leased like event runs."""
    flow_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    deployment_id, _ = await _activate(
        runtime, flow_id, name="Slow", number=1, graph=SLOW, workspace_id=workspace_id
    )
    first = Worker(runtime, concurrency=1, poll_interval=0.05, schedule_poll=0.3)
    async with get_client() as prefect:
        flow_run = await prefect.create_flow_run_from_deployment(
            deployment_id, parameters={"trigger": {"body": {}}}
        )
    stop_first = asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))

    async def leased() -> bool:
        rows = await _executions(runtime, flow_id)
        return flow_run.id in first.inflight and any(
            r.claimed_by == first.name and r.lease_until is not None for r in rows
        )

    try:
        await wait_for(leased, timeout=60)
        [row] = await _executions(runtime, flow_id)
        assert row.id == flow_run.id and row.status == ExecutionStatus.RUNNING
        # the scheduled run counts toward the worker's concurrency: nothing else is claimed
        assert list(first.inflight) == [flow_run.id]
        # the first worker "dies": its run stops where it is, writing nothing more ...
        runtime.lease_lost.add(flow_run.id)
        running = first.inflight.task(flow_run.id)
        assert running is not None
        running.cancel()
        # ... and is gone: stopped before its lease lapses, so that it cannot claim the run
        # again itself (the handover below is to the second worker, deterministically)
        stop_first.set()
        await first_task
        async with runtime.db.sessionmaker() as session:  # ... and its lease lapses
            await session.execute(
                update(FlowExecution)
                .where(FlowExecution.id == flow_run.id)
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
            await session.commit()
        second = Worker(runtime, concurrency=1, poll_interval=0.05, schedule_poll=60)
        stop_second = asyncio.Event()
        second_task = asyncio.create_task(second.run(stop_second))
        try:

            async def completed() -> bool:
                [row] = await _executions(runtime, flow_id)
                return row.status == ExecutionStatus.COMPLETED

            await wait_for(completed, timeout=60)
        finally:
            stop_second.set()
            await second_task
    finally:
        stop_first.set()
        await first_task
    [row] = await _executions(runtime, flow_id)
    assert row.attempt == 2 and row.claimed_by == second.name
    assert row.prefect_flow_run_id not in (None, flow_run.id)  # run again as a new flow run
    async with get_client() as prefect:
        rerun = await prefect.read_flow_run(row.prefect_flow_run_id)
        # run again by the worker: a tagged run of the flow (engine.event_runs_in_deployment
        # is off), named after the execution and its attempt
        assert rerun.name == f"execution-{flow_run.id}-attempt-2"
        assert f"flow:{flow_id}" in rerun.tags
        assert rerun.state is not None and rerun.state.is_completed()
        first_run = await prefect.read_flow_run(flow_run.id)
        assert first_run.deployment_id == deployment_id
        assert first_run.state is not None and first_run.state.is_crashed()


async def test_a_cancel_from_the_prefect_ui_stops_the_run(runtime: EngineRuntime) -> None:
    """Prefect's UI cancels a flow run by moving it to Cancelling; the worker running it
    stops it like a cancel from the API: nodes and flow run end cancelled."""
    from prefect.states import Cancelling

    flow_id, workspace_id = uuid.uuid4(), uuid.uuid4()
    slow = {**SLOW, "nodes": [SLOW["nodes"][0], {**SLOW["nodes"][1], "config": {"seconds": 60}}]}
    await _activate(runtime, flow_id, name="Long", number=1, graph=slow, workspace_id=workspace_id)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, 1)])
    worker = Worker(
        runtime, concurrency=1, poll_interval=0.05, cancel_poll=0.2, prefect_cancel_poll=0.3
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:

        async def napping() -> bool:
            rows = await _executions(runtime, flow_id)
            if not rows or rows[0].prefect_flow_run_id is None:
                return False
            async with runtime.db.sessionmaker() as session:
                node = await session.scalar(
                    select(NodeRun).where(
                        NodeRun.execution_id == rows[0].id, NodeRun.node_id == "nap"
                    )
                )
            return node is not None and node.status == "running"

        await wait_for(napping, timeout=60)
        [row] = await _executions(runtime, flow_id)
        async with get_client() as prefect:
            await prefect.set_flow_run_state(row.prefect_flow_run_id, Cancelling())  # type: ignore[arg-type]

        async def cancelled() -> bool:
            [row] = await _executions(runtime, flow_id)
            return row.status == ExecutionStatus.CANCELLED

        await wait_for(cancelled, timeout=30)
    finally:
        stop.set()
        await task
    [row] = await _executions(runtime, flow_id)
    assert row.cancel_requested_at is not None
    async with runtime.db.sessionmaker() as session:
        nap = await session.scalar(
            select(NodeRun).where(NodeRun.execution_id == row.id, NodeRun.node_id == "nap")
        )
    assert nap is not None and nap.status == "cancelled"
    async with get_client() as prefect:
        flow_run = await prefect.read_flow_run(row.prefect_flow_run_id)  # type: ignore[arg-type]
        assert flow_run.state is not None and flow_run.state.is_cancelled()


async def test_publishing_while_prefect_is_away_is_a_retryable_refusal(
    runtime: EngineRuntime,
) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from socialflow.core.errors import TransientError
    from socialflow.orchestration import FlowTrigger
    from tests.fixtures.ports import free_port

    flow_id = uuid.uuid4()
    unreachable = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: unreachable}):
        try:
            await _activate(runtime, flow_id, name="Echo", number=1, workspace_id=uuid.uuid4())
        except TransientError as exc:
            assert exc.code == "prefect_unavailable"
            assert "try again" in exc.message
        else:
            raise AssertionError("publishing without Prefect must be refused")
    async with runtime.db.sessionmaker() as session:
        assert await session.get(FlowTrigger, flow_id) is None  # nothing half-published


async def test_a_second_start_of_the_same_attempt_gets_a_fresh_flow_run(
    runtime: EngineRuntime,
) -> None:
    """A slot that retries a start (Prefect's API failed) crashes the try's flow run and
    creates the attempt's run again: from the deployment, that must be a new flow run, not
    the Crashed one a reused idempotency key would answer."""
    import json

    from prefect.states import Crashed

    from socialflow.orchestration._runner import RunMeta, _create_flow_run, flow_for

    flow_id = uuid.uuid4()
    deployment_id, version_id = await _activate(
        runtime, flow_id, name="Echo", number=1, workspace_id=uuid.uuid4()
    )
    meta = RunMeta(
        flow_name="Echo",
        flow_id=flow_id,
        flow_version_id=version_id,
        version=1,
        attempt=1,
        deployment_id=deployment_id,
    )

    async def start() -> Any:
        return await _create_flow_run(
            meta, flow_for("Echo"), json.dumps(ECHO), {"body": {}}, ["socialflow"]
        )

    first = await start()
    async with get_client() as prefect:
        await prefect.set_flow_run_state(first.id, Crashed(message="start failed"), force=True)
    second = await start()
    assert second.id != first.id
    assert second.name == first.name  # still found by the attempt's name
    assert second.deployment_id == deployment_id
    assert second.state is not None and second.state.is_pending()
