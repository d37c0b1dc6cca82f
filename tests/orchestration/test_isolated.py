"""``socialflow worker --isolate``: each execution runs in a process of its own. A run whose
process dies is run again without taking the worker down; a cancel request reaches it."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select

from socialflow.orchestration import (
    Dispatcher,
    EngineRuntime,
    ExecutionStatus,
    FlowExecution,
    NodeRun,
    Worker,
    request_cancel,
    store_events,
)
from tests.fixtures.flows import publish
from tests.orchestration.test_dispatch import hook_event
from tests.orchestration.test_worker import wait_for

pytestmark = pytest.mark.timeout(300)

# built-in kinds only: the child process has the installed registry, not the tests' kinds
NAP: dict[str, Any] = {
    "nodes": [
        {"id": "hook", "kind": "trigger.webhook", "label": "Webhook"},
        {"id": "wait", "kind": "logic.delay", "label": "Wait", "config": {"seconds": 4}},
        {"id": "note", "kind": "data.set", "label": "Note", "config": {"values": {"ok": "yes"}}},
    ],
    "edges": [
        {"source": "hook", "source_port": "event", "target": "wait"},
        {"source": "wait", "target": "note"},
    ],
}


async def _rows(runtime: EngineRuntime, flow_id: uuid.UUID) -> list[FlowExecution]:
    async with runtime.db.sessionmaker() as session:
        return list(
            (
                await session.scalars(select(FlowExecution).where(FlowExecution.flow_id == flow_id))
            ).all()
        )


async def _node(runtime: EngineRuntime, execution_id: uuid.UUID, node_id: str) -> NodeRun:
    async with runtime.db.sessionmaker() as session:
        node = await session.scalar(
            select(NodeRun).where(NodeRun.execution_id == execution_id, NodeRun.node_id == node_id)
        )
    assert node is not None
    return node


async def _queue(runtime: EngineRuntime, workspace_id: uuid.UUID, count: int) -> uuid.UUID:
    flow_id, _ = await publish(
        runtime.db, runtime.registry, runtime.settings, NAP, name="nap", workspace_id=workspace_id
    )
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, n) for n in range(count)])
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    return flow_id


async def test_isolated_runs_survive_a_dead_process_and_can_be_cancelled(
    pg_runtime: EngineRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = pg_runtime
    monkeypatch.setenv("SOCIALFLOW_DATABASE_URL", runtime.db.url)
    workspace_id = uuid.uuid4()
    flow_id = await _queue(runtime, workspace_id, 3)
    worker = Worker(
        runtime, concurrency=3, poll_interval=0.05, lease_seconds=3, cancel_poll=0.2, isolate=True
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    pids: dict[uuid.UUID, int] = {}
    try:

        async def three_waiting() -> bool:
            for execution_id, child in worker.children.items():
                pids.setdefault(execution_id, child.pid)
            rows = await _rows(runtime, flow_id)
            waiting = 0
            for row in rows:
                async with runtime.db.sessionmaker() as session:
                    waiting += bool(
                        await session.scalar(
                            select(NodeRun.id).where(
                                NodeRun.execution_id == row.id,
                                NodeRun.node_id == "wait",
                                NodeRun.status == "running",
                            )
                        )
                    )
            return waiting == 3 and len(pids) == 3

        await wait_for(three_waiting, timeout=120)
        assert os.getpid() not in pids.values()
        killed, cancelled, untouched = sorted(pids)
        first_run = {r.id: r.prefect_flow_run_id for r in await _rows(runtime, flow_id)}
        # one run's process dies (as a crash inside a node would kill it) ...
        os.kill(pids[killed], signal.SIGKILL)
        # ... another is cancelled on request while its process runs it
        async with runtime.db.sessionmaker() as session:
            await request_cancel(workspace_id, cancelled, session=session)

        async def settled() -> bool:
            rows = {r.id: r.status for r in await _rows(runtime, flow_id)}
            return (
                rows[killed] == ExecutionStatus.COMPLETED
                and rows[cancelled] == ExecutionStatus.CANCELLED
                and rows[untouched] == ExecutionStatus.COMPLETED
            )

        await wait_for(settled, timeout=180)
        assert not task.done(), "the worker must outlive its runs' processes"
    finally:
        stop.set()
        await task

    rows = {r.id: r for r in await _rows(runtime, flow_id)}
    assert rows[untouched].attempt == 1
    assert (await _node(runtime, untouched, "note")).output["out"]["ok"] == "yes"
    # the killed run was run again, as a new flow run, once
    assert rows[killed].attempt == 2
    assert rows[killed].prefect_flow_run_id != first_run[killed]
    assert (await _node(runtime, killed, "note")).status == "completed"
    # the cancelled run: its unfinished nodes and its Prefect flow run say so
    assert (await _node(runtime, cancelled, "wait")).status == "cancelled"
    assert (await _node(runtime, cancelled, "note")).status == "cancelled"
    async with get_client() as prefect:
        abandoned = await prefect.read_flow_run(first_run[killed])  # type: ignore[arg-type]
        assert abandoned.state is not None and abandoned.state.is_crashed()
        stopped = await prefect.read_flow_run(rows[cancelled].prefect_flow_run_id)  # type: ignore[arg-type]
        assert stopped.state is not None and stopped.state.is_cancelled()
