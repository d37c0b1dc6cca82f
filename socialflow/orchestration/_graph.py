"""The flow graph as saved by the builder, and validation that reports every problem at once."""

from __future__ import annotations

import hashlib
import heapq
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from socialflow.core.errors import NotFoundError, ValidationError
from socialflow.nodes import BaseNode, NodeConfig, NodeRegistry, Port, ports_compatible
from socialflow.orchestration._graph_templates import template_problems

__all__ = [
    "CompiledGraph",
    "CompiledNode",
    "EdgeSpec",
    "GraphProblem",
    "GraphSpec",
    "NodeSettings",
    "NodeSpec",
    "Position",
    "compile_graph",
    "compile_graph_json",
    "validate_graph",
]


class Position(BaseModel):
    """Where the node sits on the canvas."""

    x: float = 0
    y: float = 0


class NodeSettings(BaseModel):
    """How the engine runs a node, whatever its kind."""

    model_config = ConfigDict(extra="forbid")

    retries: int = Field(default=0, ge=0, le=10, description="Retries on transient errors.")
    retry_delay_seconds: float = Field(
        default=1.0, ge=0, le=3600, description="First retry delay; doubles on each retry."
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="Fail the node after this long (server default when empty).",
    )


class NodeSpec(BaseModel):
    """One node of the drawing."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Stable id within the graph.")
    kind: str = Field(min_length=1, max_length=200)
    version: int = Field(default=1, ge=1)
    label: str = Field(default="", max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    position: Position = Field(default_factory=Position)
    settings: NodeSettings = Field(default_factory=NodeSettings)


class EdgeSpec(BaseModel):
    """A wire from an output port to an input port."""

    model_config = ConfigDict(extra="forbid")

    source: str
    source_port: str = "out"
    target: str
    target_port: str = "in"


class GraphSpec(BaseModel):
    """A whole flow graph: nodes and edges."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[NodeSpec] = Field(default_factory=list, max_length=500)
    edges: list[EdgeSpec] = Field(default_factory=list, max_length=2000)


class GraphProblem(BaseModel):
    """One thing wrong with a graph, located by node id and field."""

    code: str
    message: str
    node_id: str | None = None
    field: str | None = None


@dataclass(frozen=True)
class CompiledNode:
    """A node with its class, parsed config and resolved ports."""

    spec: NodeSpec
    cls: type[BaseNode]
    config: NodeConfig
    inputs: dict[str, Port]
    outputs: dict[str, Port]

    @property
    def display_name(self) -> str:
        """What the node is called everywhere (its task run, its node run, the builder): its
        label, else its kind's title, else its id."""
        return self.spec.label or self.cls.title or self.spec.id


@dataclass(frozen=True)
class CompiledGraph:
    """A graph that passed validation, ready to run."""

    spec: GraphSpec
    nodes: dict[str, CompiledNode]
    incoming: dict[str, list[EdgeSpec]]
    #: graph order: topological, ties by position on the canvas (left to right, top to bottom)
    order: list[str]

    @property
    def trigger(self) -> CompiledNode:
        """The graph's trigger node."""
        return next(node for node in self.nodes.values() if node.cls.is_trigger())


def validate_graph(
    spec: GraphSpec, registry: NodeRegistry, *, max_triggers: int = 1
) -> list[GraphProblem]:
    """Every problem of ``spec``, in a stable order; empty when the graph can run."""
    return _Checker(spec, registry, max_triggers).run()[0]


def compile_graph(
    spec: GraphSpec, registry: NodeRegistry, *, max_triggers: int = 1
) -> CompiledGraph:
    """Validate ``spec`` and resolve it for running.

    Raises:
        ValidationError: With every problem found, each naming its node and field.
    """
    problems, compiled = _Checker(spec, registry, max_triggers).run()
    if problems or compiled is None:
        count = len(problems)
        msg = f"the graph has {count} problem{'s' if count != 1 else ''}: " + "; ".join(
            p.message for p in problems
        )
        raise ValidationError(msg, problems=[p.model_dump() for p in problems])
    return compiled


_CACHE_SIZE = 256
_compiled: OrderedDict[tuple[int, str], CompiledGraph] = OrderedDict()
_compiled_lock = Lock()


