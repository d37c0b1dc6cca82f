"""Group commit for the inbox: the events of requests that arrive together are stored by one
statement, and every request waits for the commit that holds its rows.

The webhook routes call ``InboxWriter.store``. A call joins a queue; up to ``connections``
flushes run at once, each taking everything queued (up to ``max_batch`` events) and storing it
in one transaction. An idle writer flushes a lone request at once, so grouping adds no delay;
under load the queue fills while the flushes run, and each commit carries many requests.

Guarantees, the same as ``store_events`` one request at a time:

- ``store`` returns only after the commit that holds its events: an answered event is durable.
- A failed commit fails the calls whose events it held, and no others. When the database refuses
  one call's data (a ``DataError`` or ``IntegrityError``), each call of that group is retried
  alone, so only the call whose data was refused fails.
- ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``: a redelivered event is reported as a
  duplicate, also when two calls of one group carry the same key.

On PostgreSQL a flush is one prepared statement in autocommit on a connection of the writer's
own (one round trip: the rows travel as arrays and ``unnest`` them; the NOTIFY that wakes
dispatchers is part of the statement). On SQLite a flush is ``store_events`` in one session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from socialflow.core.db import Database, utcnow
from socialflow.core.logging import get_logger
from socialflow.orchestration._inbox import INBOX_CHANNEL, EventIn, StoredEvent, store_events

if TYPE_CHECKING:
    import psycopg

__all__ = ["InboxWriter"]

_log = get_logger(__name__)

_COLUMNS = (
    "id, source, kind, dedupe_key, workspace_id, flow_id, account_id, payload, raw_body, "
    "headers, status, attempts, received_at, next_attempt_at, conversation_key, "
    "conversation_at, conversation_seq"
)
# one text for every batch size, so the server plans it once per connection (prepared)
_INSERT = f"""
WITH ins AS (
    INSERT INTO webhook_event ({_COLUMNS})
    SELECT r.id, r.source, r.kind, r.dedupe_key, r.workspace_id, r.flow_id, r.account_id,
           r.payload::jsonb, r.raw_body, r.headers::jsonb, r.status, 0, %(now)s, %(now)s,
           r.conversation_key, r.conversation_at, r.conversation_seq
    FROM unnest(
        %(id)s::uuid[], %(source)s::text[], %(kind)s::text[], %(dedupe_key)s::text[],
        %(workspace_id)s::uuid[], %(flow_id)s::uuid[], %(account_id)s::text[],
        %(payload)s::text[], %(raw_body)s::bytea[], %(headers)s::text[], %(status)s::text[],
        %(conversation_key)s::text[], %(conversation_at)s::timestamptz[],
        %(conversation_seq)s::int[]
    ) AS r(id, source, kind, dedupe_key, workspace_id, flow_id, account_id, payload, raw_body,
           headers, status, conversation_key, conversation_at, conversation_seq)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id, dedupe_key
)
SELECT id, dedupe_key, pg_notify('{INBOX_CHANNEL}', '') FROM ins
"""
_EXISTING = "SELECT id, dedupe_key FROM webhook_event WHERE dedupe_key = ANY(%(keys)s::text[])"


@dataclass
class _Call:
    events: list[EventIn]
    future: asyncio.Future[list[StoredEvent]]


class InboxWriter:
    """Stores inbox events of concurrent callers in shared commits (see the module docstring).

    Args:
        db: The application database.
        connections: Flushes that may run at once; on PostgreSQL each holds a connection of
            its own, opened when first needed (SQLite has one writer at a time: always 1).
        max_batch: Most events one statement stores.
    """

    def __init__(self, db: Database, *, connections: int = 2, max_batch: int = 500) -> None:
        self.db = db
        self.connections = 1 if db.is_sqlite else connections
        self.max_batch = max_batch
        #: events per commit, newest last (a short history, for tests and metrics)
        self.batch_sizes: deque[int] = deque(maxlen=1000)
        self._queue: deque[_Call] = deque()
        self._started = False
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._dsn = (
            db.url.replace("postgresql+psycopg://", "postgresql://", 1)
            if not db.is_sqlite
            else None
        )

    async def store(self, events: list[EventIn]) -> list[StoredEvent]:
        """Store ``events`` durably; return one result per event, in order.

        Returns after the commit that holds them. A cancelled caller does not cancel the
        commit its events are part of.

        Raises:
            Exception: Whatever failed the commit that held these events.
        """
        if not events:
            return []
        call = _Call(list(events), asyncio.get_running_loop().create_future())
        self._queue.append(call)
        if self._running < self.connections:
            self._running += 1
            task = asyncio.create_task(self._drain(), name="inbox-group-commit")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(call.future)

    def start(self) -> None:
        """Keep connections open between flushes (the app's lifespan calls it and ``close``).
        Until then each flush opens and closes one, so a writer nobody closes leaks none."""
        self._started = True

    async def close(self) -> None:
        """Finish the flushes under way and close the writer's connections."""
        self._started = False
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        while self._idle:
            conn = self._idle.pop()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _drain(self) -> None:
        try:
            while self._queue:
                group = [self._queue.popleft()]
                size = len(group[0].events)
                while self._queue and size + len(self._queue[0].events) <= self.max_batch:
                    call = self._queue.popleft()
                    group.append(call)
                    size += len(call.events)
                await self._commit(group)
        finally:
            self._running -= 1

    async def _commit(self, group: list[_Call]) -> None:
        try:
            results = await self._write([e for call in group for e in call.events])
        except Exception as exc:
            if len(group) > 1 and _refused_data(exc):
                # one caller's data was refused: each call on its own, so only that one fails
                for call in group:
                    await self._commit([call])
                return
            _log.warning("inbox commit failed", calls=len(group), error=repr(exc))
            for call in group:
                if not call.future.done():
                    call.future.set_exception(exc)
            return
        self.batch_sizes.append(len(results))
        start = 0
        for call in group:
            end = start + len(call.events)
            if not call.future.done():
                call.future.set_result(results[start:end])
            start = end

    async def _write(self, events: list[EventIn]) -> list[StoredEvent]:
        if self._dsn is None:
            async with self.db.sessionmaker() as session:
                return await store_events(session, events)
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            results = await _insert(conn, events)
        except BaseException:
            # a connection in an unknown state is not reused
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        if self._started:
            self._idle.append(conn)
        else:
            await conn.close()
        return results

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        import psycopg

        assert self._dsn is not None
        return await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)


