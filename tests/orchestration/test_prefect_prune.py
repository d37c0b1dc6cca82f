"""Prefect's records of Socialflow's runs are pruned with the executions: finished flow runs
that ended before the cut-off go, with their task runs; running ones and other flows' stay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.exceptions import ObjectNotFound
from prefect.states import Running

from socialflow.core.db import utcnow
from socialflow.orchestration import EngineRuntime, GraphSpec, RunMeta, start_graph_run
from socialflow.orchestration._prefect_prune import prune_prefect_runs
from socialflow.orchestration._runner import flow_for
from socialflow.stack import prefect_server
from tests.fixtures.flows import FOUR_NODES
from tests.fixtures.prefect import task_runs_of


async def test_finished_socialflow_runs_are_pruned_with_their_task_runs(
    runtime: EngineRuntime,
) -> None:
    flow_id = uuid.uuid4()
    graph = GraphSpec.model_validate(FOUR_NODES)
    finished = []
    for n in range(2):
        state = await start_graph_run(
            graph, {"body": {"n": n}}, RunMeta(flow_name="prune test", flow_id=flow_id)
        )
        assert state.is_completed()
        run_id = state.state_details.flow_run_id
        assert run_id is not None
        await task_runs_of(run_id, 4)
        finished.append(run_id)
    async with get_client() as client:
        running = await client.create_flow_run(
            flow_for("prune test"),
            name="still running",
            parameters={},
            tags=["socialflow", f"flow:{flow_id}"],
            state=Running(),
        )
        other = await client.create_flow_run(
            flow_for("prune test"), name="not ours", parameters={}, tags=[f"flow:{flow_id}"]
        )
        ours = ("socialflow", f"flow:{flow_id}")
        # nothing ended an hour ago: nothing goes
        early = utcnow() - timedelta(hours=1)
        assert await prune_prefect_runs(client, ended_before=early, tags=ours) == 0
        await asyncio.sleep(0.05)
        assert await prune_prefect_runs(client, ended_before=utcnow(), tags=ours) == 2
        for run_id in finished:
            try:
                await client.read_flow_run(run_id)
                raise AssertionError(f"flow run {run_id} was not deleted")
            except ObjectNotFound:
                pass
        left = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=finished))
        )
        assert left == []
        kept = {run.id for run in [running, other]}
        still = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(kept)))
        )
        assert {run.id for run in still} == kept


def test_prefect_keeps_events_as_long_as_executions(tmp_path: object) -> None:
    from pathlib import Path

    server = prefect_server(Path(str(tmp_path)), port=1, events_retention_days=30)
    assert server.env["PREFECT_SERVER_EVENTS_RETENTION_PERIOD"] == "P30D"
    assert (
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD"
        not in prefect_server(Path(str(tmp_path)), port=1).env
    )
