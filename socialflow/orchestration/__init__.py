"""Turns graphs into runs: the graph spec and its validation, the Prefect runner, and the
execution records every run leaves behind."""

from socialflow.orchestration._executions import (
    ExecutionRead,
    NodeRunRead,
    get_execution,
    sync_node_types,
)
from socialflow.orchestration._graph import (
    CompiledGraph,
    EdgeSpec,
    GraphProblem,
    GraphSpec,
    NodeSettings,
    NodeSpec,
    compile_graph,
    validate_graph,
)
from socialflow.orchestration._models import (
    ExecutionStatus,
    FlowExecution,
    NodeRun,
    NodeRunStatus,
    NodeType,
)
from socialflow.orchestration._runner import RunMeta, execute_graph, flow_for, start_graph_run
from socialflow.orchestration._runtime import EngineRuntime, get_runtime, set_runtime

__all__ = [
    "CompiledGraph",
    "EdgeSpec",
    "EngineRuntime",
    "ExecutionRead",
    "ExecutionStatus",
    "FlowExecution",
    "GraphProblem",
    "GraphSpec",
    "NodeRun",
    "NodeRunRead",
    "NodeRunStatus",
    "NodeSettings",
    "NodeSpec",
    "NodeType",
    "RunMeta",
    "compile_graph",
    "execute_graph",
    "flow_for",
    "get_execution",
    "get_runtime",
    "set_runtime",
    "start_graph_run",
    "sync_node_types",
    "validate_graph",
]
