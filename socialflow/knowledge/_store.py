"""The vector-store contract every knowledge base uses, and the factory that opens one."""

from __future__ import annotations

import asyncio
import re
from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from socialflow.core.errors import UserError
from socialflow.knowledge._hybrid import HybridFusion

if TYPE_CHECKING:
    from socialflow.core.settings import Settings

__all__ = [
    "CONTEXT_FIELD",
    "EmbedderMismatchError",
    "KnowledgeStore",
    "MetadataFilter",
    "StoreInfo",
    "embedder_identity",
    "indexed_text",
    "open_store",
]

MetadataFilter = dict[str, str | int | float | bool]
_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_FILTER_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: the metadata field holding what a chunk alone would lose (its document's title, its
#: heading path): embedded and indexed for BM25 in front of the text, never shown as the text
CONTEXT_FIELD = "context"


def indexed_text(text: str, metadata: Mapping[str, Any] | None) -> str:
    """What is embedded and indexed for a chunk: its ``context`` metadata, a blank line, then
    its text; the text alone when it has no context (chunks stored before there was one)."""
    context = (metadata or {}).get(CONTEXT_FIELD)
    if isinstance(context, str) and context.strip():
        return f"{context.strip()}\n\n{text}"
    return text


@dataclass(frozen=True)
class StoreInfo:
    """What a namespace holds: the embedder recorded at first insert and the chunk count."""

    model_name: str | None
    dimension: int | None
    count: int


class EmbedderMismatchError(UserError):
    """A namespace was built with one embedder and is used with another."""

    code = "embedder_mismatch"

    def __init__(
        self, namespace: str, *, recorded: tuple[str, int], given: tuple[str, int]
    ) -> None:
        message = (
            f"knowledge base {namespace!r} was embedded with {recorded[0]!r} "
            f"({recorded[1]} dimensions), but this embedder is {given[0]!r} "
            f"({given[1]} dimensions); use the base's recorded embedder, or re-ingest the "
            "documents into a new knowledge base"
        )
        super().__init__(
            message,
            details={
                "namespace": namespace,
                "recorded_model": recorded[0],
                "recorded_dimension": recorded[1],
                "model": given[0],
                "dimension": given[1],
            },
        )


def embedder_identity(embeddings: Embeddings) -> tuple[str, int]:
    """``(model_name, dimension)`` of an embedder; one probe call when it does not say."""
    name = getattr(embeddings, "model_name", None) or getattr(embeddings, "model", None)
    dimension = getattr(embeddings, "dimension", None)
    if not isinstance(dimension, int):
        dimension = len(embeddings.embed_query("dimension probe"))
    return str(name or type(embeddings).__name__), dimension


def validate_filter(filter: MetadataFilter | None) -> MetadataFilter | None:
    """Check a metadata filter: field names of letters, digits, ``_`` or ``-``; scalar values."""
    if not filter:
        return None
    for key, value in filter.items():
        if not isinstance(key, str) or not _FILTER_KEY.match(key):
            msg = f"metadata filter field {key!r} is invalid: use 1-64 letters, digits, _ or -"
            raise UserError(msg, code="invalid_filter", details={"field": key})
        if not isinstance(value, str | int | float | bool):
            msg = (
                f"metadata filter field {key!r} must equal a string, number or boolean, "
                f"not {type(value).__name__}"
            )
            raise UserError(msg, code="invalid_filter", details={"field": key})
    return filter


class KnowledgeStore(VectorStore):
    """A LangChain ``VectorStore`` over one namespace (one knowledge base).

    Ids are the caller's (``{document sha256}#{n}``); adding an existing id replaces it. The
    first insert records the embedder's model name and dimension; later inserts and queries
    with a different embedder raise ``EmbedderMismatchError``. Scores of
    ``similarity_search_with_score`` are cosine similarities (higher is closer); those of
    ``hybrid_search`` are the fusion's scores (``fusion``: by default a convex combination of
    normalised cosine and BM25 scores).
    """

    def __init__(
        self,
        *,
        namespace: str,
        embeddings: Embeddings,
        hybrid_candidates: int = 50,
        fusion: HybridFusion | None = None,
    ) -> None:
        if not _NAMESPACE.match(namespace):
            msg = (
                f"namespace {namespace!r} is invalid: use 1-100 letters, digits, '_', '-' or "
                "'.', starting with a letter or digit"
            )
            raise UserError(msg, code="invalid_namespace", details={"namespace": namespace})
        self.namespace = namespace
        self._embeddings = embeddings
        self._identity: tuple[str, int] | None = None
        self.hybrid_candidates = hybrid_candidates
        self.fusion = fusion or HybridFusion()

    # -- what a backend implements -------------------------------------------------------

    @abstractmethod
    def _recorded_embedder(self) -> tuple[str, int] | None:
        """``(model_name, dimension)`` recorded for the namespace, or None while empty."""

    @abstractmethod
    def _upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
        identity: tuple[str, int],
    ) -> None:
        """Write records (recording ``identity`` if the namespace is new), replacing ids."""

    @abstractmethod
    def _dense_search(
        self,
        vector: Sequence[float],
        k: int,
        filter: MetadataFilter | None,
    ) -> list[tuple[Document, float]]:
        """Nearest records by cosine similarity, best first."""

    @abstractmethod
    def _keyword_search(
        self,
        query: str,
        k: int,
        filter: MetadataFilter | None,
        dense: list[tuple[Document, float]],
    ) -> list[tuple[Document, float]]:
        """Best BM25 matches, best first; ``dense`` are the dense candidates already found."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every record whose id starts with ``prefix``.

        Args:
            prefix: Id prefix, e.g. a document's sha256 followed by ``#``.

        Returns:
            How many records were deleted.
        """

    def delete_chunks(self, prefix: str, known: int = 0) -> int:
        """Delete a document's chunks: ids ``{prefix}0`` … ``{prefix}{known - 1}`` and any
        other id starting with ``prefix``.

        Args:
            prefix: The document's id prefix (its sha256 followed by ``#``).
            known: How many chunks the database recorded for it; stores whose id listing
                lags behind writes (Pinecone) delete these by id without waiting for it.

        Returns:
            How many records were deleted (or, where that is not reported, targeted).
        """
        return self.delete_prefix(prefix)

    @abstractmethod
    def drop(self) -> None:
        """Delete the whole namespace: every record and the recorded embedder."""

    @abstractmethod
    def count(self, prefix: str | None = None) -> int:
        """Number of records in the namespace, or of those whose id starts with ``prefix``."""

    # -- the shared LangChain surface -----------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        """The embedder this store embeds texts and queries with."""
        return self._embeddings

    def info(self) -> StoreInfo:
        """The recorded model name and dimension (None while empty) and the record count."""
        recorded = self._recorded_embedder()
        return StoreInfo(
            model_name=recorded[0] if recorded else None,
            dimension=recorded[1] if recorded else None,
            count=self.count(),
        )

    def _checked_identity(self) -> tuple[str, int]:
        if self._identity is None:
            self._identity = embedder_identity(self._embeddings)
        recorded = self._recorded_embedder()
        if recorded is not None and recorded != self._identity:
            raise EmbedderMismatchError(self.namespace, recorded=recorded, given=self._identity)
        return self._identity

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        batch_size: int = 256,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store texts, ``batch_size`` at a time.

        A metadata's ``context`` field (``CONTEXT_FIELD``) is embedded and indexed in front of
        its text (``indexed_text``) but not stored as part of it: searches return the text.

        Args:
            texts: Chunk texts, as they are to be shown.
            metadatas: One dict per text (JSON values), or None.
            ids: One id per text; random UUIDs when None.
            batch_size: Texts embedded and written per batch.
            **kwargs: Ignored (LangChain compatibility).

        Returns:
            The ids written.

        Raises:
            EmbedderMismatchError: The namespace holds vectors of another embedder.
            UserError: Lengths of texts, metadatas and ids differ.
        """
        import uuid

        texts = list(texts)
        if ids is None:
            ids = [str(uuid.uuid4()) for _ in texts]
        metadatas = metadatas if metadatas is not None else [{} for _ in texts]
        if not len(texts) == len(ids) == len(metadatas):
            msg = (
                f"add_texts got {len(texts)} texts, {len(ids)} ids and {len(metadatas)} "
                "metadatas; they must be equally many"
            )
            raise UserError(msg, code="invalid_chunks")
        identity = self._checked_identity()
        for start in range(0, len(texts), batch_size):
            stop = start + batch_size
            vectors = self._embeddings.embed_documents(
                [
                    indexed_text(text, meta)
                    for text, meta in zip(texts[start:stop], metadatas[start:stop], strict=True)
                ]
            )
            if vectors and len(vectors[0]) != identity[1]:
                given = (identity[0], len(vectors[0]))
                raise EmbedderMismatchError(self.namespace, recorded=identity, given=given)
            self._upsert(
                ids[start:stop], texts[start:stop], metadatas[start:stop], vectors, identity
            )
        return ids

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The ``k`` chunks closest to ``query`` by cosine similarity."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """Dense search: the ``k`` closest chunks with their cosine similarity, best first.

        Args:
            query: The question.
            k: How many chunks.
            filter: Metadata fields that must equal the given values.
            **kwargs: Ignored (LangChain compatibility).

        Raises:
            EmbedderMismatchError: The namespace holds vectors of another embedder.
        """
        filter = validate_filter(filter)
        self._checked_identity()
        if self._recorded_embedder() is None:
            return []
        return self._dense_search(self._embeddings.embed_query(query), k, filter)

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The ``k`` chunks closest to a query vector."""
        identity = self._checked_identity()
        if len(embedding) != identity[1]:
            given = (identity[0], len(embedding))
            raise EmbedderMismatchError(self.namespace, recorded=identity, given=given)
        if self._recorded_embedder() is None:
            return []
        return [doc for doc, _ in self._dense_search(embedding, k, validate_filter(filter))]

    def hybrid_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """Dense and BM25 search fused by reciprocal rank: the default retrieval.

        Args:
            query: The question.
            k: How many chunks.
            filter: Metadata fields that must equal the given values.

        Returns:
            Up to ``k`` chunks with their fusion score, best first.

        Raises:
            EmbedderMismatchError: The namespace holds vectors of another embedder.
        """
        filter = validate_filter(filter)
        self._checked_identity()
        if self._recorded_embedder() is None:
            return []
        return self.hybrid_search_by_vector(query, self._embeddings.embed_query(query), k, filter)

    def hybrid_search_by_vector(
        self,
        query: str,
        vector: Sequence[float],
        k: int = 4,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """``hybrid_search`` with the query's vector already computed."""
        filter = validate_filter(filter)
        n = max(self.hybrid_candidates, k)
        dense = self._dense_search(vector, n, filter)
        keyword = self._keyword_search(query, n, filter, dense)
        return self.fusion.fuse_documents(dense, keyword, k=k)

    def keyword_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """BM25 search alone (higher score is better)."""
        return self._keyword_search(query, k, validate_filter(filter), [])

    async def ahybrid_search(
        self,
        query: str,
        k: int = 4,
        filter: MetadataFilter | None = None,
    ) -> list[tuple[Document, float]]:
        """``hybrid_search`` in a worker thread."""
        return await asyncio.to_thread(self.hybrid_search, query, k, filter)

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """``add_texts`` in a worker thread."""
        return await asyncio.to_thread(self.add_texts, list(texts), metadatas, ids=ids, **kwargs)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """``similarity_search_with_score`` in a worker thread."""
        return await asyncio.to_thread(self.similarity_search_with_score, query, k, **kwargs)

    async def adelete_prefix(self, prefix: str) -> int:
        """``delete_prefix`` in a worker thread."""
        return await asyncio.to_thread(self.delete_prefix, prefix)

    async def adelete_chunks(self, prefix: str, known: int = 0) -> int:
        """``delete_chunks`` in a worker thread."""
        return await asyncio.to_thread(self.delete_chunks, prefix, known)

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """``delete`` in a worker thread."""
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    async def acount(self, prefix: str | None = None) -> int:
        """``count`` in a worker thread."""
        return await asyncio.to_thread(self.count, prefix)

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        settings: Settings | None = None,
        namespace: str = "default",
        **kwargs: Any,
    ) -> KnowledgeStore:
        """Open the configured store for ``namespace`` and add ``texts`` to it."""
        from socialflow.core.settings import get_settings

        store = open_store(settings or get_settings(), namespace=namespace, embeddings=embedding)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def open_store(
    settings: Settings,
    *,
    namespace: str,
    embeddings: Embeddings,
    dense_weight: float | None = None,
) -> KnowledgeStore:
    """Open the vector store of one knowledge base.

    Args:
        settings: ``settings.knowledge.vector_store`` picks ``embedded`` (default) or
            ``pinecone``.
        namespace: The knowledge base, ``str(knowledge_base.id)``.
        embeddings: The embedder recorded for the knowledge base.
        dense_weight: The knowledge base's own weight of dense search in hybrid search;
            None: ``settings.knowledge.hybrid_dense_weight``.

    Returns:
        The store; nothing is written until the first ``add_texts``.

    Raises:
        UserError: Pinecone is chosen but not configured, or the namespace is invalid.
    """
    ks = settings.knowledge
    fusion = HybridFusion(
        method=ks.hybrid_fusion,
        dense_weight=ks.hybrid_dense_weight if dense_weight is None else dense_weight,
    )
    if ks.vector_store == "pinecone":
        from socialflow.knowledge._pinecone_store import PineconeStore

        store: KnowledgeStore = PineconeStore.from_settings(
            settings, namespace=namespace, embeddings=embeddings
        )
        store.fusion = fusion
        return store
    from socialflow.knowledge._embedded_store import EmbeddedStore

    path = ks.store_path or settings.data_dir / "knowledge"
    return EmbeddedStore(
        path,
        namespace=namespace,
        embeddings=embeddings,
        hybrid_candidates=ks.hybrid_candidates,
        fusion=fusion,
    )
