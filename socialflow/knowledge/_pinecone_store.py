"""The Pinecone adapter: one Pinecone namespace per knowledge base, through the pinecone SDK.

Records carry the chunk text in metadata (``text``). Upserts are split so that every
request stays within Pinecone's limits (1,000 records, 2 MB, 40 KB of metadata per record).
The embedder a namespace was built with is kept in a reserved record of that namespace.
Pinecone's dense indexes have no keyword search, so ``hybrid_search`` re-ranks the dense
candidates with BM25 computed over those candidates and fuses both rankings.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from socialflow.core.errors import TransientError, UserError
from socialflow.knowledge._bm25 import bm25_rank
from socialflow.knowledge._store import KnowledgeStore, MetadataFilter, indexed_text

if TYPE_CHECKING:
    from pinecone import Index

    from socialflow.core.settings import Settings

__all__ = ["MAX_METADATA_BYTES", "MAX_REQUEST_BYTES", "MAX_UPSERT_RECORDS", "PineconeStore"]

MAX_UPSERT_RECORDS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
_REQUEST_BUDGET = MAX_REQUEST_BYTES - 64 * 1024  # room for the envelope and float formatting
_ID_BATCH = 1000
_FETCH_BATCH = 100
_META_ID = "__socialflow__embedder"
_TEXT = "text"
T = TypeVar("T")


def _pinecone_call(action: str, call: Callable[[], T]) -> T:
    """Run an SDK call; map its errors onto UserError (4xx) and TransientError (the rest)."""
    from pinecone.errors import ApiError, PineconeError

    try:
        return call()
    except ApiError as exc:
        status = getattr(exc, "status_code", None) or 0
        message = f"Pinecone {action} failed: {exc}"
        if status in (408, 429) or status >= 500:
            raise TransientError(message, details={"status": status}) from exc
        raise UserError(message, code="pinecone_error", details={"status": status}) from exc
    except PineconeError as exc:
        msg = f"Pinecone {action} failed: {exc}"
        raise TransientError(msg) from exc


def _clean_metadata(record_id: str, metadata: dict[str, Any], text: str) -> dict[str, Any]:
    """Pinecone accepts strings, numbers, booleans and lists of strings; None is left out."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, str | bool | int | float):
            out[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
        else:
            out[key] = json.dumps(value, default=str)
    out[_TEXT] = text
    size = len(json.dumps(out, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        msg = (
            f"chunk {record_id!r} needs {size} bytes of Pinecone metadata (its text included); "
            f"Pinecone allows {MAX_METADATA_BYTES}: lower the chunk size"
        )
        raise UserError(msg, code="chunk_too_large", details={"id": record_id, "bytes": size})
    return out


def upsert_batches(
    records: list[dict[str, Any]], max_records: int
) -> Iterator[list[dict[str, Any]]]:
    """Split records into requests within ``max_records`` and Pinecone's 2 MB body limit."""
    batch: list[dict[str, Any]] = []
    size = 0
    for record in records:
        record_size = len(json.dumps(record, separators=(", ", ": ")).encode()) + 2
        if batch and (len(batch) >= max_records or size + record_size > _REQUEST_BUDGET):
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += record_size
    if batch:
        yield batch


class PineconeStore(KnowledgeStore):
    """Knowledge store on a Pinecone dense index (cosine metric), one namespace per base.

    Args:
        index: A ``pinecone.Index`` handle, or a zero-argument factory for one (so opening
            the store makes no network call).
        namespace: The knowledge base.
        embeddings: The knowledge base's embedder.
        batch_size: Records per upsert request at most (Pinecone allows 1,000).
        hybrid_candidates: Dense candidates that BM25 re-ranks in ``hybrid_search``.
    """

    def __init__(
        self,
        index: Index | Callable[[], Index],
        *,
        namespace: str,
        embeddings: Embeddings,
        batch_size: int = 100,
        hybrid_candidates: int = 50,
    ) -> None:
        super().__init__(
            namespace=namespace, embeddings=embeddings, hybrid_candidates=hybrid_candidates
        )
        self._index_or_factory = index
        self._index: Index | None = None
        self.batch_size = min(batch_size, MAX_UPSERT_RECORDS)
        self._recorded: tuple[str, int] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, namespace: str, embeddings: Embeddings
    ) -> PineconeStore:
        """The store configured by ``settings.knowledge.pinecone_*``.

        Raises:
            UserError: The API key, or both the index host and name, are missing, or
                ``pinecone_dimension`` differs from the embedder's dimension.
        """
        ks = settings.knowledge
        if ks.pinecone_api_key is None:
            msg = "vector_store is 'pinecone' but SOCIALFLOW_KNOWLEDGE_PINECONE_API_KEY is not set"
            raise UserError(msg, code="pinecone_not_configured")
        if not ks.pinecone_index_host and not ks.pinecone_index_name:
            msg = (
                "vector_store is 'pinecone': set SOCIALFLOW_KNOWLEDGE_PINECONE_INDEX_HOST "
                "(or SOCIALFLOW_KNOWLEDGE_PINECONE_INDEX_NAME to look the host up)"
            )
            raise UserError(msg, code="pinecone_not_configured")
        dimension = getattr(embeddings, "dimension", None)
        if (
            ks.pinecone_dimension
            and isinstance(dimension, int)
            and dimension != ks.pinecone_dimension
        ):
            msg = (
                f"the Pinecone index has {ks.pinecone_dimension} dimensions but the embedder "
                f"{getattr(embeddings, 'model_name', '?')!r} returns {dimension}; use an index "
                "of the embedder's dimension"
            )
            raise UserError(msg, code="embedder_mismatch")
        key = ks.pinecone_api_key.get_secret_value()
        host, name, control = (
            ks.pinecone_index_host,
            ks.pinecone_index_name,
            ks.pinecone_control_host,
        )

        def connect() -> Index:
            from pinecone import Index, Pinecone

            if host:
                return Index(host=host, api_key=key)
            client = Pinecone(api_key=key, host=control) if control else Pinecone(api_key=key)
            return _pinecone_call("index lookup", lambda: client.index(name=name or ""))

        return cls(
            connect,
            namespace=namespace,
            embeddings=embeddings,
            batch_size=ks.pinecone_batch_size,
            hybrid_candidates=ks.hybrid_candidates,
        )

    @property
    def index(self) -> Index:
        """The SDK's index handle, created on first use."""
        if self._index is None:
            source = self._index_or_factory
            self._index = source() if callable(source) else source
        return self._index

    # -- backend primitives --------------------------------------------------------------

    def _recorded_embedder(self) -> tuple[str, int] | None:
        if self._recorded is None:
            found = _pinecone_call(
                "fetch", lambda: self.index.fetch(ids=[_META_ID], namespace=self.namespace)
            )
            record = found.vectors.get(_META_ID)
            if record is not None and record.metadata:
                meta = record.metadata
                self._recorded = (str(meta["model_name"]), int(meta["dimension"]))
        return self._recorded

    def _upsert(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
        vectors: Sequence[Sequence[float]],
        identity: tuple[str, int],
    ) -> None:
        if self._recorded_embedder() is None:
            marker = [1.0] + [0.0] * (identity[1] - 1)  # Pinecone refuses all-zero vectors
            meta = {"model_name": identity[0], "dimension": identity[1]}
            record = {"id": _META_ID, "values": marker, "metadata": meta}
            _pinecone_call(
                "upsert", lambda: self.index.upsert(vectors=[record], namespace=self.namespace)
            )
            self._recorded = identity
        records = [
            {
                "id": id_,
                "values": [float(v) for v in vector],
                "metadata": _clean_metadata(id_, meta, text),
            }
            for id_, text, meta, vector in zip(ids, texts, metadatas, vectors, strict=True)
        ]
        for batch in upsert_batches(records, self.batch_size):
            upsert = functools.partial(self.index.upsert, vectors=batch, namespace=self.namespace)
            _pinecone_call("upsert", upsert)

    def _to_document(self, record_id: str, metadata: dict[str, Any] | None) -> Document:
        meta = dict(metadata or {})
        text = str(meta.pop(_TEXT, ""))
        return Document(id=record_id, page_content=text, metadata=meta)

    def _dense_search(
        self,
        vector: Sequence[float],
        k: int,
        filter: MetadataFilter | None,
    ) -> list[tuple[Document, float]]:
        pinecone_filter = {key: {"$eq": value} for key, value in (filter or {}).items()}
        response = _pinecone_call(
            "query",
            lambda: self.index.query(
                vector=[float(v) for v in vector],
                top_k=min(k + 1, 1000),
                namespace=self.namespace,
                filter=pinecone_filter or None,
                include_metadata=True,
            ),
        )
        results = [
            (self._to_document(match.id, match.metadata), float(match.score))
            for match in response.matches
            if match.id != _META_ID
        ]
        return results[:k]

    def _keyword_search(
        self,
        query: str,
        k: int,
        filter: MetadataFilter | None,
        dense: list[tuple[Document, float]],
    ) -> list[tuple[Document, float]]:
        if not dense:
            if self._recorded_embedder() is None:
                return []
            vector = self._embeddings.embed_query(query)
            dense = self._dense_search(vector, max(self.hybrid_candidates, k), filter)
        ranked = bm25_rank(
            query, [indexed_text(doc.page_content, doc.metadata) for doc, _ in dense]
        )
        return [(dense[position][0], score) for position, score in ranked[:k]]

    # -- deletes, counts -----------------------------------------------------------------

    def _list_ids(self, prefix: str | None) -> list[str]:
        def collect() -> list[str]:
            ids: list[str] = []
            for page in self.index.list(prefix=prefix or None, namespace=self.namespace, limit=100):
                ids.extend(item.id for item in page.vectors if item.id and item.id != _META_ID)
            return ids

        return _pinecone_call("list", collect)

    def _delete_ids(self, ids: Sequence[str]) -> None:
        from pinecone.errors import NotFoundError

        for start in range(0, len(ids), _ID_BATCH):
            part = list(ids[start : start + _ID_BATCH])
            try:
                delete = functools.partial(self.index.delete, ids=part, namespace=self.namespace)
                _pinecone_call("delete", delete)
            except UserError as exc:
                if not isinstance(exc.__cause__, NotFoundError):  # namespace already empty
                    raise

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete records by id; True if any existed."""
        if not ids:
            return False
        existing = [doc.id for doc in self.get_by_ids(ids) if doc.id]
        self._delete_ids(existing)
        return bool(existing)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every record whose id starts with ``prefix`` (list, then delete by id)."""
        if not prefix:
            msg = "delete_prefix needs a non-empty prefix; use drop() to empty a namespace"
            raise UserError(msg, code="invalid_prefix")
        ids = self._list_ids(prefix)
        self._delete_ids(ids)
        return len(ids)

    def delete_chunks(self, prefix: str, known: int = 0) -> int:
        """Delete ``{prefix}0`` … ``{prefix}{known - 1}`` by id, then whatever else the list
        shows under ``prefix``.

        Serverless Pinecone lists a record only some time after it is written; the ids the
        database recorded are deleted whether or not the list shows them yet.
        """
        if not prefix:
            msg = "delete_chunks needs a non-empty prefix; use drop() to empty a namespace"
            raise UserError(msg, code="invalid_prefix")
        ids = [f"{prefix}{n}" for n in range(known)]
        written = set(ids)
        ids += [i for i in self._list_ids(prefix) if i not in written]
        self._delete_ids(ids)
        return len(ids)

    def drop(self) -> None:
        """Delete every record of the namespace, the recorded embedder included."""
        from pinecone.errors import NotFoundError

        try:
            _pinecone_call(
                "delete", lambda: self.index.delete(delete_all=True, namespace=self.namespace)
            )
        except UserError as exc:
            if not isinstance(exc.__cause__, NotFoundError):
                raise
        self._recorded = None

    def count(self, prefix: str | None = None) -> int:
        """Number of records (listed, so exact once Pinecone has indexed the writes)."""
        return len(self._list_ids(prefix))

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The records with these ids (missing ones skipped), in the order asked."""
        found: dict[str, Document] = {}
        for start in range(0, len(ids), _FETCH_BATCH):
            part = [i for i in ids[start : start + _FETCH_BATCH] if i != _META_ID]
            if not part:
                continue
            fetch = functools.partial(self.index.fetch, ids=part, namespace=self.namespace)
            response = _pinecone_call("fetch", fetch)
            for record_id, record in response.vectors.items():
                found[record_id] = self._to_document(record_id, record.metadata)
        return [found[i] for i in ids if i in found]
