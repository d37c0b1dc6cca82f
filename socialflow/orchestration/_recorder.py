"""Writes execution and node-run rows without slowing the run down.

Node updates are queued and written in batches by one background task, so a node never waits
for the database; the run awaits the last batch before it ends. ``prune_executions`` deletes
old executions with their node runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import reduce
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from socialflow.core import safejson
from socialflow.core.db import Database, rows_touched, utcnow
from socialflow.core.errors import UserError
from socialflow.core.logging import get_logger
from socialflow.core.metrics import observe_node
from socialflow.orchestration._models import FlowExecution, NodeRun

if TYPE_CHECKING:
    from socialflow.knowledge import Usage

__all__ = [
    "MAX_VALUE_DEPTH",
    "ExecutionRecorder",
    "NodeRunRecord",
    "cap_json",
    "prune_executions",
    "readable_json",
    "reported_usage",
]

_log = get_logger(__name__)
_FINAL_WRITE_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
# flow_execution column → Usage field
_USAGE_COLUMNS = {
    "llm_calls": "calls",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "total_tokens": "total_tokens",
    "cost_usd": "cost_usd",
    "unpriced_calls": "unpriced_calls",
}


#: how deep a recorded or run payload may nest: twice what the edge accepts (routes wrap a
#: body in a few levels of their own), well below the ~255 where pydantic and orjson stop
MAX_VALUE_DEPTH = 2 * safejson.MAX_DEPTH


def cap_json(value: Any, limit: int) -> tuple[Any, bool]:
    """``value`` made JSON-safe and storable, replaced by a truncated preview when larger than
    ``limit`` or nested deeper than ``MAX_VALUE_DEPTH`` (which pydantic could not send back).

    The preview of a node output keeps the node's model usage under ``usage``: the run's
    token and cost totals are summed from recorded outputs, so they survive the cap. NUL
    characters and lone surrogates (which PostgreSQL refuses) are replaced by U+FFFD: a record
    that cannot be written would stop the run's recording. Never raises.

    Returns:
        The value to store, and whether it was truncated.
    """
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (RecursionError, ValueError) as exc:  # far too deep, or a circular reference
        return _preview(value, f"cannot be written as JSON: {type(exc).__name__}", "", limit), True
    if len(text) > limit:
        return _preview(value, f"larger than {limit} characters", text, limit), True
    if text.count("[") + text.count("{") > MAX_VALUE_DEPTH and not safejson.within_depth(
        value, MAX_VALUE_DEPTH
    ):
        return _preview(value, f"nests deeper than {MAX_VALUE_DEPTH} levels", text, limit), True
    if not _needs_roundtrip(value):
        return safejson.storable(value), False
    decoded = json.loads(text)
    if "\\u0000" in text or not _encodes(text):
        decoded = safejson.storable(decoded)
    return decoded, False


def readable_json(value: Any) -> Any:
    """``value`` as the API may send it: itself, or a preview when it is too deep to send or
    holds text that cannot be encoded (rows recorded before values were capped)."""
    capped, _ = cap_json(value, 1 << 62)
    return capped


def _encodes(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _preview(value: Any, reason: str, text: str, limit: int) -> dict[str, Any]:
    preview: dict[str, Any] = {
        "truncated": True,
        "reason": reason,
        "size": len(text),
        "limit": limit,
        "preview": safejson.storable(text[: min(limit // 2, 100_000)]),
    }
    usage = reported_usage(value)
    if usage is not None:
        preview["usage"] = usage.model_dump()
    return preview


def reported_usage(output: Any) -> Usage | None:
    """The model usage a node reported in ``output`` (see ``Usage.of_output``); None if none.

    The knowledge package is imported only for outputs that mention ``usage``: only AI nodes
    produce those, and they have imported it already.
    """
    if not isinstance(output, Mapping) or not _mentions_usage(output):
        return None
    from socialflow.knowledge import Usage

    return Usage.of_output(output)


def _mentions_usage(output: Mapping[str, Any]) -> bool:
    return "usage" in output or any(
        isinstance(value, Mapping) and "usage" in value for value in output.values()
    )


def _needs_roundtrip(value: Any) -> bool:
    return not isinstance(value, str | int | float | bool | type(None))


@dataclass
class NodeRunRecord:
    """The latest known state of one node run."""

    node_id: str
    kind: str
    version: int
    label: str
    status: str
    #: place in graph order (``CompiledGraph.order``): how run details list the nodes
    seq: int = 0
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    attempts: int = 0
    input: Any = None
    output: Any = None
    input_truncated: bool = False
    output_truncated: bool = False
    fired_ports: list[str] | None = None
    error: str | None = None
    error_code: str | None = None
    prefect_task_run_id: uuid.UUID | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


Listener = Callable[[uuid.UUID, NodeRunRecord], None]
ExecutionListener = Callable[[uuid.UUID, Mapping[str, Any]], None]


class ExecutionRecorder:
    """Records one execution.

    Args:
        db: Where to write.
        execution_id: The execution's id (the row is created if it does not exist yet).
        listeners: Called with every node update, in order, for live streams.
        execution_listeners: Called with the execution's fields when it starts and, once they
            are written, when it finishes.
        flush_interval: How long updates are gathered before one batch is written.
    """

    def __init__(
        self,
        db: Database,
        execution_id: uuid.UUID,
        *,
        listeners: tuple[Listener, ...] = (),
        execution_listeners: tuple[ExecutionListener, ...] = (),
        flush_interval: float = 0.1,
        attempt: int | None = None,
    ) -> None:
        self.db = db
        self.attempt = attempt
        self.flush_interval = flush_interval
        self.execution_id = execution_id
        self.listeners = listeners
        self.execution_listeners = execution_listeners
        self._dirty: dict[str, NodeRunRecord] = {}
        self._written: set[str] = set()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._execution: dict[str, Any] = {}
        self._execution_written = False
        self._timed: set[str] = set()  # node runs whose duration is in the histogram
        self._usage: dict[str, Usage] = {}  # model usage by node, totalled on the row at the end

    def start(self, **fields: Any) -> None:
        """Queue the execution row (created, or updated when a dispatcher made it) as running,
        and start the background writer. Nothing here waits for the database."""
        self._execution = {"status": "running", "started_at": utcnow(), **fields}
        self._writer = asyncio.create_task(self._write_loop(), name=f"recorder-{self.execution_id}")
        self._wake.set()
        self._notify_execution(self._execution)

    def update_execution(self, **fields: Any) -> None:
        """Queue more fields of the execution row."""
        self._execution.update(fields)
        self._wake.set()

    def node(self, record: NodeRunRecord) -> None:
        """Queue the node's new state; it reaches the database shortly, in order."""
        snapshot = replace(record)
        self._dirty[record.node_id] = snapshot
        self._wake.set()
        usage = reported_usage(record.output)
        if usage is not None:
            self._usage[record.node_id] = usage
        if record.finished_at is not None and record.node_id not in self._timed:
            self._timed.add(record.node_id)
            started = record.started_at or record.finished_at
            observe_node(record.kind, record.status, (record.finished_at - started).total_seconds())
        for listener in self.listeners:
            try:
                listener(self.execution_id, snapshot)
            except Exception:
                _log.exception("execution listener failed", execution_id=str(self.execution_id))

    async def finish(
        self,
        status: str,
        *,
        error: str | None = None,
        error_node_id: str | None = None,
        also: Callable[[Any], Awaitable[None]] | None = None,
    ) -> None:
        """Write every queued node update, then the execution's final status.

        Args:
            status: The execution's status: a final one, or ``waiting`` (the run parks: its
                lease is released and it has no finish time yet).
            error: What went wrong, for a failed run.
            error_node_id: The node that failed.
            also: Writes of the caller's made in the same transaction as the status (the
                wait of a parking run), given the session; only when this claim still holds.
        """
        parking = status == "waiting"
        self._closing = True
        self._closed.set()
        self._wake.set()
        final: dict[str, Any] = {
            "status": status,
            "error": error,
            "error_node_id": error_node_id,
            "finished_at": None if parking else utcnow(),
            **_usage_columns(list(self._usage.values())),
        }
        if parking:
            # no lease: nothing runs it; the worker that parked it stays its last holder
            final["lease_until"] = None
        try:
            if self._writer is not None:
                await self._writer
            # the run's outcome is worth waiting for: ride out a database restart (~30 s)
            for delay in (*_FINAL_WRITE_RETRIES, None):
                try:
                    await self._flush()
                    async with self.db.session() as session:
                        written = await session.execute(
                            update(FlowExecution)
                            .where(FlowExecution.id == self.execution_id, *self._fence())
                            .values(final)
                        )
                        if also is not None and rows_touched(written):
                            await also(session)
                    if not rows_touched(written):
                        _log.warning(
                            "another worker claimed this execution; its outcome is theirs",
                            execution_id=str(self.execution_id),
                            attempt=self.attempt,
                        )
                    break
                except DBAPIError as exc:
                    lost = exc.connection_invalidated or isinstance(
                        exc, OperationalError | InterfaceError
                    )
                    if delay is None or not lost:
                        raise
                    _log.warning(
                        "recording the run's outcome failed; retrying",
                        execution_id=str(self.execution_id),
                        error=repr(exc),
                    )
                    await asyncio.sleep(delay)
        finally:
            # after the write, so a listener that reads the row back sees the final status
            self._notify_execution({**self._execution, **final})

    def abandon(self) -> None:
        """Stop writing: another worker owns the execution now."""
        self._closing = True
        self._closed.set()
        if self._writer is not None:
            self._writer.cancel()

    def _fence(self) -> list[Any]:
        """Conditions that hold only while this run's claim is the latest."""
        return [] if self.attempt is None else [FlowExecution.attempt == self.attempt]

    def _notify_execution(self, fields: Mapping[str, Any]) -> None:
        for listener in self.execution_listeners:
            try:
                listener(self.execution_id, fields)
            except Exception:
                _log.exception("execution listener failed", execution_id=str(self.execution_id))

    async def _write_loop(self) -> None:
        while not self._closing:
            await self._wake.wait()
            # coalesce: nodes finish every few milliseconds, and one write per batch costs far
            # less CPU (shared with the run on small machines) than one write per update
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), self.flush_interval)
            self._wake.clear()
            try:
                await self._flush()
            except Exception:
                # the final flush in finish() retries; a lost intermediate update is only late
                _log.exception("writing node runs failed", execution_id=str(self.execution_id))

    async def _flush(self) -> None:
        if self._execution and not self._execution_written:
            await self._write_execution()
        if not self._dirty:
            return
        batch, self._dirty = self._dirty, {}
        new = [r for r in batch.values() if r.node_id not in self._written]
        old = [r for r in batch.values() if r.node_id in self._written]
        try:
            async with self.db.session() as session:
                if not await self._still_ours(session):
                    _log.warning(
                        "another worker claimed this execution; node runs not recorded",
                        execution_id=str(self.execution_id),
                        attempt=self.attempt,
                    )
                    return  # the batch is dropped: the new owner records the run
                if new:
                    await session.execute(insert(NodeRun), [self._row(r) for r in new])
                if old:
                    await session.execute(update(NodeRun), [self._row(r) for r in old])
        except BaseException:
            for node_id, record in batch.items():  # keep what failed, unless a newer state came
                self._dirty.setdefault(node_id, record)
            raise
        self._written.update(r.node_id for r in new)

    async def _still_ours(self, session: Any) -> bool:
        """Whether this run's claim is still the execution's latest, held until the batch
        commits: on PostgreSQL a share lock on the row makes a worker re-claiming it wait, and
        that worker clears the node runs before starting, so none of ours outlives its claim."""
        if self.attempt is None:
            return True
        query = select(FlowExecution.attempt).where(FlowExecution.id == self.execution_id)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(read=True)
        current = await session.scalar(query)
        return current is None or current == self.attempt

    async def _write_execution(self) -> None:
        fields = dict(self._execution)
        async with self.db.session() as session:
            row = await session.get(FlowExecution, self.execution_id)
            if row is None:
                fields.setdefault("trigger_kind", "unknown")
                session.add(FlowExecution(id=self.execution_id, **fields))
            elif self.attempt is not None and row.attempt != self.attempt:
                _log.warning(
                    "another worker claimed this execution; not recording",
                    execution_id=str(self.execution_id),
                    attempt=self.attempt,
                )
            else:
                for name, value in fields.items():
                    setattr(row, name, value)
        self._execution_written = True

    def _row(self, record: NodeRunRecord) -> dict[str, Any]:
        row = dict(record.__dict__)
        row["execution_id"] = self.execution_id
        return row


