"""Graphs run as Prefect flow runs with one task run per node, recorded on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter

from socialflow.orchestration import (
    EngineRuntime,
    ExecutionRead,
    GraphSpec,
    RunMeta,
    get_execution,
    start_graph_run,
)
from tests.fixtures.nodes import FlakyNode
from tests.fixtures.prefect import flow_run as read_flow_run
from tests.fixtures.prefect import task_run as read_task_run
from tests.fixtures.prefect import task_runs_of


def graph(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> GraphSpec:
    return GraphSpec.model_validate({"nodes": nodes, "edges": edges})


async def run(
    runtime: EngineRuntime, spec: GraphSpec, trigger: dict[str, Any] | None = None, **meta: Any
) -> ExecutionRead:
    run_meta = RunMeta(flow_name=meta.pop("flow_name", "test-flow"), **meta)
    await start_graph_run(spec, trigger or {}, run_meta)
    async with runtime.db.session() as session:
        return await get_execution(session, run_meta.execution_id)


DIAMOND = graph(
    [
        {"id": "t", "kind": "trigger.manual", "label": "Start"},
        {"id": "a", "kind": "test.sleep", "label": "Branch A", "config": {"seconds": 0.4}},
        {"id": "b", "kind": "test.sleep", "label": "Branch B", "config": {"seconds": 0.4}},
        {"id": "c", "kind": "test.sleep", "label": "Join"},
    ],
    [
        {"source": "t", "source_port": "event", "target": "a"},
        {"source": "t", "source_port": "event", "target": "b"},
        {"source": "a", "target": "c"},
        {"source": "b", "target": "c"},
    ],
)


async def test_diamond_runs_branches_concurrently_as_named_task_runs(
    runtime: EngineRuntime,
) -> None:
    workspace, flow_id = uuid.uuid4(), uuid.uuid4()
    execution = await run(
        runtime,
        DIAMOND,
        {"n": 1},
        flow_name="Diamond",
        workspace_id=workspace,
        flow_id=flow_id,
        version=3,
    )
    assert execution.status == "completed", execution.error
    assert {n.node_id: n.status for n in execution.node_runs} == dict.fromkeys("tabc", "completed")
    join = execution.node("c")
    assert join.input == {
        "in": [{"node": "a", "inputs": [{"n": 1}]}, {"node": "b", "inputs": [{"n": 1}]}]
    }

    flow_run = await read_flow_run(execution.prefect_flow_run_id)
    task_runs = await task_runs_of(flow_run.id, expected=4)
    async with get_client() as client:
        flow = await client.read_flow(flow_run.flow_id)
    assert flow.name == "Diamond"
    assert flow_run.state_type.value == "COMPLETED"
    assert set(flow_run.tags) >= {
        "socialflow",
        f"workspace:{workspace}",
        f"flow:{flow_id}",
        "version:3",
        "trigger:trigger.manual",
    }
    names = sorted(t.name for t in task_runs)
    assert names == sorted(
        [
            "Start [trigger.manual]",
            "Branch A [test.sleep]",
            "Branch B [test.sleep]",
            "Join [test.sleep]",
        ]
    )
    by_name = {t.name: t for t in task_runs}
    for task_run in task_runs:
        assert task_run.tags == [], "task runs must not be tagged (concurrency-slot lookups)"
        assert task_run.state_type.value == "COMPLETED"
    a, b = by_name["Branch A [test.sleep]"], by_name["Branch B [test.sleep]"]
    assert a.start_time < b.end_time and b.start_time < a.end_time, "A and B must overlap"
    assert by_name["Join [test.sleep]"].start_time >= max(a.end_time, b.end_time)
    recorded = {n.node_id: n.prefect_task_run_id for n in execution.node_runs}
    assert set(recorded.values()) == {t.id for t in task_runs}

    async with get_client() as client:
        tagged = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags={"all_": [f"flow:{flow_id}"]})
        )
    assert [r.id for r in tagged] == [flow_run.id]


async def test_nodes_behind_the_false_branch_are_skipped(runtime: EngineRuntime) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {"id": "if", "kind": "logic.condition", "config": {"expression": "trigger.n > 5"}},
            {"id": "yes", "kind": "test.sleep"},
            {"id": "no1", "kind": "test.sleep"},
            {"id": "no2", "kind": "test.sleep"},
        ],
        [
            {"source": "t", "source_port": "event", "target": "if"},
            {"source": "if", "source_port": "true", "target": "yes"},
            {"source": "if", "source_port": "false", "target": "no1"},
            {"source": "no1", "target": "no2"},
        ],
    )
    execution = await run(runtime, spec, {"n": 10})
    assert execution.status == "completed"
    statuses = {n.node_id: n.status for n in execution.node_runs}
    assert statuses == {
        "t": "completed",
        "if": "completed",
        "yes": "completed",
        "no1": "skipped",
        "no2": "skipped",
    }
    assert execution.node("if").fired_ports == ["true"]
    skipped = await read_task_run(execution.node("no2").prefect_task_run_id)
    flow_run = await read_flow_run(execution.prefect_flow_run_id)
    assert skipped.state.name == "Skipped"
    assert skipped.state_type.value == "COMPLETED"
    assert flow_run.state_type.value == "COMPLETED"


async def test_transient_errors_are_retried_until_success(runtime: EngineRuntime) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {
                "id": "flaky",
                "kind": "test.flaky",
                "config": {"failures": 2},
                "settings": {"retries": 2, "retry_delay_seconds": 0.05},
            },
        ],
        [{"source": "t", "source_port": "event", "target": "flaky"}],
    )
    execution = await run(runtime, spec)
    assert execution.status == "completed", execution.error
    node = execution.node("flaky")
    assert node.status == "completed"
    assert node.attempts == 3
    assert node.output == {"out": {"attempt": 3}}
    task_run = await read_task_run(node.prefect_task_run_id)
    assert task_run.run_count == 3


async def test_a_retry_waits_as_long_as_the_upstream_asked(
    runtime: EngineRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TransientError's retry_after (Retry-After, Meta's usage headers) holds the retry
    when it is longer than the node's own backoff, up to engine.max_retry_after_seconds."""

    def flaky(retry_after: float) -> GraphSpec:
        return graph(
            [
                {"id": "t", "kind": "trigger.manual"},
                {
                    "id": "flaky",
                    "kind": "test.flaky",
                    "config": {"failures": 1, "retry_after": retry_after},
                    "settings": {"retries": 1, "retry_delay_seconds": 0},
                },
            ],
            [{"source": "t", "source_port": "event", "target": "flaky"}],
        )

    FlakyNode.attempts_at.clear()
    execution = await run(runtime, flaky(1.5))
    assert execution.status == "completed", execution.error
    assert execution.node("flaky").attempts == 2
    first, second = FlakyNode.attempts_at
    assert second - first >= 1.5  # asked 1.5 s; the node's own backoff was 0

    # a longer ask is cut to the configured ceiling (an hour would outlast this test)
    monkeypatch.setattr(runtime.settings.engine, "max_retry_after_seconds", 0.2)
    FlakyNode.attempts_at.clear()
    execution = await run(runtime, flaky(3600))
    assert execution.status == "completed", execution.error
    first, second = FlakyNode.attempts_at
    assert second - first >= 0.2


