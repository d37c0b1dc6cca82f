"""Live run updates inside one process: a publish/subscribe hub keyed by workspace.

The runner publishes every node update and every execution status change (started, finished)
of the runs it executes; the API's WebSocket subscribes per workspace, optionally narrowed to
one execution. Publishing never waits: each subscriber has a bounded queue, and a subscriber
that falls that far behind is dropped and marked ``lagged`` (it reconnects and is sent the
current state again). The hub also keeps the latest state of every execution still running
here, handed to a new subscriber atomically with its subscription, so a client connecting
mid-run misses nothing that the database has not caught up with yet.

The hub lives in one process. Runs executed by a worker in another process reach it through
the database: the worker's ``UpdateRelay`` taps its hub (``add_tap``) and the API's
``UpdateFeed`` publishes the relayed events here with ``relay=False`` (see ``_relay.py``).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from socialflow.core.logging import get_logger
from socialflow.orchestration._models import ExecutionStatus
from socialflow.orchestration._recorder import NodeRunRecord

__all__ = [
    "ExecutionEvent",
    "ExecutionEvents",
    "ExecutionUpdate",
    "LiveExecution",
    "NodeEvent",
    "RunPublisher",
    "Subscription",
]

_log = get_logger(__name__)
_FINAL = frozenset(
    s.value
    for s in (
        ExecutionStatus.COMPLETED,
        ExecutionStatus.FAILED,
        ExecutionStatus.CANCELLED,
        ExecutionStatus.CRASHED,
    )
)


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A node run's new state (inputs and outputs are left out; the database has them)."""

    workspace_id: uuid.UUID
    execution_id: uuid.UUID
    flow_id: uuid.UUID | None
    node_id: str
    kind: str
    version: int
    label: str
    status: str
    attempts: int
    error: str | None
    error_code: str | None
    fired_ports: tuple[str, ...] | None
    prefect_task_run_id: uuid.UUID | None
    started_at: datetime | None
    finished_at: datetime | None
    seq: int = 0
    type: Literal["node"] = "node"


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    """An execution's new status: running when it starts, its final status when it ends."""

    workspace_id: uuid.UUID
    execution_id: uuid.UUID
    flow_id: uuid.UUID | None
    flow_version_id: uuid.UUID | None
    flow_name: str
    status: str
    sandbox: bool
    prefect_flow_run_id: uuid.UUID | None
    error: str | None
    error_node_id: str | None
    started_at: datetime | None
    finished_at: datetime | None
    type: Literal["execution"] = "execution"

    @property
    def active(self) -> bool:
        """Whether the execution is not finished yet (pending, running)."""
        return self.status not in _FINAL


ExecutionUpdate = NodeEvent | ExecutionEvent


@dataclass(frozen=True)
class LiveExecution:
    """An execution running in this process, as last published: the execution and its nodes."""

    execution: ExecutionEvent
    nodes: tuple[NodeEvent, ...]


@dataclass
class _Live:
    execution: ExecutionEvent
    nodes: dict[str, NodeEvent] = field(default_factory=dict)


