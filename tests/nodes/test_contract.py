"""The contract every node kind passes: built-ins, test kinds, and plugins alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from socialflow.nodes import BaseNode, NodeRegistry, default_registry
from socialflow.nodes.builtins import BUILTIN_NODES
from socialflow.orchestration import GraphSpec, compile_graph
from tests.fixtures.context import make_context
from tests.fixtures.nodes import TEST_NODES

ALL_KINDS = [*BUILTIN_NODES, *TEST_NODES]
TRIGGER = {"text": "hello", "kind": "comment", "username": "ana"}


def test_every_builtin_is_in_the_default_registry() -> None:
    registry = default_registry()
    for node in BUILTIN_NODES:
        assert registry.get(node.kind, node.version) is node


@pytest.mark.parametrize("node", ALL_KINDS, ids=lambda n: f"{n.kind}@{n.version}")
def test_identity_and_description(node: type[BaseNode]) -> None:
    assert node.kind and "." in node.kind
    assert node.version >= 1
    assert node.title
    assert node.category in ("trigger", "logic", "ai", "action", "data")
    described = node.describe()
    text = json.dumps(described.model_dump(mode="json"))
    assert json.loads(text)["kind"] == node.kind
    assert described.description, f"{node.kind} needs a docstring or description"


@pytest.mark.parametrize("node", ALL_KINDS, ids=lambda n: f"{n.kind}@{n.version}")
def test_config_schema_renders_and_forbids_unknown_fields(node: type[BaseNode]) -> None:
    schema = node.Config.model_json_schema()
    json.dumps(schema)
    assert schema.get("type") == "object"
    for name, prop in schema.get("properties", {}).items():
        if node in BUILTIN_NODES:
            assert prop.get("description") or "$ref" in prop or "items" in prop, (
                f"{node.kind}: field {name!r} has no description"
            )
    with pytest.raises(ValueError, match="Extra inputs"):
        node.Config.model_validate({**node.example_config, "surely_not_a_field": 1})


@pytest.mark.parametrize("node", ALL_KINDS, ids=lambda n: f"{n.kind}@{n.version}")
def test_ports_are_unique_and_triggers_have_no_inputs(node: type[BaseNode]) -> None:
    config = node.Config.model_validate(node.example_config) if node.example_config else None
    for ports in (node.input_ports(config), node.output_ports(config)):
        names = [p.name for p in ports]
        assert len(names) == len(set(names))
    if node.is_trigger():
        assert node.input_ports() == ()
        assert len(node.output_ports()) == 1


# action and AI kinds need an outside service (Instagram, a chat model, a knowledge base) to
# run; tests/nodes/test_ai_nodes.py runs every AI kind's example against a scripted model
@pytest.mark.parametrize(
    "node",
    [
        n
        for n in ALL_KINDS
        if n.category not in ("action", "ai") and n.kind not in ("test.fail", "test.flaky")
    ],
    ids=lambda n: f"{n.kind}@{n.version}",
)
async def test_runs_with_its_example_and_returns_declared_ports(node: type[BaseNode]) -> None:
    example = node.example_config or _required_example(node)
    config = node.Config.model_validate(example)
    result = await node(config).run(make_context(trigger=TRIGGER), **_inputs(node))
    assert isinstance(result, dict)
    assert set(result) <= {p.name for p in node.output_ports(config)}


def _required_example(node: type[BaseNode]) -> dict[str, Any]:
    return {"test.greet": {"name": "ana"} if node.version == 1 else {"who": "ana"}}.get(
        node.kind, {}
    )


def _inputs(node: type[BaseNode]) -> dict[str, Any]:
    return {p.name: ([TRIGGER] if p.many else TRIGGER) for p in node.input_ports()}


async def test_an_old_version_whose_class_is_gone_upgrades_and_runs() -> None:
    from tests.fixtures.nodes import GreetV2

    registry = NodeRegistry([*BUILTIN_NODES, GreetV2])  # v1 is no longer installed
    graph = GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual"},
                {"id": "g", "kind": "test.greet", "version": 1, "config": {"name": "ana"}},
            ],
            "edges": [{"source": "t", "source_port": "event", "target": "g"}],
        }
    )
    compiled = compile_graph(graph, registry)
    node = compiled.nodes["g"]
    assert node.cls is GreetV2
    assert await node.cls(node.config).run(make_context()) == {"out": "hello ana"}