def compile_graph_json(text: str, registry: NodeRegistry) -> CompiledGraph:
    """``compile_graph`` for a graph given as JSON, cached by content and registry.

    A published version runs many times with the same graph; it is parsed and validated once
    per process.

    Raises:
        ValidationError: The JSON is not a graph, or the graph has problems.
    """
    key = (id(registry), hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
    with _compiled_lock:
        hit = _compiled.get(key)
        if hit is not None:
            _compiled.move_to_end(key)
            return hit
    try:
        spec = GraphSpec.model_validate_json(text)
    except PydanticValidationError as exc:
        problems = [
            {
                "code": "invalid_graph",
                "message": f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}",
                "node_id": None,
                "field": ".".join(str(p) for p in e["loc"]),
            }
            for e in exc.errors()
        ]
        msg = f"not a valid graph: {problems[0]['message']}"
        raise ValidationError(msg, problems=problems) from exc
    compiled = compile_graph(spec, registry)
    with _compiled_lock:
        _compiled[key] = compiled
        while len(_compiled) > _CACHE_SIZE:
            _compiled.popitem(last=False)
    return compiled


class _Checker:
    def __init__(self, spec: GraphSpec, registry: NodeRegistry, max_triggers: int) -> None:
        self.spec = spec
        self.registry = registry
        self.max_triggers = max_triggers
        self.problems: list[GraphProblem] = []
        self.nodes: dict[str, CompiledNode] = {}
        # ports of every node whose kind is known, even when its config is invalid, so that
        # edge problems are reported in the same pass
        self.ports: dict[str, tuple[dict[str, Port], dict[str, Port]]] = {}

    def add(
        self, code: str, message: str, node_id: str | None = None, field: str | None = None
    ) -> None:
        self.problems.append(GraphProblem(code=code, message=message, node_id=node_id, field=field))

    def run(self) -> tuple[list[GraphProblem], CompiledGraph | None]:
        known_ids = self._check_nodes()
        incoming = self._check_edges(known_ids)
        self._check_triggers()
        order = self._check_cycles_and_reach(known_ids)
        for problem in template_problems(self.nodes, self.spec.edges, known_ids):
            self.add(problem.code, problem.message, problem.node_id, problem.field)
        if self.problems or order is None:
            return self.problems, None
        return [], CompiledGraph(self.spec, self.nodes, incoming, order)

    def _check_nodes(self) -> set[str]:
        seen: set[str] = set()
        for index, node in enumerate(self.spec.nodes):
            if node.id in seen:
                self.add(
                    "duplicate_node_id",
                    f"node id {node.id!r} is used twice",
                    node.id,
                    f"nodes[{index}].id",
                )
                continue
            seen.add(node.id)
            try:
                cls, raw_config = self._resolve(node)
            except NotFoundError as exc:
                field = "version" if exc.code == "unknown_node_version" else "kind"
                self.add(exc.code, f"node {node.id!r}: {exc.message}", node.id, field)
                continue
            self.ports[node.id] = (
                {p.name: p for p in cls.input_ports()},
                {p.name: p for p in cls.output_ports()},
            )
            try:
                config = cls.Config.model_validate(raw_config)
            except PydanticValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"])
                    field = f"config.{where}" if where else "config"
                    self.add(
                        "invalid_config",
                        f"node {node.id!r} field {field!r}: {error['msg']}",
                        node.id,
                        field,
                    )
                continue
            compiled = CompiledNode(
                spec=node,
                cls=cls,
                config=config,
                inputs={p.name: p for p in cls.input_ports(config)},
                outputs={p.name: p for p in cls.output_ports(config)},
            )
            self.nodes[node.id] = compiled
            self.ports[node.id] = (compiled.inputs, compiled.outputs)
        return seen

    def _resolve(self, node: NodeSpec) -> tuple[type[BaseNode], dict[str, Any]]:
        """The class for a node and its config; a version no longer installed is upgraded
        through the newest version's ``upgrade_config`` when it is older than that."""
        try:
            return self.registry.get(node.kind, node.version), node.config
        except NotFoundError as exc:
            if exc.code != "unknown_node_version":
                raise
            newest = self.registry.get(node.kind)
            if node.version > newest.version:
                raise
            return newest, newest.upgrade_config(node.version, dict(node.config))

    def _check_edges(self, known_ids: set[str]) -> dict[str, list[EdgeSpec]]:
        incoming: dict[str, list[EdgeSpec]] = defaultdict(list)
        per_port: dict[tuple[str, str], int] = defaultdict(int)
        for index, edge in enumerate(self.spec.edges):
            where = f"edges[{index}]"
            ok = True
            for end, node_id in (("source", edge.source), ("target", edge.target)):
                if node_id not in known_ids:
                    self.add(
                        "unknown_node",
                        f"{where}: {end} node {node_id!r} does not exist",
                        node_id,
                        f"{where}.{end}",
                    )
                    ok = False
            if not ok:
                continue
            if edge.source not in self.ports or edge.target not in self.ports:
                continue  # the node's kind was reported unknown; so are its ports
            source_outputs = self.ports[edge.source][1]
            target_inputs = self.ports[edge.target][0]
            out_port = source_outputs.get(edge.source_port)
            in_port = target_inputs.get(edge.target_port)
            if out_port is None:
                self.add(
                    "unknown_port",
                    f"node {edge.source!r} has no output port {edge.source_port!r} "
                    f"(has: {', '.join(source_outputs) or 'none'})",
                    edge.source,
                    f"{where}.source_port",
                )
            if in_port is None:
                self.add(
                    "unknown_port",
                    f"node {edge.target!r} has no input port {edge.target_port!r} "
                    f"(has: {', '.join(target_inputs) or 'none'})",
                    edge.target,
                    f"{where}.target_port",
                )
            if out_port is None or in_port is None:
                continue
            if not ports_compatible(out_port.type, in_port.type):
                self.add(
                    "incompatible_ports",
                    f"{edge.source}.{out_port.name} ({out_port.type}) cannot feed "
                    f"{edge.target}.{in_port.name} ({in_port.type})",
                    edge.target,
                    f"{where}.target_port",
                )
                continue
            per_port[(edge.target, edge.target_port)] += 1
            if per_port[(edge.target, edge.target_port)] == 2 and not in_port.many:
                self.add(
                    "port_takes_one_edge",
                    f"input {edge.target}.{in_port.name} takes one edge; it has several",
                    edge.target,
                    f"{where}.target_port",
                )
            incoming[edge.target].append(edge)
        return incoming

    def _check_triggers(self) -> None:
        triggers = [n for n in self.nodes.values() if n.cls.is_trigger()]
        if not triggers and not any(
            p.code in ("unknown_node_kind", "unknown_node_version") for p in self.problems
        ):
            self.add(
                "no_trigger", "the graph has no trigger node: add one to say what starts the flow"
            )
        for extra in triggers[self.max_triggers :]:
            self.add(
                "too_many_triggers",
                f"node {extra.spec.id!r}: a flow has at most {self.max_triggers} trigger; "
                "remove this one or split the flow",
                extra.spec.id,
                "kind",
            )

    def _check_cycles_and_reach(self, known_ids: set[str]) -> list[str] | None:
        successors: dict[str, set[str]] = defaultdict(set)
        indegree = dict.fromkeys(known_ids, 0)
        for edge in self.spec.edges:
            if (
                edge.source in known_ids
                and edge.target in known_ids
                and edge.target not in successors[edge.source]
            ):
                successors[edge.source].add(edge.target)
                indegree[edge.target] += 1
        # graph order: upstream before downstream; among nodes that are ready together, the
        # one further left on the canvas first, then the higher one, then the one drawn first
        place = {n.id: (n.position.x, n.position.y, i) for i, n in enumerate(self.spec.nodes)}
        order: list[str] = []
        ready = [(place[n], n) for n, d in indegree.items() if d == 0]
        heapq.heapify(ready)
        while ready:
            _, node_id = heapq.heappop(ready)
            order.append(node_id)
            for nxt in successors[node_id]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    heapq.heappush(ready, (place[nxt], nxt))
        cyclic = sorted(n for n, d in indegree.items() if d > 0)
        for node_id in cyclic:
            self.add(
                "cycle",
                f"node {node_id!r} is part of a cycle; flows must not loop back",
                node_id,
                "edges",
            )
        roots = [n.spec.id for n in self.nodes.values() if n.cls.is_trigger()]
        reached: set[str] = set(roots)
        stack = list(roots)
        while stack:
            for nxt in successors[stack.pop()]:
                if nxt not in reached:
                    reached.add(nxt)
                    stack.append(nxt)
        if roots:
            for node in self.spec.nodes:
                if node.id not in reached and node.id not in cyclic and node.id in self.nodes:
                    self.add(
                        "unreachable",
                        f"node {node.id!r} cannot be reached from the trigger; "
                        "connect it or delete it",
                        node.id,
                        "edges",
                    )
        return None if cyclic else order