class Subscription:
    """One subscriber's stream of updates; iterate it with ``async for``.

    The iteration ends when the subscription is closed or dropped for lagging (then
    ``lagged`` is true). ``snapshot`` holds the live executions at the moment of subscribing;
    every later update arrives through the iteration.
    """

    def __init__(
        self,
        hub: ExecutionEvents,
        workspace_id: uuid.UUID,
        execution_id: uuid.UUID | None,
        limit: int,
    ) -> None:
        self.workspace_id = workspace_id
        self.execution_id = execution_id
        self.lagged = False
        self.snapshot: list[LiveExecution] = []
        self._hub = hub
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        # unbounded on purpose: the bound is checked in _offer, leaving room for the end marker
        self._queue: asyncio.Queue[ExecutionUpdate | None] = asyncio.Queue()
        self._closed = False

    def wants(self, event: ExecutionUpdate) -> bool:
        """Whether ``event`` (already of this workspace) belongs to this stream."""
        return self.execution_id is None or self.execution_id == event.execution_id

    def close(self) -> None:
        """Stop the stream; safe to call more than once and from the hub."""
        if self._closed:
            return
        self._closed = True
        self._hub._remove(self)
        self._queue.put_nowait(None)

    def _deliver(self, event: ExecutionUpdate, loop: asyncio.AbstractEventLoop | None) -> None:
        if loop is self._loop:
            self._offer(event)
        else:
            try:
                self._loop.call_soon_threadsafe(self._offer, event)
            except RuntimeError:  # the subscriber's loop is closed: nobody is listening
                self._hub._remove(self)

    def _offer(self, event: ExecutionUpdate) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= self._limit:
            self.lagged = True
            _log.warning(
                "execution stream subscriber lagged; dropped",
                workspace_id=str(self.workspace_id),
                queued=self._limit,
            )
            self.close()
            return
        self._queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> ExecutionUpdate:
        event = await self._queue.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class RunPublisher:
    """Turns one run's recorder updates into events on a hub (the recorder's listeners)."""

    __slots__ = ("flow_id", "flow_name", "flow_version_id", "hub", "sandbox", "workspace_id")

    def __init__(
        self,
        hub: ExecutionEvents,
        *,
        workspace_id: uuid.UUID,
        flow_id: uuid.UUID | None,
        flow_version_id: uuid.UUID | None,
        flow_name: str,
        sandbox: bool,
    ) -> None:
        self.hub = hub
        self.workspace_id = workspace_id
        self.flow_id = flow_id
        self.flow_version_id = flow_version_id
        self.flow_name = flow_name
        self.sandbox = sandbox

    def node(self, execution_id: uuid.UUID, record: NodeRunRecord) -> None:
        """Publish a node run's new state."""
        ports = record.fired_ports
        self.hub.publish(
            NodeEvent(
                workspace_id=self.workspace_id,
                execution_id=execution_id,
                flow_id=self.flow_id,
                node_id=record.node_id,
                kind=record.kind,
                version=record.version,
                label=record.label,
                status=str(record.status),
                attempts=record.attempts,
                error=record.error,
                error_code=record.error_code,
                fired_ports=tuple(ports) if ports is not None else None,
                prefect_task_run_id=record.prefect_task_run_id,
                started_at=record.started_at,
                finished_at=record.finished_at,
                seq=record.seq,
            )
        )

    def execution(self, execution_id: uuid.UUID, fields: Mapping[str, Any]) -> None:
        """Publish an execution's new status from the recorder's execution fields."""
        self.hub.publish(
            ExecutionEvent(
                workspace_id=self.workspace_id,
                execution_id=execution_id,
                flow_id=self.flow_id,
                flow_version_id=self.flow_version_id,
                flow_name=self.flow_name,
                status=str(fields.get("status", ExecutionStatus.RUNNING)),
                sandbox=self.sandbox,
                prefect_flow_run_id=fields.get("prefect_flow_run_id"),
                error=fields.get("error"),
                error_node_id=fields.get("error_node_id"),
                started_at=fields.get("started_at"),
                finished_at=fields.get("finished_at"),
            )
        )


