"""A worker process killed with SIGKILL mid-way through 120 queued runs: a new worker finishes
them, and every event ends with exactly one completed run, in our rows and in Prefect."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from socialflow.orchestration import Dispatcher, EngineRuntime, FlowExecution, store_events
from tests.fixtures.flows import FOUR_NODES, publish
from tests.orchestration.test_dispatch import hook_event
from tests.orchestration.test_worker import prefect_runs_of, state_of

ROOT = Path(__file__).resolve().parents[2]
#: enough that the kill lands after 30 completed runs with 8 in flight and many still queued
EVENTS = 120
#: the webhook trigger and one node: what is counted is runs, so each run costs Prefect two
#: task runs rather than four
TWO_NODES: dict[str, Any] = {
    "nodes": FOUR_NODES["nodes"][:2],
    "edges": FOUR_NODES["edges"][:1],
}


def start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SOCIALFLOW_DATABASE_URL": database_url}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "socialflow.cli",
                "worker",
                "--lease-seconds",
                "3",
                "--concurrency",
                "8",
                "--poll-interval",
                "0.1",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def completed(runtime: EngineRuntime, version_id: object) -> int:
    async with runtime.db.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(FlowExecution)
                .where(
                    FlowExecution.flow_version_id == version_id, FlowExecution.status == "completed"
                )
            )
            or 0
        )


@pytest.mark.timeout(900)
async def test_killed_worker_loses_and_repeats_nothing(
    pg_runtime: EngineRuntime, tmp_path: Path
) -> None:
    runtime = pg_runtime
    flow_id, version_id = await publish(runtime.db, runtime.registry, runtime.settings, TWO_NODES)
    async with runtime.db.sessionmaker() as session:
        await store_events(session, [hook_event(flow_id, n) for n in range(EVENTS)])
    while await Dispatcher(runtime.db, runtime.registry).dispatch_once():
        pass
    log = tmp_path / "workers.log"
    first = start_worker(runtime.db.url, log)
    try:
        deadline = asyncio.get_running_loop().time() + 300
        # kill it mid-way, while several runs are in flight (claimed, not finished)
        while await completed(runtime, version_id) < 30 or await running(runtime, version_id) < 3:
            assert first.poll() is None, log.read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    at_kill = await completed(runtime, version_id)
    assert at_kill < EVENTS, "the worker must die mid-way for this test to mean anything"
    second = start_worker(runtime.db.url, log)
    try:
        deadline = asyncio.get_running_loop().time() + 600
        while await completed(runtime, version_id) < EVENTS:
            assert second.poll() is None, log.read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, (
                f"{await completed(runtime, version_id)} of {EVENTS}"
            )
            await asyncio.sleep(0.5)
        # a run the killed worker had finished in our rows but not yet in Prefect is settled
        # by the live worker once its row has been finished for the grace (two leases)
        deadline = asyncio.get_running_loop().time() + 120
        while unfinished(await prefect_runs_of(flow_id)):
            assert second.poll() is None, log.read_text()[-3000:]
            assert asyncio.get_running_loop().time() < deadline, (
                f"flow runs of the killed worker never settled: "
                f"{unfinished(await prefect_runs_of(flow_id))}"
            )
            await asyncio.sleep(1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(60)
    async with runtime.db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    FlowExecution.id,
                    FlowExecution.trigger_event_id,
                    FlowExecution.status,
                    FlowExecution.attempt,
                    FlowExecution.prefect_flow_run_id,
                ).where(FlowExecution.flow_version_id == version_id)
            )
        ).all()
    assert len(rows) == EVENTS
    assert len({row.trigger_event_id for row in rows}) == EVENTS
    assert {row.status for row in rows} == {"completed"}
    assert any(row.attempt == 2 for row in rows), "runs in flight at the kill were taken over"

    # Prefect agrees: per event exactly one Completed flow run (the one on the row); the runs
    # the killed worker left behind ended Crashed, and nothing is left Running
    runs = await prefect_runs_of(flow_id)
    assert set(runs) == {row.id for row in rows}
    assert not unfinished(runs)
    for execution_id, found in runs.items():
        states = sorted(state_of(run) for run in found)
        assert states.count("COMPLETED") == 1, (execution_id, states)
        assert set(states) <= {"COMPLETED", "CRASHED"}, (execution_id, states)
    recorded = {row.id: row.prefect_flow_run_id for row in rows}
    for execution_id, found in runs.items():
        (done,) = [run for run in found if state_of(run) == "COMPLETED"]
        assert done.id == recorded[execution_id]


async def running(runtime: EngineRuntime, version_id: object) -> int:
    async with runtime.db.sessionmaker() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(FlowExecution)
                .where(
                    FlowExecution.flow_version_id == version_id, FlowExecution.status == "running"
                )
            )
            or 0
        )


def unfinished(runs: dict[object, list[Any]]) -> dict[str, str]:
    """Flow runs in neither Completed nor Crashed, by id."""
    return {
        str(run.id): state_of(run)
        for found in runs.values()
        for run in found
        if state_of(run) not in ("COMPLETED", "CRASHED")
    }
