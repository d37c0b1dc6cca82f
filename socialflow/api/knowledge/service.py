"""Knowledge bases: create, list, get, update, delete, and trying queries against one.

Documents (upload, list, delete) are in ``socialflow.api.knowledge.documents``. A base's
embedder (provider, model, dimension) is resolved and recorded when it is created; ingestion
and search always use that one.
"""

from __future__ import annotations

import asyncio
import builtins
import uuid

from langchain_core.embeddings import Embeddings
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.knowledge.schemas import (
    KnowledgeBaseCreate,
    KnowledgeBasePage,
    KnowledgeBaseRead,
    KnowledgeBaseUpdate,
    SearchHit,
    SearchQuery,
    SearchResult,
)
from socialflow.core.credentials import Credential
from socialflow.core.errors import (
    AppError,
    NotFoundError,
    TransientError,
    UserError,
    ValidationError,
)
from socialflow.knowledge import (
    Document,
    DocumentStatus,
    IngestContext,
    KnowledgeBase,
    embedder_identity,
    get_embeddings,
    open_store,
    remove_document_data,
)

__all__ = ["create", "delete", "get_row", "list", "read", "search", "update"]

# the credential kind each remote embedder takes (the built-in minilm takes none)
_EMBEDDER_CREDENTIAL_KINDS = {"openai": "openai", "ollama": "ollama"}


async def get_row(
    workspace_id: uuid.UUID, knowledge_base_id: uuid.UUID, *, session: AsyncSession
) -> KnowledgeBase:
    """The ``knowledge_base`` row, only if it belongs to ``workspace_id``.

    Raises:
        NotFoundError: No such base in this workspace (the same answer for another
            workspace's base, so ids leak nothing).
    """
    base = await session.scalar(
        select(KnowledgeBase).where(
            KnowledgeBase.id == knowledge_base_id, KnowledgeBase.workspace_id == workspace_id
        )
    )
    if base is None:
        msg = f"knowledge base {knowledge_base_id} not found"
        raise NotFoundError(msg, code="knowledge_base_not_found")
    return base


async def _counts(
    ids: builtins.list[uuid.UUID], *, session: AsyncSession
) -> dict[uuid.UUID, tuple[int, int, int]]:
    ready = Document.status == DocumentStatus.READY
    rows = await session.execute(
        select(
            Document.knowledge_base_id,
            func.count(),
            func.sum(case((ready, 1), else_=0)),
            func.sum(case((ready, Document.chunks_total), else_=0)),
        )
        .where(Document.knowledge_base_id.in_(ids))
        .group_by(Document.knowledge_base_id)
    )
    return {row[0]: (int(row[1]), int(row[2] or 0), int(row[3] or 0)) for row in rows.all()}


def _read(base: KnowledgeBase, counts: tuple[int, int, int]) -> KnowledgeBaseRead:
    return KnowledgeBaseRead(
        id=base.id,
        workspace_id=base.workspace_id,
        name=base.name,
        description=base.description,
        embedder_provider=base.embedder_provider,
        embedder_model=base.embedder_model,
        embedder_dimension=base.embedder_dimension,
        credential_id=base.credential_id,
        hybrid_dense_weight=base.hybrid_dense_weight,
        documents=counts[0],
        ready_documents=counts[1],
        chunks=counts[2],
        created_at=base.created_at,
        updated_at=base.updated_at,
    )


async def read(base: KnowledgeBase, *, session: AsyncSession) -> KnowledgeBaseRead:
    """A base as the API shows it, with its document counts."""
    counts = await _counts([base.id], session=session)
    return _read(base, counts.get(base.id, (0, 0, 0)))


async def _check_credential(
    workspace_id: uuid.UUID, provider: str, credential_id: uuid.UUID, *, session: AsyncSession
) -> None:
    wanted = _EMBEDDER_CREDENTIAL_KINDS.get(provider)
    if wanted is None:
        problem = {
            "field": "body.credential_id",
            "message": (
                f"the {provider} embedder takes no credential; credentials are for "
                f"embedder_provider {' or '.join(_EMBEDDER_CREDENTIAL_KINDS)}"
            ),
            "type": "credential_not_allowed",
        }
        msg = f"credential_id: {problem['message']}"
        raise ValidationError(msg, problems=[problem])
    kind = await session.scalar(
        select(Credential.kind).where(
            Credential.id == credential_id, Credential.workspace_id == workspace_id
        )
    )
    if kind != wanted:
        found = f" (it is of kind {kind})" if kind else ""
        problem = {
            "field": "body.credential_id",
            "message": (
                f"no credential {credential_id} of kind {wanted} in this workspace{found}; "
                f"a {provider} embedder needs a {wanted} credential"
            ),
            "type": "credential_not_found",
        }
        msg = f"credential_id: {problem['message']}"
        raise ValidationError(msg, problems=[problem])


async def _measure(embeddings: Embeddings, provider: str) -> tuple[str, int]:
    """Model name and dimension; a remote embedder is asked (its answer, not a table of known
    models, is what the base records for good)."""
    try:
        if provider in _EMBEDDER_CREDENTIAL_KINDS:
            await asyncio.to_thread(embeddings.embed_query, "dimension probe")
        return await asyncio.to_thread(embedder_identity, embeddings)
    except (UserError, TransientError):
        raise
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
            msg = f"the {provider} embedder refused the request ({status}): {exc}"
            raise UserError(
                msg, code="embedder_unavailable", details={"field": "body.embedder_model"}
            ) from exc
        msg = f"could not reach the {provider} embedder to learn its dimension: {exc}"
        raise TransientError(msg, code="embedder_unavailable") from exc


