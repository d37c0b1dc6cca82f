"""Turns graphs into runs: the graph spec and its validation, the Prefect runner, the
execution records every run leaves behind, their live updates and their retention."""

from socialflow.orchestration._cancel import request_cancel
from socialflow.orchestration._deployments import ensure_work_pool
from socialflow.orchestration._dispatch import Dispatcher
from socialflow.orchestration._dispatch import explain as explain_event
from socialflow.orchestration._events import (
    ExecutionEvent,
    ExecutionEvents,
    ExecutionUpdate,
    LiveExecution,
    NodeEvent,
    Subscription,
)
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
from socialflow.orchestration._inbox import EventIn, store_events
from socialflow.orchestration._inbox_models import (
    EventOutcome,
    EventStatus,
    FlowTrigger,
    WebhookEvent,
)
from socialflow.orchestration._inbox_writer import InboxWriter
from socialflow.orchestration._models import (
    ExecutionStatus,
    FlowExecution,
    NodeRun,
    NodeRunStatus,
    NodeType,
)
from socialflow.orchestration._prefect_prune import prune_prefect_runs
from socialflow.orchestration._publishing import activate_version, deactivate_flow
from socialflow.orchestration._queue import enqueue_run
from socialflow.orchestration._recorder import prune_executions, readable_json
from socialflow.orchestration._relay import UpdateFeed, UpdateRelay
from socialflow.orchestration._runner import RunMeta, execute_graph, flow_for, start_graph_run
from socialflow.orchestration._runtime import EngineRuntime, get_runtime, set_runtime
from socialflow.orchestration._trigger_cache import (
    TRIGGER_CHANNEL,
    TRIGGER_TTL_SECONDS,
    CachedTrigger,
    TriggerCache,
)
from socialflow.orchestration._triggers import (
    open_trigger_secret,
    rotate_trigger_secret,
    save_snapshot,
    upsert_trigger,
)
from socialflow.orchestration._wait_models import ConversationWait, GlobalKeyword, WaitStatus
from socialflow.orchestration._waits import MAX_KEYWORDS, expire_due, keyword_of
from socialflow.orchestration._worker import Worker, prefect_clients

__all__ = [
    "MAX_KEYWORDS",
    "TRIGGER_CHANNEL",
    "TRIGGER_TTL_SECONDS",
    "CachedTrigger",
    "CompiledGraph",
    "ConversationWait",
    "Dispatcher",
    "EdgeSpec",
    "EngineRuntime",
    "EventIn",
    "EventOutcome",
    "EventStatus",
    "ExecutionEvent",
    "ExecutionEvents",
    "ExecutionRead",
    "ExecutionStatus",
    "ExecutionUpdate",
    "FlowExecution",
    "FlowTrigger",
    "GlobalKeyword",
    "GraphProblem",
    "GraphSpec",
    "InboxWriter",
    "LiveExecution",
    "NodeEvent",
    "NodeRun",
    "NodeRunRead",
    "NodeRunStatus",
    "NodeSettings",
    "NodeSpec",
    "NodeType",
    "RunMeta",
    "Subscription",
    "TriggerCache",
    "UpdateFeed",
    "UpdateRelay",
    "WaitStatus",
    "WebhookEvent",
    "Worker",
    "activate_version",
    "compile_graph",
    "deactivate_flow",
    "enqueue_run",
    "ensure_work_pool",
    "execute_graph",
    "expire_due",
    "explain_event",
    "flow_for",
    "get_execution",
    "get_runtime",
    "keyword_of",
    "open_trigger_secret",
    "prefect_clients",
    "prune_executions",
    "prune_prefect_runs",
    "readable_json",
    "request_cancel",
    "rotate_trigger_secret",
    "save_snapshot",
    "set_runtime",
    "start_graph_run",
    "store_events",
    "sync_node_types",
    "upsert_trigger",
    "validate_graph",
]