async def test_transient_errors_beyond_the_retry_budget_fail(runtime: EngineRuntime) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {
                "id": "flaky",
                "kind": "test.flaky",
                "label": "Busy API",
                "config": {"failures": 5},
                "settings": {"retries": 1, "retry_delay_seconds": 0},
            },
        ],
        [{"source": "t", "source_port": "event", "target": "flaky"}],
    )
    execution = await run(runtime, spec)
    assert execution.status == "failed"
    assert execution.node("flaky").attempts == 2
    assert "upstream busy (attempt 2)" in (execution.error or "")


async def test_user_errors_fail_at_once_and_name_the_node(runtime: EngineRuntime) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {
                "id": "bad",
                "kind": "test.fail",
                "label": "Check stock",
                "config": {"message": "sku 'mug' is not in the catalogue"},
                "settings": {"retries": 3, "retry_delay_seconds": 0},
            },
            {"id": "after", "kind": "test.sleep"},
            {"id": "side", "kind": "test.sleep"},
        ],
        [
            {"source": "t", "source_port": "event", "target": "bad"},
            {"source": "bad", "target": "after"},
            {"source": "t", "source_port": "event", "target": "side"},
        ],
    )
    execution = await run(runtime, spec)
    assert execution.status == "failed"
    bad = execution.node("bad")
    assert bad.status == "failed"
    assert bad.attempts == 1, "a UserError must not be retried"
    assert bad.error_code == "user_error"
    assert execution.error_node_id == "bad"
    assert (
        "Check stock" in execution.error and "sku 'mug' is not in the catalogue" in execution.error
    )
    assert execution.node("after").status == "cancelled"
    assert execution.node("side").status == "completed", "independent branches still run"
    flow_run = await read_flow_run(execution.prefect_flow_run_id)
    task_run = await read_task_run(bad.prefect_task_run_id)
    assert flow_run.state_type.value == "FAILED"
    assert "Check stock" in (flow_run.state.message or "")
    assert task_run.run_count == 1


async def test_timeout_fails_the_node_and_names_it(runtime: EngineRuntime) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {
                "id": "slow",
                "kind": "test.sleep",
                "label": "Slow lookup",
                "config": {"seconds": 30},
                "settings": {"timeout_seconds": 0.3},
            },
        ],
        [{"source": "t", "source_port": "event", "target": "slow"}],
    )
    execution = await run(runtime, spec)
    assert execution.status == "failed"
    slow = execution.node("slow")
    assert slow.status == "failed"
    assert slow.error_code == "node_timeout"
    assert "Slow lookup" in slow.error and "timed out after 0.3 s" in slow.error
    assert slow.duration_ms is not None and slow.duration_ms < 10_000


