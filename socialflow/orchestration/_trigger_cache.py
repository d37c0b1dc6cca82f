"""The webhook routes' view of each flow's trigger and opened secret, kept per API process.

Reading ``flow_trigger`` and unsealing the secret costs more than the rest of a webhook call,
so a process keeps what it read. A change to a trigger (published, paused, deleted, secret
rotated) reaches every process:

- at once in the process that committed it (``after_commit`` of the session that changed it);
- within milliseconds elsewhere on PostgreSQL: the change sends ``NOTIFY socialflow_trigger``
  with the flow id, delivered at its commit, and each process LISTENs;
- and never later than ``ttl`` seconds (default ``TRIGGER_TTL_SECONDS``, 2 s) after the commit,
  whatever happened to the notification: an entry is never used once it is that old. That is
  the bound on how long a rotated secret or a paused flow can still be accepted.

A read that started before an eviction is not kept (a generation counter), so a stale row read
just before the change cannot outlive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from socialflow.core.db import Database
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.orchestration._inbox_models import FlowTrigger

__all__ = ["TRIGGER_CHANNEL", "TRIGGER_TTL_SECONDS", "CachedTrigger", "TriggerCache", "changed"]

_log = get_logger(__name__)

TRIGGER_CHANNEL = "socialflow_trigger"
#: the longest a process keeps a trigger: the bound on honouring a change without NOTIFY
TRIGGER_TTL_SECONDS = 2.0
_MAX_ENTRIES = 10_000
_CHANGED = "socialflow_changed_triggers"
_caches: weakref.WeakSet[TriggerCache] = weakref.WeakSet()


@dataclass(frozen=True)
class CachedTrigger:
    """What the webhook routes need of a flow's trigger."""

    flow_id: uuid.UUID
    workspace_id: uuid.UUID
    trigger_kind: str
    trigger_config: dict[str, Any]
    active: bool
    #: opens the trigger's secret; only the routes that check a signature with it call it
    opener: Callable[[], str | None] = field(default=lambda: None, repr=False, compare=False)

    @cached_property
    def secret(self) -> str | None:
        """The trigger's secret, opened on first use (an Instagram trigger never needs it)."""
        return self.opener()


@dataclass(frozen=True)
class _Entry:
    trigger: CachedTrigger | None
    expires: float


def changed(session: Any, flow_id: uuid.UUID) -> None:
    """Note that ``flow_id``'s trigger changed; this process forgets it when ``session``
    commits (other processes hear it through NOTIFY)."""
    session.info.setdefault(_CHANGED, set()).add(flow_id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    flows = session.info.pop(_CHANGED, None)
    if flows:
        for cache in list(_caches):
            for flow_id in flows:
                cache.evict(flow_id)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


class TriggerCache:
    """Triggers and opened secrets by flow id, for at most ``ttl`` seconds.

    Args:
        db: The application database.
        settings: Settings (the master key opens the secrets).
        ttl: Seconds an entry may be used; the bound on honouring a change.
        listen: LISTEN for changes on PostgreSQL (off only to test the bound alone).
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        ttl: float = TRIGGER_TTL_SECONDS,
        listen: bool = True,
    ) -> None:
        self.db = db
        self.settings = settings
        self.ttl = ttl
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._generation = 0
        self._dsn = (
            db.url.replace("postgresql+psycopg://", "postgresql://", 1)
            if listen and not db.is_sqlite
            else None
        )
        self._listener: asyncio.Task[None] | None = None
        _caches.add(self)

    async def get(self, flow_id: uuid.UUID) -> CachedTrigger | None:
        """The flow's trigger (active or not), or None when the flow has none."""
        now = time.monotonic()
        entry = self._entries.get(flow_id)
        if entry is not None and entry.expires > now:
            return entry.trigger
        generation = self._generation
        trigger = await self._load(flow_id)
        if generation == self._generation:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[flow_id] = _Entry(trigger, now + self.ttl)
        return trigger

    def evict(self, flow_id: uuid.UUID | None = None) -> None:
        """Forget one flow's trigger, or all of them."""
        self._generation += 1
        if flow_id is None:
            self._entries.clear()
        else:
            self._entries.pop(flow_id, None)

    async def start(self) -> None:
        """LISTEN for changes made by other processes (PostgreSQL; the app's lifespan calls
        it). Without it, changes elsewhere are honoured by age alone (``ttl``)."""
        if self._dsn is not None and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="trigger-cache-listen")

    async def close(self) -> None:
        """Stop listening."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _load(self, flow_id: uuid.UUID) -> CachedTrigger | None:
        from socialflow.orchestration._triggers import open_trigger_secret

        async with self.db.sessionmaker() as session:
            row = await session.get(FlowTrigger, flow_id)
        if row is None:
            return None
        opener: Callable[[], str | None] = (
            functools.partial(open_trigger_secret, row, self.settings)
            if row.secret_ciphertext is not None
            else lambda: None
        )
        return CachedTrigger(
            flow_id=row.flow_id,
            workspace_id=row.workspace_id,
            trigger_kind=row.trigger_kind,
            trigger_config=dict(row.trigger_config),
            active=row.active,
            opener=opener,
        )

    async def _listen(self) -> None:
        import psycopg

        assert self._dsn is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._dsn, autocommit=True
                ) as conn:
                    await conn.execute(f'LISTEN "{TRIGGER_CHANNEL}"')
                    self.evict()  # whatever changed while nobody listened
                    async for note in conn.notifies():
                        try:
                            self.evict(uuid.UUID(note.payload))
                        except ValueError:
                            self.evict()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _log.warning("trigger listener lost; entries expire by age", error=repr(exc))
                self.evict()
                await asyncio.sleep(1)
