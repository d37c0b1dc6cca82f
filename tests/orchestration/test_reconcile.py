"""A worker that died between recording its execution finished and reporting the flow run's
final state to Prefect (or a takeover whose Crashed report failed) leaves a flow run Running
for ever; the reconcile pass settles exactly those, and leaves live runs alone."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from prefect.client.orchestration import get_client
from prefect.states import Running

from socialflow.core.db import utcnow
from socialflow.orchestration import EngineRuntime, ExecutionStatus, FlowExecution
from socialflow.orchestration._reconcile import reconcile_flow_runs
from socialflow.orchestration._runner import attempt_run_name, flow_for


async def _flow_run(client: Any, execution_id: uuid.UUID, attempt: int) -> uuid.UUID:
    run = await client.create_flow_run(
        flow_for("reconcile test"),
        name=attempt_run_name(execution_id, attempt),
        parameters={},
        tags=["socialflow"],
        state=Running(),
    )
    return uuid.UUID(str(run.id))


async def test_flow_runs_a_stopped_worker_left_running_are_settled(
    runtime: EngineRuntime,
) -> None:
    long_ago = utcnow() - timedelta(minutes=5)
    rows: dict[str, FlowExecution] = {}
    runs: dict[str, uuid.UUID] = {}
    async with get_client() as client:

        def execution(key: str, status: str, attempt: int, **fields: Any) -> FlowExecution:
            rows[key] = FlowExecution(
                id=uuid.uuid4(),
                flow_name="reconcile test",
                trigger_kind="trigger.webhook",
                status=status,
                attempt=attempt,
                **fields,
            )
            return rows[key]

        # finished in our rows minutes ago; its worker died before telling Prefect
        done = execution("done", ExecutionStatus.COMPLETED, 1, finished_at=long_ago)
        failed = execution(
            "failed", ExecutionStatus.FAILED, 1, finished_at=long_ago, error="node x failed"
        )
        # taken over: attempt 1's flow run was never marked Crashed; attempt 2 runs now
        taken = execution(
            "taken", ExecutionStatus.RUNNING, 2, lease_until=utcnow() + timedelta(seconds=30)
        )
        # still running, and one that finished a moment ago: their workers speak for them
        live = execution(
            "live", ExecutionStatus.RUNNING, 1, lease_until=utcnow() + timedelta(seconds=30)
        )
        fresh = execution("fresh", ExecutionStatus.COMPLETED, 1, finished_at=utcnow())
        for key in ("done", "failed", "live", "fresh"):
            runs[key] = await _flow_run(client, rows[key].id, 1)
            rows[key].prefect_flow_run_id = runs[key]
        runs["taken-1"] = await _flow_run(client, taken.id, 1)
        runs["taken-2"] = await _flow_run(client, taken.id, 2)
        taken.prefect_flow_run_id = runs["taken-2"]
        async with runtime.db.sessionmaker() as session:
            session.add_all([done, failed, taken, live, fresh])
            await session.commit()

        settled = await reconcile_flow_runs(client, runtime.db, grace=timedelta(seconds=60))

        states = {key: (await client.read_flow_run(run_id)).state for key, run_id in runs.items()}
        assert {key: state.type.value for key, state in states.items() if state} == {
            "done": "COMPLETED",
            "failed": "FAILED",
            "taken-1": "CRASHED",
            "taken-2": "RUNNING",
            "live": "RUNNING",
            "fresh": "RUNNING",
        }
        assert settled >= 3  # ours, and any a stopped worker of another test left
        failed_state = states["failed"]
        assert failed_state is not None and failed_state.message == "node x failed"
        # a second pass changes nothing of ours
        await reconcile_flow_runs(client, runtime.db, grace=timedelta(seconds=60))
        again = {key: (await client.read_flow_run(run_id)).state for key, run_id in runs.items()}
        assert {key: (s.type, s.timestamp) for key, s in again.items() if s} == {
            key: (s.type, s.timestamp) for key, s in states.items() if s
        }