async def test_large_outputs_are_recorded_truncated(runtime: EngineRuntime) -> None:
    runtime.settings.engine.max_recorded_bytes = 1000
    try:
        spec = graph(
            [
                {"id": "t", "kind": "trigger.manual"},
                {
                    "id": "big",
                    "kind": "data.set",
                    "config": {"values": {"blob": "{{ trigger.text * 100 }}"}},
                },
                {
                    "id": "next",
                    "kind": "data.set",
                    "config": {"values": {"size": "{{ nodes.big.out.blob | length }}"}},
                },
            ],
            [
                {"source": "t", "source_port": "event", "target": "big"},
                {"source": "big", "target": "next"},
            ],
        )
        execution = await run(runtime, spec, {"text": "0123456789"})
    finally:
        runtime.settings.engine.max_recorded_bytes = 64_000
    big = execution.node("big")
    assert big.output_truncated
    assert big.output["truncated"] is True and big.output["limit"] == 1000
    # the cap applies to what is stored, never to what flows to the next node
    assert execution.node("next").output == {"out": {"size": 1000}}


async def test_invalid_graph_is_refused_before_any_run(runtime: EngineRuntime) -> None:
    from socialflow.core.errors import ValidationError

    spec = graph([{"id": "t", "kind": "trigger.manual"}, {"id": "x", "kind": "nope"}], [])
    with pytest.raises(ValidationError):
        await start_graph_run(spec, {}, RunMeta())


async def test_nodes_get_their_own_workspace_credentials_only(runtime: EngineRuntime) -> None:
    from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential

    mine, theirs = uuid.uuid4(), uuid.uuid4()
    async with runtime.db.session() as session:
        for workspace, value in (
            (mine, "mine-secret-value"),
            (theirs, "their-secret-value-longer"),
        ):
            session.add(_workspace_row(workspace))
            await session.flush()
            row = Credential(workspace_id=workspace, name="api", kind="http-header")
            seal_credential(
                row,
                parse_secret("http-header", {"header_name": "X-Key", "header_value": value}),
                key_wrapper(runtime.settings),
            )
            session.add(row)
    spec = graph(
        [{"id": "t", "kind": "trigger.manual"}, {"id": "c", "kind": "test.header_credential"}],
        [{"source": "t", "source_port": "event", "target": "c"}],
    )
    execution = await run(runtime, spec, workspace_id=mine)
    assert execution.status == "completed", execution.error
    assert execution.node("c").output == {
        "out": {"header": "X-Key", "value_length": len("mine-secret-value")}
    }
    nobody = await run(runtime, spec)  # a run of no workspace sees no credentials at all
    assert nobody.status == "failed"
    assert nobody.node("c").error_code == "credential_missing"


def _workspace_row(workspace_id: uuid.UUID) -> Any:
    from socialflow.api.workspaces.models import Workspace

    return Workspace(id=workspace_id, name="w")


async def test_unlabelled_nodes_are_named_by_their_kind_and_listed_in_graph_order(
    runtime: EngineRuntime,
) -> None:
    # two branches side by side on the canvas: the upper one is slow, so the lower one's
    # second node starts before the upper one's; the run detail lists the canvas' order
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual", "position": {"x": 0, "y": 100}},
            {"id": "lower2", "kind": "test.sleep", "position": {"x": 600, "y": 200}},
            {"id": "lower1", "kind": "test.sleep", "position": {"x": 300, "y": 200}},
            {
                "id": "upper2",
                "kind": "test.sleep",
                "label": "Upper end",
                "position": {"x": 600, "y": 0},
            },
            {
                "id": "upper1",
                "kind": "test.sleep",
                "config": {"seconds": 0.6},
                "position": {"x": 300, "y": 0},
            },
        ],
        [
            {"source": "t", "source_port": "event", "target": "upper1"},
            {"source": "t", "source_port": "event", "target": "lower1"},
            {"source": "upper1", "target": "upper2"},
            {"source": "lower1", "target": "lower2"},
        ],
    )
    execution = await run(runtime, spec)
    assert execution.status == "completed", execution.error
    started = sorted(execution.node_runs, key=lambda n: n.started_at or n.finished_at)
    assert [n.node_id for n in started].index("lower2") < [n.node_id for n in started].index(
        "upper2"
    )
    assert [n.node_id for n in execution.node_runs] == [
        "t",
        "upper1",
        "lower1",
        "upper2",
        "lower2",
    ]
    labels = {n.node_id: n.label for n in execution.node_runs}
    # a node without a label is called by its kind's title, as the builder shows it
    assert labels == {
        "t": "Manual trigger",
        "upper1": "Sleep",
        "lower1": "Sleep",
        "upper2": "Upper end",
        "lower2": "Sleep",
    }
    flow_run = await read_flow_run(execution.prefect_flow_run_id)
    task_runs = await task_runs_of(flow_run.id, expected=5)
    by_id = {t.id: t.name for t in task_runs}
    names = {n.node_id: by_id[n.prefect_task_run_id] for n in execution.node_runs}
    assert names == {
        "t": "Manual trigger [trigger.manual]",
        "upper1": "Sleep [test.sleep]",
        "lower1": "Sleep [test.sleep]",
        "upper2": "Upper end [test.sleep]",
        "lower2": "Sleep [test.sleep]",
    }
