"""The retrieval gateway AI nodes use: a workspace's knowledge bases, searched hybrid."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, Field
from sqlalchemy import select

from socialflow.core.errors import NotFoundError, UserError
from socialflow.core.logging import get_logger
from socialflow.knowledge._calibration import refusal_threshold
from socialflow.knowledge._models import KnowledgeBase
from socialflow.knowledge._store import KnowledgeStore, MetadataFilter, open_store

if TYPE_CHECKING:
    from socialflow.core.db import Database
    from socialflow.core.settings import Settings

__all__ = ["RetrievedChunk", "StoreCache", "WorkspaceRetriever"]

_log = get_logger(__name__)
_MAX_QUERY_CHARS = 4000
_MEMO_SIZE = 64


class RetrievedChunk(BaseModel):
    """One chunk found for a query."""

    id: str = Field(description="Chunk id, ``{document sha256}#{n}``.")
    text: str = Field(description="The chunk's text.")
    score: float = Field(description="Cosine similarity to the query (higher is closer).")
    source: str | None = Field(default=None, description="File the chunk comes from.")
    title: str | None = Field(
        default=None,
        description="Its document's title (first heading or line, else the file name).",
    )
    section: str | None = Field(
        default=None, description="The headings it sits under, joined with ' > '."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Chunk metadata.")


class _QueryMemo(Embeddings):
    """Forwards to a base's embedder, remembering recent query vectors.

    A retrieval runs a hybrid search and a dense search for the same query; this embeds the
    query once. Model name and dimension are forwarded, so the store's checks still apply.
    """

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self.provider = getattr(inner, "provider", None)
        self.model_name = getattr(inner, "model_name", None) or getattr(inner, "model", None)
        self._memo: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int | None:
        value = getattr(self.inner, "dimension", None)
        return value if isinstance(value, int) else None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            vector = self._memo.get(text)
        if vector is None:
            vector = self.inner.embed_query(text)
            with self._lock:
                self._memo[text] = vector
                while len(self._memo) > _MEMO_SIZE:
                    self._memo.popitem(last=False)
        return vector


class StoreCache:
    """Open stores by knowledge base, kept per process (the embedded store keeps its vectors
    in memory, so reopening it per query would reload them).

    Args:
        size: How many stores stay open; the least recently used one is closed beyond that.
    """

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._stores: OrderedDict[tuple[Any, ...], KnowledgeStore] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> KnowledgeStore | None:
        """The store opened under ``key``, if still open."""
        store = self._stores.get(key)
        if store is not None:
            self._stores.move_to_end(key)
        return store

    def put(self, key: tuple[Any, ...], store: KnowledgeStore) -> KnowledgeStore:
        """Keep ``store``; the store already kept under ``key`` wins a race."""
        kept = self._stores.setdefault(key, store)
        if kept is not store:
            _close(store)
        while len(self._stores) > self.size:
            _, evicted = self._stores.popitem(last=False)
            _close(evicted)
        return kept

    def close(self) -> None:
        """Close every kept store."""
        while self._stores:
            _close(self._stores.popitem()[1])


def _close(store: KnowledgeStore) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        close()


def _search(
    store: KnowledgeStore,
    query: str,
    k: int,
    threshold: float,
    filter: MetadataFilter | None,
) -> list[RetrievedChunk]:
    candidates = max(store.hybrid_candidates, k)
    fused = store.hybrid_search(query, k=candidates, filter=filter)
    if not fused:
        return []
    # the fused order ranks, the cosine similarity decides what is relevant at all
    cosine = {
        doc.id: score
        for doc, score in store.similarity_search_with_score(query, k=candidates, filter=filter)
    }
    found: list[RetrievedChunk] = []
    for doc, _fused in fused:
        score = cosine.get(doc.id)
        if score is None and threshold > 0:
            continue  # a keyword-only match, less similar than every dense candidate
        score = 0.0 if score is None else float(score)
        if score < threshold:
            continue
        metadata = dict(doc.metadata)
        source = metadata.get("filename") or metadata.get("source")
        title, section = metadata.get("title"), metadata.get("section")
        found.append(
            RetrievedChunk(
                id=str(doc.id),
                text=doc.page_content,
                score=round(score, 6),
                source=str(source) if source else None,
                title=str(title) if title else None,
                section=str(section) if section else None,
                metadata=metadata,
            )
        )
        if len(found) == k:
            break
    return found


class WorkspaceRetriever:
    """Searches the knowledge bases of one workspace (what ``ctx.retriever`` is in runs).

    Args:
        db: The application database (knowledge base rows and their credentials).
        settings: Vector store and embedder settings.
        workspace_id: The run's workspace; a base of any other workspace is not found.
        stores: Open stores shared by the process; a private cache when None.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        workspace_id: uuid.UUID | None,
        *,
        stores: StoreCache | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._workspace_id = workspace_id
        self._stores = stores if stores is not None else StoreCache()

    async def retrieve(
        self,
        knowledge_base_id: uuid.UUID,
        query: str,
        *,
        k: int = 4,
        score_threshold: float = 0.0,
        filter: Mapping[str, str | int | float | bool] | None = None,
    ) -> list[RetrievedChunk]:
        """The chunks of a knowledge base most relevant to ``query``.

        Ranking is hybrid (dense + BM25, fused by the base's fusion); chunks whose cosine
        similarity to the query is below ``score_threshold`` are left out.

        Args:
            knowledge_base_id: A knowledge base of this workspace.
            query: The question.
            k: At most this many chunks.
            score_threshold: Minimum cosine similarity, 0 to 1.
            filter: Metadata fields that must equal the given values (``filename``, …).

        Returns:
            Up to ``k`` chunks, best first; empty when nothing is relevant enough.

        Raises:
            NotFoundError: No such knowledge base in this workspace.
            UserError: Empty query, a run outside any workspace, or an embedder mismatch.
            TransientError: A remote embedder or vector store is unavailable.
        """
        query = query.strip()
        if not query:
            msg = "the retrieval query is empty; give the node a query (templates allowed)"
            raise UserError(msg, code="empty_query", details={"field": "query"})
        if len(query) > _MAX_QUERY_CHARS:
            query = query[:_MAX_QUERY_CHARS]
        store = await self._store(knowledge_base_id)
        chunks = await asyncio.to_thread(
            _search, store, query, k, score_threshold, dict(filter) if filter else None
        )
        _log.debug(
            "knowledge retrieved",
            knowledge_base_id=str(knowledge_base_id),
            found=len(chunks),
            k=k,
        )
        return chunks

    async def refusal_threshold(self, knowledge_base_id: uuid.UUID) -> float:
        """The cosine similarity below which nothing of this base answers a question: the
        calibrated threshold of the base's embedder (``refusal_threshold``).

        Raises:
            NotFoundError: No such knowledge base in this workspace.
        """
        base, _ = await self._base(knowledge_base_id)
        return refusal_threshold(base.embedder_provider, base.embedder_model)

    async def _base(self, knowledge_base_id: uuid.UUID) -> tuple[KnowledgeBase, datetime | None]:
        """The base of this workspace, and when its credential last changed."""
        from socialflow.core.credentials import Credential

        if self._workspace_id is None:
            msg = "knowledge bases belong to a workspace; this run has none"
            raise UserError(msg, code="knowledge_base_unavailable")
        async with self._db.sessionmaker() as session:
            base = await session.get(KnowledgeBase, knowledge_base_id)
            if base is None or base.workspace_id != self._workspace_id:
                msg = (
                    f"knowledge base {str(knowledge_base_id)!r} does not exist in this "
                    "workspace; choose one of the workspace's knowledge bases"
                )
                raise NotFoundError(
                    msg, details={"field": "knowledge_base_id", "id": str(knowledge_base_id)}
                )
            stamp: datetime | None = None
            if base.credential_id is not None:
                stamp = await session.scalar(
                    select(Credential.updated_at).where(Credential.id == base.credential_id)
                )
            session.expunge(base)
        return base, stamp

    async def _store(self, knowledge_base_id: uuid.UUID) -> KnowledgeStore:
        base, stamp = await self._base(knowledge_base_id)
        # a rotated credential or re-created base gets a fresh embedder
        key = (
            base.id,
            base.embedder_provider,
            base.embedder_model,
            base.credential_id,
            stamp,
            base.hybrid_dense_weight,
        )
        store = self._stores.get(key)
        if store is not None:
            return store
        from socialflow.knowledge._ingest import embeddings_for_base

        embeddings = await embeddings_for_base(self._settings, self._db, base)
        store = open_store(
            self._settings,
            namespace=str(base.id),
            embeddings=_QueryMemo(embeddings),
            dense_weight=base.hybrid_dense_weight,
        )
        return self._stores.put(key, store)