async def create(
    workspace_id: uuid.UUID,
    body: KnowledgeBaseCreate,
    *,
    user_id: uuid.UUID,
    context: IngestContext,
    session: AsyncSession,
) -> KnowledgeBaseRead:
    """Create a knowledge base and record its embedder.

    Raises:
        ValidationError: The credential is not a credential of this workspace of the
            provider's kind (openai or ollama), or the provider takes none.
        UserError: The embedder provider or model is not available (a remote endpoint
            refused it).
        TransientError: A remote embedder could not be reached to learn its dimension.
    """
    settings = context.settings
    provider = body.embedder_provider or settings.knowledge.embedder
    if body.credential_id is not None:
        await _check_credential(workspace_id, provider, body.credential_id, session=session)
    elif provider == "openai":
        problem = {
            "field": "body.credential_id",
            "message": "an openai embedder needs credential_id: a credential of kind openai",
            "type": "missing",
        }
        msg = f"credential_id: {problem['message']}"
        raise ValidationError(msg, problems=[problem])
    base = KnowledgeBase(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=body.name.strip(),
        description=body.description,
        embedder_provider=provider,
        embedder_model=body.embedder_model or "",
        embedder_dimension=0,
        credential_id=body.credential_id,
        hybrid_dense_weight=body.hybrid_dense_weight,
        created_by=user_id,
    )
    try:
        embeddings = await context.embedder(base)
    except AppError:
        raise
    except Exception as exc:
        msg = f"the {provider} embedder could not be set up: {exc}"
        raise UserError(msg, code="embedder_unavailable") from exc
    model_name, dimension = await _measure(embeddings, provider)
    base.embedder_provider = str(getattr(embeddings, "provider", base.embedder_provider))
    base.embedder_model = model_name
    base.embedder_dimension = dimension
    session.add(base)
    await session.commit()
    return _read(base, (0, 0, 0))


async def list(
    workspace_id: uuid.UUID, *, limit: int, offset: int, session: AsyncSession
) -> KnowledgeBasePage:
    """The workspace's knowledge bases by name."""
    total = await session.scalar(
        select(func.count())
        .select_from(KnowledgeBase)
        .where(KnowledgeBase.workspace_id == workspace_id)
    )
    rows = (
        await session.scalars(
            select(KnowledgeBase)
            .where(KnowledgeBase.workspace_id == workspace_id)
            .order_by(KnowledgeBase.name, KnowledgeBase.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    counts = await _counts([row.id for row in rows], session=session)
    return KnowledgeBasePage(
        items=[_read(row, counts.get(row.id, (0, 0, 0))) for row in rows],
        total=int(total or 0),
        limit=limit,
        offset=offset,
    )


async def update(
    base: KnowledgeBase, body: KnowledgeBaseUpdate, *, session: AsyncSession
) -> KnowledgeBaseRead:
    """Rename a base or change its description."""
    if body.name is not None:
        base.name = body.name.strip()
    if body.description is not None:
        base.description = body.description
    if "hybrid_dense_weight" in body.model_fields_set:
        base.hybrid_dense_weight = body.hybrid_dense_weight
    await session.commit()
    return await read(base, session=session)


async def delete(base: KnowledgeBase, *, context: IngestContext, session: AsyncSession) -> None:
    """Delete a base: every stored file, its whole vector-store namespace, and its rows."""
    documents = (
        await session.scalars(select(Document).where(Document.knowledge_base_id == base.id))
    ).all()
    for document in documents:
        await context.objects.adelete(document.storage_url)
    try:
        store = await context.store(base)
    except UserError:
        # the base's embedder cannot be built any more (its credential was deleted, say):
        # dropping a namespace embeds nothing, so any embedder opens it
        store = open_store(
            context.settings, namespace=str(base.id), embeddings=get_embeddings(context.settings)
        )
    await asyncio.to_thread(store.drop)
    await session.delete(base)
    await session.commit()


async def delete_document(
    base: KnowledgeBase, document: Document, *, context: IngestContext, session: AsyncSession
) -> None:
    """Delete a document's row first (so an ingestion in progress notices), then its data."""
    await session.delete(document)
    await session.commit()
    await remove_document_data(context, base, document)


async def search(
    base: KnowledgeBase, body: SearchQuery, *, context: IngestContext, session: AsyncSession
) -> SearchResult:
    """Run a hybrid (dense + BM25) query against a base, as the AI nodes do.

    Raises:
        EmbedderMismatchError: The store holds vectors of another embedder.
    """
    store = await context.store(base)
    found = await store.ahybrid_search(body.query, k=body.k)
    shas = {str(doc.metadata.get("sha256", "")) for doc, _ in found}
    # name each hit after the current document with that content (re-uploads keep chunks)
    rows = await session.execute(
        select(Document.sha256, Document.id, Document.filename)
        .where(Document.knowledge_base_id == base.id, Document.sha256.in_(shas))
        .order_by(Document.created_at)
    )
    names = {sha: (doc_id, filename) for sha, doc_id, filename in rows.all()}
    hits = []
    for doc, score in found:
        meta = doc.metadata
        current = names.get(str(meta.get("sha256", "")))
        text = doc.page_content
        section = str(meta.get("section", ""))
        if section and text.startswith(section):
            text = text[len(section) :].lstrip("\n")
        hits.append(
            SearchHit(
                document_id=current[0] if current else None,
                filename=current[1] if current else str(meta.get("filename", "")),
                chunk=int(meta.get("chunk", 0)),
                section=section,
                text=text,
                score=float(score),
            )
        )
    return SearchResult(query=body.query, hits=hits)
