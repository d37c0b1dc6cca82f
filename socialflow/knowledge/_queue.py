"""The ingestion queue: workers claim pending documents and run the ingestion flow in-process.

An upload only writes a ``document`` row in status ``pending``; the row is the queue. A worker
claims rows through ``socialflow.core.lease`` (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
workers never wait on each other; the write lock first on SQLite), stamps ``claimed_at`` and
renews it while the flow runs. A worker that dies stops renewing; once the claim is older than
the lease, another worker takes the document again, at most ``max_attempts`` times. Nothing is
lost on restart: pending rows wait in the database.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from socialflow.core.errors import TransientError
from socialflow.core.lease import Held, Leases, LeaseTable
from socialflow.core.logging import get_logger
from socialflow.knowledge._ingest import IngestContext, ingest_document, set_ingest_context
from socialflow.knowledge._models import Document, DocumentStatus

__all__ = ["IngestWorker"]

_log = get_logger(__name__)

#: where ``document`` keeps its claims: ``claimed_at`` is the last renewal (the ingestion
#: flow stamps it too after each batch of chunks)
DOCUMENT_LEASES = LeaseTable(
    model=Document,
    id=Document.id,
    status=Document.status,
    attempts=Document.attempts,
    stamp=Document.claimed_at,
    waiting=DocumentStatus.PENDING,
    held=DocumentStatus.PROCESSING,
    exhausted=DocumentStatus.FAILED,
    stamp_is_expiry=False,
)


class IngestWorker:
    """Claims pending documents and ingests them, ``concurrency`` at a time.

    Args:
        context: Settings, database, storage and embedders; installed as the process's
            ingestion context.
        concurrency: Documents ingested at once (embedding is CPU-bound: keep it small).
        lease_seconds: A claim not renewed for this long is taken over by another worker.
        poll_interval: Seconds between looks for new documents.
        max_attempts: Claims of one document before it is marked failed.
    """

    def __init__(
        self,
        context: IngestContext,
        *,
        concurrency: int = 1,
        lease_seconds: float = 120.0,
        poll_interval: float = 1.0,
        max_attempts: int = 3,
    ) -> None:
        self.context = context
        self.db = context.db
        self.concurrency = concurrency
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.leases = Leases(DOCUMENT_LEASES, duration=self.lease, max_attempts=max_attempts)
        self.ingested = 0
        self._inflight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._held: dict[uuid.UUID, Held] = {}
        self._wake = asyncio.Event()
        set_ingest_context(context)

    def poke(self) -> None:
        """Look for pending documents now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set, then let ingestions in progress finish."""
        renewal = asyncio.create_task(self._renew(stop), name="ingest-lease-renewal")
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._inflight)
                claimed = await self._claim_safely(free) if free > 0 else []
                for document_id in claimed:
                    task = asyncio.create_task(self._run_one(document_id))
                    self._inflight[document_id] = task
                if claimed and len(self._inflight) < self.concurrency:
                    continue
                self._wake.clear()
                waiters = [
                    asyncio.ensure_future(stop.wait()),
                    asyncio.ensure_future(self._wake.wait()),
                ]
                await asyncio.wait(
                    waiters, timeout=self.poll_interval, return_when="FIRST_COMPLETED"
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight.values(), return_exceptions=True)
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)

    async def drain(self) -> int:
        """Ingest every document pending now, one batch after another; for tests and the CLI.

        Returns:
            How many documents were ingested (ready or failed).
        """
        count = 0
        while claimed := await self.claim(self.concurrency):
            await asyncio.gather(*(self._run_one(document_id) for document_id in claimed))
            count += len(claimed)
        return count

    async def _claim_safely(self, limit: int) -> list[uuid.UUID]:
        try:
            return await self.claim(limit)
        except Exception:
            _log.exception("claiming documents failed")
            return []

    async def claim(self, limit: int) -> list[uuid.UUID]:
        """Claim up to ``limit`` documents: pending ones, or processing ones whose claim lapsed.

        Returns:
            The ids claimed; each is now ``processing`` with a fresh ``claimed_at``.
        """
        async with self.db.sessionmaker() as session:
            result = await self.leases.claim(
                session,
                limit=limit,
                order_by=[Document.created_at],
                exhausted_values=lambda attempts: {
                    "error": f"gave up after {attempts} attempts: each worker stopped mid-way",
                    "claimed_at": None,
                },
            )
            await session.commit()
        for held, _row in result.claimed:
            self._held[held.id] = held
        return [held.id for held, _row in result.claimed]

    async def _run_one(self, document_id: uuid.UUID) -> None:
        try:
            await ingest_document(str(document_id))
            self.ingested += 1
        except TransientError as exc:
            # back to the queue; the attempt was counted when it was claimed
            _log.warning(
                "ingestion will be retried", document_id=str(document_id), error=exc.message
            )
            await self._release(document_id, DocumentStatus.PENDING, exc.message)
        except Exception as exc:
            _log.exception("ingestion crashed", document_id=str(document_id))
            await self._release(
                document_id,
                DocumentStatus.FAILED,
                f"ingestion crashed: {type(exc).__name__}: {exc}",
            )
        finally:
            self._inflight.pop(document_id, None)
            self._held.pop(document_id, None)
            self._wake.set()

    async def _release(self, document_id: uuid.UUID, status: DocumentStatus, error: str) -> None:
        """End this worker's claim with ``status``, unless another claim took it meanwhile."""
        held = self._held.get(document_id)
        if held is None:
            return
        async with self.db.sessionmaker() as session:
            await self.leases.end(
                session, held, {"status": status, "error": error, "claimed_at": None}
            )
            await session.commit()

    async def _renew(self, stop: asyncio.Event) -> None:
        interval = self.lease.total_seconds() / 3
        while not stop.is_set():
            await asyncio.sleep(interval)
            held = [self._held[i] for i in list(self._inflight) if i in self._held]
            if not held:
                continue
            try:
                async with self.db.sessionmaker() as session:
                    await self.leases.renew(session, held)
                    await session.commit()
            except Exception:
                _log.exception("renewing document claims failed")
