"""The ingestion flow: one uploaded document from storage into its knowledge base's store.

``ingest_document`` is a Prefect flow (load → parse → split → embed and upsert in batches →
status), so every ingestion shows in the Prefect UI. Workers run it in-process for documents
they claim (``_queue.py``); the ``knowledge-ingest`` deployment in prefect.yaml runs it for one
document on demand. Chunk ids are ``{sha256}#{n}``: an unchanged file re-uses the chunks
already stored, and a document's chunks are deleted by that prefix.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import func, select, update

from socialflow.core.db import Database, utcnow
from socialflow.core.errors import TransientError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings, get_settings
from socialflow.knowledge._embeddings import get_embeddings
from socialflow.knowledge._models import Document, DocumentStatus, KnowledgeBase
from socialflow.knowledge._parse import ArchiveLimits, DocumentKind, parse, sniff
from socialflow.knowledge._split import Chunk, document_title, split_markdown
from socialflow.knowledge._storage import ObjectStorage
from socialflow.knowledge._store import CONTEXT_FIELD, KnowledgeStore, open_store

__all__ = [
    "IngestContext",
    "IngestOutcome",
    "chunk_metadata",
    "chunk_prefix",
    "embeddings_for_base",
    "get_ingest_context",
    "ingest_document",
    "remove_document_data",
    "set_ingest_context",
    "split_document",
]

_log = get_logger(__name__)

EmbeddingsFactory = Callable[[KnowledgeBase], Embeddings]


def chunk_prefix(sha256: str) -> str:
    """The id prefix of every chunk of a document with this checksum."""
    return f"{sha256}#"


async def embeddings_for_base(settings: Settings, db: Database, base: KnowledgeBase) -> Embeddings:
    """The embedder recorded for a knowledge base, with its credential's key when it has one.

    Raises:
        UserError: The recorded provider or model is not available.
    """
    api_key: str | None = None
    base_url: str | None = None
    if base.credential_id is not None:
        from socialflow.core.credentials import Credential, key_wrapper, open_credential

        async with db.sessionmaker() as session:
            row = await session.get(Credential, base.credential_id)
        if row is None or row.workspace_id != base.workspace_id:
            msg = (
                f"the credential of knowledge base {base.name!r} was deleted; create the base "
                "again with another credential"
            )
            raise UserError(msg, code="credential_missing", details={"field": "credential_id"})
        fields = open_credential(row, key_wrapper(settings))
        api_key = fields.get("api_key")
        base_url = str(fields["base_url"]) if fields.get("base_url") else None
    return get_embeddings(
        settings,
        provider=base.embedder_provider,
        model=base.embedder_model,
        base_url=base_url,
        api_key=api_key,
    )


@dataclass
class IngestContext:
    """What ingestion needs from its process: settings, database, storage and embedders.

    Args:
        settings: Process settings (chunk size and overlap, batch size, the vector store).
        db: The application database.
        storage: Where uploads are kept; built from ``settings`` when omitted.
        embeddings: Builds a base's embedder; the base's recorded one when omitted. Embedders
            are kept per base for the life of the context (the built-in one loads once).
    """

    settings: Settings
    db: Database
    storage: ObjectStorage | None = None
    embeddings: EmbeddingsFactory | None = None
    _embedders: dict[uuid.UUID, Embeddings] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.storage is None:
            self.storage = ObjectStorage.from_settings(self.settings)

    @property
    def objects(self) -> ObjectStorage:
        """The object storage (always set after construction)."""
        assert self.storage is not None
        return self.storage

    async def embedder(self, base: KnowledgeBase) -> Embeddings:
        """The embedder of ``base``, built once per context."""
        cached = self._embedders.get(base.id)
        if cached is None:
            if self.embeddings is not None:
                cached = self.embeddings(base)
            else:
                cached = await embeddings_for_base(self.settings, self.db, base)
            self._embedders[base.id] = cached
        return cached

    async def store(self, base: KnowledgeBase) -> KnowledgeStore:
        """The vector store of ``base``, opened with its recorded embedder."""
        embeddings = await self.embedder(base)
        return open_store(
            self.settings,
            namespace=str(base.id),
            embeddings=embeddings,
            dense_weight=base.hybrid_dense_weight,
        )


_context: IngestContext | None = None


def set_ingest_context(context: IngestContext | None) -> None:
    """Install the context ingestion flows of this process use (workers, the API, tests)."""
    global _context
    _context = context


def get_ingest_context() -> IngestContext:
    """This process's ingestion context, built from the environment's settings on first use."""
    global _context
    if _context is None:
        settings = get_settings()
        _context = IngestContext(settings=settings, db=Database(settings.database_url))
    return _context


@dataclass(frozen=True)
class IngestOutcome:
    """How one ingestion ended."""

    status: DocumentStatus
    chunks: int = 0
    embedded: int = 0
    reused: bool = False
    error: str | None = None


@task(name="load document", cache_policy=NO_CACHE)
async def _load(url: str) -> bytes:
    return await get_ingest_context().objects.aread(url)


@task(name="parse document", cache_policy=NO_CACHE)
async def _parse(filename: str, data: bytes) -> str:
    kind: DocumentKind = sniff(filename, data[:1024])[0]
    ks = get_ingest_context().settings.knowledge
    limits = ArchiveLimits(max_unpacked_bytes=ks.max_unpacked_bytes, max_ratio=ks.max_unpack_ratio)
    return await asyncio.to_thread(parse, data, kind, limits=limits)


def split_document(text: str, filename: str, settings: Settings) -> list[Chunk]:
    """A parsed document's chunks, each knowing its document's title and its heading path.

    Args:
        text: The document as ``parse`` returned it.
        filename: The upload's name (the title when the text starts with no short line).
        settings: Chunk size and overlap (``knowledge.chunk_size``, ``chunk_overlap``).
    """
    ks = settings.knowledge
    return split_markdown(
        text,
        chunk_size=ks.chunk_size,
        chunk_overlap=ks.chunk_overlap,
        title=document_title(text, filename),
    )


def chunk_metadata(
    chunk: Chunk, n: int, *, document_id: str, sha256: str, filename: str
) -> dict[str, Any]:
    """What the store keeps with the ``n``-th chunk of a document; its ``context`` field is
    embedded and indexed with the text (``indexed_text``) but not shown as part of it."""
    return {
        "document_id": document_id,
        "sha256": sha256,
        "filename": filename,
        "chunk": n,
        "title": chunk.title,
        "section": chunk.section,
        CONTEXT_FIELD: chunk.context,
    }


@task(name="split document", cache_policy=NO_CACHE)
def _split(text: str, filename: str) -> list[Chunk]:
    return split_document(text, filename, get_ingest_context().settings)


@task(name="embed and upsert", cache_policy=NO_CACHE)
async def _embed(
    document_id: uuid.UUID, store: KnowledgeStore, doc: Document, chunks: list[Chunk]
) -> int:
    ctx = get_ingest_context()
    batch = ctx.settings.knowledge.embed_batch_size
    prefix = chunk_prefix(doc.sha256)
    # a previous, interrupted attempt may have left some: start clean
    await store.adelete_prefix(prefix)
    done = 0
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        ids = [f"{prefix}{start + n}" for n in range(len(part))]
        metadatas = [
            chunk_metadata(
                chunk,
                start + n,
                document_id=str(document_id),
                sha256=doc.sha256,
                filename=doc.filename,
            )
            for n, chunk in enumerate(part)
        ]
        texts = [chunk.text for chunk in part]
        await asyncio.to_thread(store.add_texts, texts, metadatas, ids=ids, batch_size=batch)
        done += len(part)
        await _set(ctx.db, document_id, chunks_done=done, claimed_at=utcnow())
    return done


async def _set(db: Database, document_id: uuid.UUID, **values: Any) -> None:
    async with db.sessionmaker() as session:
        await session.execute(update(Document).where(Document.id == document_id).values(**values))
        await session.commit()


async def _ready_twin(db: Database, doc: Document) -> Document | None:
    """Another ready document of the same base with the same content, if any."""
    async with db.sessionmaker() as session:
        twin: Document | None = await session.scalar(
            select(Document)
            .where(
                Document.knowledge_base_id == doc.knowledge_base_id,
                Document.sha256 == doc.sha256,
                Document.status == DocumentStatus.READY,
                Document.id != doc.id,
            )
            .limit(1)
        )
    return twin


async def _reusable_chunks(store: KnowledgeStore, twin: Document) -> int:
    """How many chunks of ``twin``'s checksum the store holds, 0 if they cannot be re-used.

    Chunks stored before chunks had a context are not re-used (``_without_context``). A
    ready row whose ``chunks_done`` equals its ``chunks_total`` is the database's record
    that every chunk was written (a document turns ready only after its last upsert), so it
    is trusted as is: counting by listing ids lags behind writes on serverless Pinecone and
    would re-embed a file written a moment ago. Only a row without that record is checked by
    counting the stored chunks.
    """
    if await _without_context(store, twin.sha256):
        return 0
    if twin.chunks_total > 0 and twin.chunks_done == twin.chunks_total:
        return twin.chunks_total
    stored = await store.acount(chunk_prefix(twin.sha256))
    return stored if stored == twin.chunks_total and stored > 0 else 0


async def _without_context(store: KnowledgeStore, sha256: str) -> bool:
    """Whether the stored chunks of this content predate chunk context (no ``context`` field).

    They keep answering searches as they are; uploading the same file again embeds it anew,
    with context, instead of re-using them. A chunk not found (a store whose reads lag behind
    its writes) is no reason to re-embed.
    """
    found = await asyncio.to_thread(store.get_by_ids, [f"{chunk_prefix(sha256)}0"])
    return bool(found) and CONTEXT_FIELD not in found[0].metadata


async def remove_document_data(
    ctx: IngestContext, base: KnowledgeBase, doc: Document, *, store: KnowledgeStore | None = None
) -> int:
    """Delete a document's file, and its chunks unless another document shares them.

    Chunks are shared by documents of one base with the same content (same checksum); they
    go with the last such document.

    Returns:
        How many chunks were deleted.
    """
    await ctx.objects.adelete(doc.storage_url)
    async with ctx.db.sessionmaker() as session:
        sharing = await session.scalar(
            select(func.count())
            .select_from(Document)
            .where(
                Document.knowledge_base_id == doc.knowledge_base_id,
                Document.sha256 == doc.sha256,
                Document.id != doc.id,
                Document.status != DocumentStatus.FAILED,
            )
        )
    if sharing:
        return 0
    store = store or await ctx.store(base)
    return await store.adelete_chunks(chunk_prefix(doc.sha256), doc.chunks_total)


async def _finish_replacement(ctx: IngestContext, base: KnowledgeBase, doc: Document) -> None:
    """The new document is ready: older ones of the same name go, file, chunks and row."""
    async with ctx.db.sessionmaker() as session:
        older = (
            await session.scalars(
                select(Document).where(
                    Document.knowledge_base_id == doc.knowledge_base_id,
                    Document.filename == doc.filename,
                    Document.id != doc.id,
                    Document.created_at <= doc.created_at,
                )
            )
        ).all()
        for row in older:
            await session.delete(row)
        await session.commit()
    for row in older:
        await remove_document_data(ctx, base, row)


async def _still_there(ctx: IngestContext, base: KnowledgeBase, doc: Document) -> bool:
    """Whether the document still exists; if it was deleted meanwhile, drop what was written."""
    async with ctx.db.sessionmaker() as session:
        exists = await session.get(Document, doc.id) is not None
    if not exists:
        await remove_document_data(ctx, base, doc)
    return exists


def _flow_run_name() -> str:
    from prefect.runtime import flow_run

    return f"ingest-{flow_run.parameters.get('document_id', 'document')}"


@flow(name="knowledge-ingest", flow_run_name=_flow_run_name, log_prints=False)
async def ingest_document(document_id: str) -> IngestOutcome:
    """Ingest one uploaded document into its knowledge base.

    Args:
        document_id: The ``document`` row to ingest (pending, or processing when a worker
            claimed it).

    Returns:
        The outcome; a document that cannot be read ends ``failed`` with the parser's reason.

    Raises:
        TransientError: Storage or a remote embedder is unavailable; the claim is retried.
    """
    ctx = get_ingest_context()
    doc_id = uuid.UUID(document_id)
    async with ctx.db.sessionmaker() as session:
        doc = await session.get(Document, doc_id)
        base = await session.get(KnowledgeBase, doc.knowledge_base_id) if doc else None
    if doc is None or base is None:
        missing = f"document {document_id} does not exist (deleted?)"
        return IngestOutcome(DocumentStatus.FAILED, error=missing)
    if doc.status == DocumentStatus.READY:
        return IngestOutcome(DocumentStatus.READY, chunks=doc.chunks_total, reused=True)
    await _set(ctx.db, doc_id, status=DocumentStatus.PROCESSING, claimed_at=utcnow(), error=None)
    try:
        outcome = await _ingest(ctx, base, doc)
    except TransientError:
        raise
    except UserError as exc:
        _log.info("document failed", document_id=document_id, error=exc.message)
        await _set(ctx.db, doc_id, status=DocumentStatus.FAILED, error=exc.message, claimed_at=None)
        return IngestOutcome(DocumentStatus.FAILED, error=exc.message)
    doc.chunks_total = outcome.chunks  # what to delete if the row went meanwhile
    if not await _still_there(ctx, base, doc):
        return IngestOutcome(DocumentStatus.FAILED, error="the document was deleted")
    await _set(
        ctx.db,
        doc_id,
        status=DocumentStatus.READY,
        chunks_total=outcome.chunks,
        chunks_done=outcome.chunks,
        error=None,
        claimed_at=None,
    )
    await _finish_replacement(ctx, base, doc)
    return outcome


async def _ingest(ctx: IngestContext, base: KnowledgeBase, doc: Document) -> IngestOutcome:
    store = await ctx.store(base)
    twin = await _ready_twin(ctx.db, doc)
    if twin is not None:
        reused = await _reusable_chunks(store, twin)
        if reused:
            # the same content is already embedded in this base: nothing to do
            return IngestOutcome(DocumentStatus.READY, chunks=reused, reused=True)
    data = await _load(doc.storage_url)
    text = await _parse(doc.filename, data)
    chunks = _split(text, doc.filename)
    if not chunks:
        msg = f"no text found in {doc.filename!r}; scanned PDFs and images need OCR before upload"
        raise UserError(msg, code="document_empty")
    await _set(ctx.db, doc.id, chunks_total=len(chunks), chunks_done=0)
    embedded = await _embed(doc.id, store, doc, chunks)
    return IngestOutcome(DocumentStatus.READY, chunks=len(chunks), embedded=embedded)