def _refused_data(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)


async def _insert(conn: psycopg.AsyncConnection[Any], events: list[EventIn]) -> list[StoredEvent]:
    """One statement for the whole group; the first of several events with one key wins."""
    first: dict[str, int] = {}
    for i, event in enumerate(events):
        first.setdefault(event.dedupe_key, i)
    unique = [events[i] for i in sorted(first.values())]
    ids = [uuid.uuid4() for _ in unique]
    params: dict[str, Any] = {
        "now": utcnow(),
        "id": ids,
        "source": [e.source for e in unique],
        "kind": [e.kind for e in unique],
        "dedupe_key": [e.dedupe_key for e in unique],
        "workspace_id": [e.workspace_id for e in unique],
        "flow_id": [e.flow_id for e in unique],
        "account_id": [e.account_id for e in unique],
        "payload": [json.dumps(e.payload) for e in unique],
        "raw_body": [e.raw_body for e in unique],
        "headers": [json.dumps(e.headers) for e in unique],
        "status": [str(e.status) for e in unique],
        "conversation_key": [e.conversation_key for e in unique],
        "conversation_at": [e.conversation_at for e in unique],
        "conversation_seq": [e.conversation_seq for e in unique],
    }
    cursor = await conn.execute(_INSERT, params, prepare=True)
    stored = {key: row_id for row_id, key, _ in await cursor.fetchall()}
    known: dict[str, uuid.UUID] = {}
    missing = [e.dedupe_key for e in unique if e.dedupe_key not in stored]
    if missing:
        cursor = await conn.execute(_EXISTING, {"keys": missing}, prepare=True)
        known = {key: row_id for row_id, key in await cursor.fetchall()}
    results: list[StoredEvent] = []
    for i, event in enumerate(events):
        key = event.dedupe_key
        if first[key] == i and key in stored:
            results.append(StoredEvent(id=stored[key], duplicate=False))
        else:
            row_id = stored.get(key) or known.get(key) or uuid.uuid4()
            results.append(StoredEvent(id=row_id, duplicate=True))
    return results
