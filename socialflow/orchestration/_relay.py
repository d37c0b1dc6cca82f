"""Live run updates across processes: workers relay their hub's events through the database.

A worker's ``UpdateRelay`` taps its hub and appends the events of its runs, in batches every
``flush_interval``, to ``execution_update`` (with a NOTIFY on PostgreSQL). Each API process runs
an ``UpdateFeed`` that reads the rows it has not seen (woken by the NOTIFY, or polling on
SQLite) and publishes them into its own hub, where the WebSocket subscribers are. Rows carry the
writing process's origin, so a process never re-publishes its own events. The table is a
short-lived carrier, not a record: rows older than ``keep`` are deleted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text

from socialflow.core.db import Database, utcnow
from socialflow.core.logging import get_logger
from socialflow.orchestration._events import (
    ExecutionEvent,
    ExecutionEvents,
    ExecutionUpdate,
    NodeEvent,
)
from socialflow.orchestration._models import ExecutionUpdateBatch
from socialflow.orchestration._wakeup import Wakeup

__all__ = ["UPDATES_CHANNEL", "UpdateFeed", "UpdateRelay", "decode_event", "encode_event"]

UPDATES_CHANNEL = "socialflow_updates"
_LOOK_BACK = 200
_log = get_logger(__name__)
_UUID_FIELDS = frozenset(
    {
        "workspace_id",
        "execution_id",
        "flow_id",
        "flow_version_id",
        "prefect_flow_run_id",
        "prefect_task_run_id",
    }
)
_TIME_FIELDS = frozenset({"started_at", "finished_at"})


def encode_event(event: ExecutionUpdate) -> dict[str, Any]:
    """An update as JSON-ready fields (ids and times as text)."""
    out: dict[str, Any] = {}
    for item in dataclasses.fields(event):
        value = getattr(event, item.name)
        if isinstance(value, uuid.UUID | datetime):
            value = str(value) if isinstance(value, uuid.UUID) else value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        out[item.name] = value
    return out


def decode_event(data: dict[str, Any]) -> ExecutionUpdate:
    """The update ``encode_event`` wrote."""
    fields = dict(data)
    for name in _UUID_FIELDS & fields.keys():
        if fields[name] is not None:
            fields[name] = uuid.UUID(fields[name])
    for name in _TIME_FIELDS & fields.keys():
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    if fields.get("type") == "node":
        if fields.get("fired_ports") is not None:
            fields["fired_ports"] = tuple(fields["fired_ports"])
        return NodeEvent(**fields)
    return ExecutionEvent(**fields)


class UpdateRelay:
    """Writes a hub's local events to the database for other processes.

    Args:
        db: The application database.
        hub: The hub whose runs' events are relayed.
        flush_interval: Seconds between batches (a batch is one INSERT).
        keep: How long rows stay for late readers.
    """

    def __init__(
        self,
        db: Database,
        hub: ExecutionEvents,
        *,
        flush_interval: float = 0.1,
        keep: timedelta = timedelta(minutes=5),
    ) -> None:
        self.db = db
        self.hub = hub
        self.flush_interval = flush_interval
        self.keep = keep
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()  # runs may publish from other threads than the loop
        self.written = 0

    def _tap(self, event: ExecutionUpdate) -> None:
        encoded = encode_event(event)
        with self._lock:
            self._buffer.append(encoded)

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until ``stop`` is set; the last batch is written before returning."""
        self.hub.add_tap(self._tap)
        pruned_at = utcnow()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), self.flush_interval)
                except TimeoutError:
                    pass
                await self.flush()
                if utcnow() - pruned_at > self.keep / 5:
                    await self._prune()
                    pruned_at = utcnow()
        finally:
            self.hub.remove_tap(self._tap)
            await self.flush()

    async def flush(self) -> None:
        """Write what is buffered as one row; kept for the next try when the write fails."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            async with self.db.sessionmaker() as session:
                await session.execute(
                    insert(ExecutionUpdateBatch).values(
                        origin=self.hub.origin, events=batch, created_at=utcnow()
                    )
                )
                if session.get_bind().dialect.name == "postgresql":
                    await session.execute(text(f"NOTIFY {UPDATES_CHANNEL}"))
                await session.commit()
            self.written += len(batch)
        except Exception as exc:
            _log.warning("relaying run updates failed; retrying", error=repr(exc))
            with self._lock:
                self._buffer[:0] = batch

    async def _prune(self) -> None:
        try:
            async with self.db.sessionmaker() as session:
                await session.execute(
                    delete(ExecutionUpdateBatch).where(
                        ExecutionUpdateBatch.created_at < utcnow() - self.keep
                    )
                )
                await session.commit()
        except Exception as exc:
            _log.warning("pruning relayed run updates failed", error=repr(exc))


class UpdateFeed:
    """Publishes other processes' relayed events into this process's hub.

    Args:
        db: The application database.
        hub: Where the events are published (the WebSocket subscribes there).
        poll_interval: Longest wait without a NOTIFY (SQLite always polls).
    """

    def __init__(self, db: Database, hub: ExecutionEvents, *, poll_interval: float = 0.25) -> None:
        self.db = db
        self.hub = hub
        self.poll_interval = poll_interval
        self.published = 0
        self._last_id: int | None = None
        # ids are assigned at insert but become visible at commit, so a row can appear after
        # a higher id was read: each read looks back a window and skips what it has seen
        self._seen: dict[int, None] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the relay table until ``stop`` is set."""
        async with Wakeup(
            self.db.url, (UPDATES_CHANNEL,), poll_interval=self.poll_interval
        ) as wakeup:
            while not stop.is_set():
                try:
                    await self.read_once()
                except Exception as exc:
                    _log.warning("reading relayed run updates failed", error=repr(exc))
                await wakeup.wait()

    async def read_once(self) -> int:
        """Publish the rows written since the last read; the first read only sets the mark.

        Returns:
            How many events were published.
        """
        async with self.db.sessionmaker() as session:
            if self._last_id is None:
                latest = await session.scalar(select(func.max(ExecutionUpdateBatch.id)))
                self._last_id = latest or 0
                # what exists now is history, including the window later reads look back over
                earlier = await session.scalars(
                    select(ExecutionUpdateBatch.id).where(
                        ExecutionUpdateBatch.id > self._last_id - _LOOK_BACK
                    )
                )
                self._seen.update(dict.fromkeys(earlier))
                return 0
            rows = (
                await session.execute(
                    select(
                        ExecutionUpdateBatch.id,
                        ExecutionUpdateBatch.origin,
                        ExecutionUpdateBatch.events,
                    )
                    .where(ExecutionUpdateBatch.id > self._last_id - _LOOK_BACK)
                    .order_by(ExecutionUpdateBatch.id)
                    .limit(500)
                )
            ).all()
        count = 0
        for row_id, origin, events in rows:
            if row_id in self._seen:
                continue
            self._seen[row_id] = None
            self._last_id = max(self._last_id, row_id)
            if origin == self.hub.origin:
                continue
            for data in events:
                try:
                    self.hub.publish(decode_event(data), relay=False)
                    count += 1
                except (TypeError, ValueError) as exc:
                    _log.warning("skipped an unreadable relayed update", error=repr(exc))
        while len(self._seen) > 4 * _LOOK_BACK:
            del self._seen[next(iter(self._seen))]
        self.published += count
        return count
