"""Prometheus metric definitions shared by the API and worker processes.

Counters and the node histogram count what the process exposing them sees (the API process
its webhooks, a worker its node runs and Graph API calls). Gauges of shared state (queue
depths, dispatch lag, runs by status) are read from the database at scrape time by the
collectors in ``socialflow.api.metrics``. Each process keeps its own registry values; nothing
is shared between processes (no multiprocess mode).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

__all__ = [
    "EVENTS_DEDUPLICATED",
    "EVENTS_RECEIVED",
    "GRAPH_API_CALLS",
    "GRAPH_API_ERRORS",
    "NODE_DURATION",
    "REGISTRY",
    "CollectorRegistry",
    "observe_node",
]

EVENTS_RECEIVED = Counter(
    "socialflow_events_received",
    "Trigger events received by webhook receivers, duplicates included.",
    ["source"],
)
EVENTS_DEDUPLICATED = Counter(
    "socialflow_events_deduplicated",
    "Received trigger events acknowledged as duplicates of a stored event.",
    ["source"],
)
NODE_DURATION = Histogram(
    "socialflow_node_duration_seconds",
    "Wall time of finished node runs, by node kind and final status.",
    ["kind", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
GRAPH_API_CALLS = Counter(
    "socialflow_graph_api_calls",
    "Instagram Graph API requests sent (each retry counts).",
    ["method"],
)
GRAPH_API_ERRORS = Counter(
    "socialflow_graph_api_errors",
    "Instagram Graph API requests that failed, by Meta error code ('transport' when no answer).",
    ["code"],
)


def observe_node(kind: str, status: str, seconds: float | None) -> None:
    """Record one finished node run in the duration histogram (no-op without a duration).

    Args:
        kind: The node kind, e.g. ``instagram.reply_comment``.
        status: The node run's final status.
        seconds: How long it ran.
    """
    if seconds is not None and seconds >= 0:
        NODE_DURATION.labels(kind=kind, status=status).observe(seconds)