class ExecutionEvents:
    """The hub: runs publish, subscribers receive their workspace's updates in order.

    Args:
        queue_size: Updates a subscriber may have waiting before it is dropped as lagged.
        max_live: Running executions whose latest state is kept; the oldest is forgotten first.
    """

    def __init__(self, *, queue_size: int = 1000, max_live: int = 10_000) -> None:
        self.queue_size = queue_size
        self.max_live = max_live
        #: names this process's events when they are relayed to others
        self.origin = uuid.uuid4().hex
        self._taps: tuple[Callable[[ExecutionUpdate], None], ...] = ()
        # a run may publish from another thread than its subscribers' loop: the lock keeps
        # "subscribe and read the live state" atomic with respect to publishing
        self._lock = threading.RLock()
        self._subscribers: dict[uuid.UUID, tuple[Subscription, ...]] = {}
        self._live: dict[uuid.UUID, _Live] = {}

    def publisher(
        self,
        *,
        workspace_id: uuid.UUID,
        flow_id: uuid.UUID | None = None,
        flow_version_id: uuid.UUID | None = None,
        flow_name: str = "",
        sandbox: bool = False,
    ) -> RunPublisher:
        """The recorder listeners that publish one run's updates here."""
        return RunPublisher(
            self,
            workspace_id=workspace_id,
            flow_id=flow_id,
            flow_version_id=flow_version_id,
            flow_name=flow_name,
            sandbox=sandbox,
        )

    def add_tap(self, tap: Callable[[ExecutionUpdate], None]) -> None:
        """Also hand every event published here with ``relay=True`` to ``tap`` (which must not
        block: it runs on the publisher's thread)."""
        with self._lock:
            self._taps = (*self._taps, tap)

    def remove_tap(self, tap: Callable[[ExecutionUpdate], None]) -> None:
        """Stop handing events to ``tap``."""
        with self._lock:
            self._taps = tuple(t for t in self._taps if t is not tap)

    def publish(self, event: ExecutionUpdate, *, relay: bool = True) -> None:
        """Hand ``event`` to its workspace's subscribers without waiting for any of them.

        Args:
            event: The update.
            relay: Whether taps (the relay to other processes) see it; false for events that
                came from another process.
        """
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._remember(event)
            if relay:
                for tap in self._taps:
                    tap(event)
            for subscription in self._subscribers.get(event.workspace_id, ()):
                if subscription.wants(event):
                    subscription._deliver(event, loop)

    def subscribe(
        self, workspace_id: uuid.UUID, *, execution_id: uuid.UUID | None = None
    ) -> Subscription:
        """Start receiving a workspace's updates (one execution's, with ``execution_id``).

        Must be called on the event loop that will consume the subscription.

        Returns:
            The subscription, its ``snapshot`` set to the matching live executions.
        """
        subscription = Subscription(self, workspace_id, execution_id, self.queue_size)
        with self._lock:
            current = self._subscribers.get(workspace_id, ())
            self._subscribers[workspace_id] = (*current, subscription)
            subscription.snapshot = self.live(workspace_id, execution_id=execution_id)
        return subscription

    def live(
        self, workspace_id: uuid.UUID, *, execution_id: uuid.UUID | None = None
    ) -> list[LiveExecution]:
        """The executions of a workspace running in this process, as last published."""
        with self._lock:
            return [
                LiveExecution(entry.execution, tuple(entry.nodes.values()))
                for key, entry in self._live.items()
                if entry.execution.workspace_id == workspace_id
                and (execution_id is None or key == execution_id)
            ]

    def subscriber_count(self, workspace_id: uuid.UUID | None = None) -> int:
        """How many subscriptions are open (for one workspace, or in all)."""
        with self._lock:
            if workspace_id is not None:
                return len(self._subscribers.get(workspace_id, ()))
            return sum(len(subs) for subs in self._subscribers.values())

    def _remember(self, event: ExecutionUpdate) -> None:
        if isinstance(event, NodeEvent):
            entry = self._live.get(event.execution_id)
            if entry is not None:
                entry.nodes[event.node_id] = event
            return
        if not event.active:
            self._live.pop(event.execution_id, None)
            return
        entry = self._live.get(event.execution_id)
        if entry is not None:
            entry.execution = event
            return
        if len(self._live) >= self.max_live:
            self._live.pop(next(iter(self._live)))
        self._live[event.execution_id] = _Live(event)

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            current = self._subscribers.get(subscription.workspace_id, ())
            kept = tuple(s for s in current if s is not subscription)
            if kept:
                self._subscribers[subscription.workspace_id] = kept
            else:
                self._subscribers.pop(subscription.workspace_id, None)
