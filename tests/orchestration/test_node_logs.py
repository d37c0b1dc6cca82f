"""A node's log lines, rendered as JSON, carry the workspace, flow, execution, run and node ids."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from socialflow.core.logging import configure_logging
from socialflow.orchestration import (
    EngineRuntime,
    FlowExecution,
    GraphSpec,
    RunMeta,
    start_graph_run,
)

STOP = GraphSpec.model_validate(
    {
        "nodes": [
            {"id": "t", "kind": "trigger.manual", "label": "Start"},
            {"id": "s", "kind": "logic.stop", "label": "Stop", "config": {"message": "done"}},
        ],
        "edges": [{"source": "t", "source_port": "event", "target": "s"}],
    }
)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The ``socialflow`` log tree rendered as JSON into a buffer, restored afterwards."""
    root = logging.getLogger("socialflow")
    saved = (root.handlers[:], root.level, root.propagate)
    configure_logging("INFO", json_output=True)
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer
    root.handlers[:], root.level, root.propagate = saved


async def test_a_node_log_line_carries_the_run_ids(
    runtime: EngineRuntime, json_logs: io.StringIO
) -> None:
    meta = RunMeta(flow_name="logged", workspace_id=uuid.uuid4(), flow_id=uuid.uuid4())
    await start_graph_run(STOP, {}, meta)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines() if line.strip()]
    stopped = [line for line in lines if line.get("event") == "flow stopped"]
    assert len(stopped) == 1, lines
    line = stopped[0]
    async with runtime.db.sessionmaker() as session:
        row = await session.get(FlowExecution, meta.execution_id)
    assert row is not None and row.prefect_flow_run_id is not None
    assert line["workspace_id"] == str(meta.workspace_id)
    assert line["flow_id"] == str(meta.flow_id)
    assert line["execution_id"] == str(meta.execution_id)
    assert line["flow_run_id"] == str(row.prefect_flow_run_id)
    assert line["node_id"] == "s"
    assert line["reason"] == "done" and line["level"] == "info" and "timestamp" in line
