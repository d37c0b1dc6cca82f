"""Graph validation reports every problem at once, each with its node id and field."""

from __future__ import annotations

from typing import Any

import pytest

from socialflow.core.errors import ValidationError
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import GraphSpec, compile_graph, validate_graph


def graph(nodes: list[dict[str, Any]], edges: list[dict[str, Any]] | None = None) -> GraphSpec:
    return GraphSpec.model_validate({"nodes": nodes, "edges": edges or []})


def test_five_different_problems_are_all_reported(test_registry: NodeRegistry) -> None:
    spec = graph(
        [
            {"id": "start", "kind": "trigger.manual"},
            {"id": "second", "kind": "trigger.webhook"},  # too many triggers
            {"id": "ghost", "kind": "no.such.kind"},  # unknown kind
            {"id": "old", "kind": "logic.condition", "version": 7},  # unknown version
            {
                "id": "check",
                "kind": "logic.condition",
                "config": {"expression": "x >"},
            },  # bad config
            {"id": "a", "kind": "data.set", "config": {"values": {"x": "1"}}},
            {"id": "b", "kind": "data.set", "config": {"values": {"x": "1"}}},
            {"id": "island", "kind": "test.sleep"},  # unreachable
            {"id": "wait", "kind": "logic.delay", "config": {"seconds": 1}},
        ],
        [
            {"source": "start", "source_port": "event", "target": "check"},
            {"source": "start", "source_port": "event", "target": "a"},
            {"source": "a", "target": "b"},
            {"source": "b", "target": "a"},  # cycle
            {"source": "start", "source_port": "nope", "target": "wait"},  # unknown port
            {"source": "start", "source_port": "event", "target": "wait", "target_port": "zzz"},
        ],
    )
    problems = validate_graph(spec, test_registry)
    found = {(p.code, p.node_id, p.field) for p in problems}
    assert ("too_many_triggers", "second", "kind") in found
    assert ("unknown_node_kind", "ghost", "kind") in found
    assert ("unknown_node_version", "old", "version") in found
    assert ("invalid_config", "check", "config.expression") in found
    assert ("unreachable", "island", "edges") in found
    assert ("cycle", "a", "edges") in found
    assert ("cycle", "b", "edges") in found
    assert ("unknown_port", "start", "edges[4].source_port") in found
    assert ("unknown_port", "wait", "edges[5].target_port") in found
    assert len({p.code for p in problems}) >= 5
    for problem in problems:
        assert problem.node_id and problem.field and problem.message


def test_compile_raises_with_every_problem(test_registry: NodeRegistry) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {"id": "d", "kind": "logic.delay", "config": {"seconds": -1, "extra": 1}},
        ],
        [{"source": "t", "source_port": "event", "target": "d"}],
    )
    with pytest.raises(ValidationError) as info:
        compile_graph(spec, test_registry)
    fields = sorted(p["field"] for p in info.value.problems)
    assert fields == ["config.extra", "config.seconds"]
    assert "2 problems" in info.value.message


def test_graph_without_trigger(test_registry: NodeRegistry) -> None:
    problems = validate_graph(graph([{"id": "a", "kind": "test.sleep"}]), test_registry)
    assert [p.code for p in problems] == ["no_trigger"]


def test_edges_to_missing_nodes_and_duplicate_ids(test_registry: NodeRegistry) -> None:
    spec = graph(
        [{"id": "t", "kind": "trigger.manual"}, {"id": "t", "kind": "trigger.manual"}],
        [{"source": "t", "source_port": "event", "target": "nowhere"}],
    )
    codes = sorted(p.code for p in validate_graph(spec, test_registry))
    assert codes == ["duplicate_node_id", "unknown_node"]


def test_incompatible_port_types_are_refused(test_registry: NodeRegistry) -> None:
    from socialflow.nodes import BaseNode, NodeConfig, Port

    class NeedsComment(BaseNode):
        """Takes only Instagram comments."""

        kind = "test.needs_comment"
        title = "Needs comment"
        category = "action"
        inputs = (Port(name="comment", type="instagram.comment"),)

        class Config(NodeConfig):
            pass

    registry = NodeRegistry([*test_registry, NeedsComment])
    spec = graph(
        [
            {"id": "t", "kind": "trigger.schedule", "config": {"interval_seconds": 60}},
            {"id": "c", "kind": "test.needs_comment"},
        ],
        [{"source": "t", "source_port": "event", "target": "c", "target_port": "comment"}],
    )
    problems = validate_graph(spec, registry)
    assert [(p.code, p.node_id) for p in problems] == [("incompatible_ports", "c")]
    assert "schedule.tick" in problems[0].message


def test_single_input_port_takes_one_edge(test_registry: NodeRegistry) -> None:
    spec = graph(
        [
            {"id": "t", "kind": "trigger.manual"},
            {"id": "a", "kind": "test.flaky"},
            {"id": "b", "kind": "test.flaky"},
            {"id": "c", "kind": "test.flaky"},
        ],
        [
            {"source": "t", "source_port": "event", "target": "a"},
            {"source": "t", "source_port": "event", "target": "b"},
            {"source": "a", "target": "c"},
            {"source": "b", "target": "c"},
        ],
    )
    assert [p.code for p in validate_graph(spec, test_registry)] == ["port_takes_one_edge"]
