"""Graph validation of templates: what each template field reads must exist when it runs.

A template may read ``nodes.<id>`` only for a node upstream of its own (one whose output
exists by the time it runs), and ``trigger.<field>`` only for a field the trigger declares
(when its payload has a schema: ``BaseNode.trigger_fields``). Syntax errors are reported by
config validation already (the ``Template`` and ``Expression`` types).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from socialflow.nodes import references, template_fields

if TYPE_CHECKING:
    from socialflow.orchestration._graph import CompiledNode, EdgeSpec

__all__ = ["TemplateProblem", "template_problems"]


@dataclass(frozen=True)
class TemplateProblem:
    """One wrong reference of a template: code, message, node id and field."""

    code: str
    message: str
    node_id: str
    field: str


def _ancestors(node_id: str, parents: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(parents.get(node_id, ()))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(parents.get(current, ()))
    seen.discard(node_id)  # in a cycle a node is its own ancestor; cycles are reported apart
    return seen


def template_problems(
    nodes: Mapping[str, CompiledNode], edges: Iterable[EdgeSpec], known_ids: set[str]
) -> Iterator[TemplateProblem]:
    """Every reference of every template field of ``nodes`` that cannot be satisfied.

    Args:
        nodes: The nodes whose config is valid, by id.
        edges: The graph's edges.
        known_ids: Every node id of the graph, valid or not.
    """
    parents: defaultdict[str, set[str]] = defaultdict(set)
    for edge in edges:
        parents[edge.target].add(edge.source)
    triggers = [node for node in nodes.values() if node.cls.is_trigger()]
    # a free-form payload (manual, webhook) has no schema to check field names against
    schemas = [node.cls.trigger_fields for node in triggers]
    trigger_fields = frozenset().union(*schemas) if schemas and all(schemas) else None
    trigger_kind = ", ".join(node.spec.kind for node in triggers)
    for node_id, node in nodes.items():
        upstream: set[str] | None = None
        for found in template_fields(node.config):
            field = f"config.{found.path}"
            where = f"node {node_id!r} field {field!r}"
            for ref in references(found.text, expression=found.expression):
                at = f"{where} (line {ref.line})"
                if ref.root == "trigger":
                    if trigger_fields is not None and ref.name not in trigger_fields:
                        message = (
                            f"{at}: the trigger ({trigger_kind}) has no field {ref.name!r}; "
                            f"its fields are {', '.join(sorted(trigger_fields))}"
                        )
                        yield TemplateProblem(
                            "template_unknown_trigger_field", message, node_id, field
                        )
                    continue
                if upstream is None:
                    upstream = _ancestors(node_id, parents)
                if ref.name in upstream:
                    continue
                readable = ", ".join(sorted(upstream)) or "none"
                if ref.name not in known_ids:
                    message = (
                        f"{at}: there is no node {ref.name!r} in this graph; this template "
                        f"can read the nodes upstream of it: {readable}"
                    )
                    yield TemplateProblem("template_unknown_node", message, node_id, field)
                else:
                    what = (
                        "a node cannot read its own output; it can read the nodes upstream of "
                        f"it: {readable}"
                        if ref.name == node_id
                        else f"node {ref.name!r} is not upstream of this node, so it has not "
                        f"run when this one does; connect it before this node or read one of "
                        f"the nodes upstream: {readable}"
                    )
                    message = f"{at}: {what}"
                    yield TemplateProblem("template_node_not_upstream", message, node_id, field)