def _usage_columns(usages: list[Usage]) -> dict[str, Any]:
    """The ``flow_execution`` usage columns of a run whose nodes reported ``usages``."""
    total = reduce(lambda a, b: a.plus(b), usages) if usages else None
    return {column: getattr(total, name) if total else 0 for column, name in _USAGE_COLUMNS.items()}


async def prune_executions(db: Database, *, older_than_days: int, batch_size: int = 500) -> int:
    """Delete executions created more than ``older_than_days`` days ago, with their node runs.

    Deletes in batches of ``batch_size`` executions, one transaction each, so neither database
    holds long locks or builds one huge transaction.

    Args:
        db: The application database.
        older_than_days: Keep executions created within this many days.
        batch_size: Executions deleted per transaction.

    Returns:
        How many executions were deleted.

    Raises:
        UserError: ``older_than_days`` or ``batch_size`` is below 1.
    """
    if older_than_days < 1 or batch_size < 1:
        msg = (
            "older_than_days and batch_size must be at least 1, "
            f"got {older_than_days} and {batch_size}"
        )
        raise UserError(msg, code="invalid_retention")
    cutoff = utcnow() - timedelta(days=older_than_days)
    deleted = 0
    while True:
        async with db.session() as session:
            ids = list(
                await session.scalars(
                    select(FlowExecution.id)
                    # a run waiting for a contact's answer is kept until its wait ends
                    .where(FlowExecution.created_at < cutoff, FlowExecution.status != "waiting")
                    .order_by(FlowExecution.created_at)
                    .limit(batch_size)
                )
            )
            if not ids:
                break
            await session.execute(delete(NodeRun).where(NodeRun.execution_id.in_(ids)))
            await session.execute(delete(FlowExecution).where(FlowExecution.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch_size:
            break
    _log.info("pruned executions", deleted=deleted, older_than_days=older_than_days)
    return deleted
