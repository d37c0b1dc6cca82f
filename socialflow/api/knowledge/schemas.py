"""What the knowledge endpoints read and write: knowledge bases, documents and search."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from socialflow.knowledge import DocumentStatus

__all__ = [
    "DocumentPage",
    "DocumentRead",
    "KnowledgeBaseCreate",
    "KnowledgeBasePage",
    "KnowledgeBaseRead",
    "KnowledgeBaseUpdate",
    "SearchHit",
    "SearchQuery",
    "SearchResult",
]

NAME_MAX = 200
DESCRIPTION_MAX = 5000


class KnowledgeBaseCreate(BaseModel):
    """A new knowledge base; its embedder is fixed from now on."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_MAX, description="Knowledge base name.")
    description: str = Field(default="", max_length=DESCRIPTION_MAX, description="What it holds.")
    hybrid_dense_weight: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Hybrid search's weight of meaning (dense search) against words (BM25), 0 to 1; "
            "empty: the server's default (knowledge.hybrid_dense_weight)."
        ),
    )
    embedder_provider: Literal["minilm", "openai", "ollama"] | None = Field(
        default=None,
        description=(
            "minilm (built in), openai (OpenAI-compatible endpoint) or ollama; empty: the "
            "server's default embedder."
        ),
    )
    embedder_model: str | None = Field(
        default=None, max_length=200, description="Embedding model id; empty: the default."
    )
    credential_id: uuid.UUID | None = Field(
        default=None,
        description=(
            "A workspace credential for a remote embedder, of the provider's kind: openai (key, "
            "URL) or ollama (URL, optional gateway key). Empty: the server's settings."
        ),
    )


class KnowledgeBaseUpdate(BaseModel):
    """Changes to a knowledge base; the embedder cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX)
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    hybrid_dense_weight: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "Hybrid search's weight of meaning (dense search) against words (BM25), 0 to 1; "
            "empty: the server's default (knowledge.hybrid_dense_weight)."
        ),
    )


class KnowledgeBaseRead(BaseModel):
    """A knowledge base with its recorded embedder and document counts."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str
    embedder_provider: str
    embedder_model: str
    embedder_dimension: int
    credential_id: uuid.UUID | None
    hybrid_dense_weight: float | None = Field(
        description="Its own weight of dense search in hybrid search; null: the default."
    )
    documents: int = Field(description="Documents in the base, whatever their status.")
    ready_documents: int = Field(description="Documents ready to be searched.")
    chunks: int = Field(description="Chunks of the ready documents.")
    created_at: datetime
    updated_at: datetime


class KnowledgeBasePage(BaseModel):
    """One page of knowledge bases."""

    items: list[KnowledgeBaseRead]
    total: int
    limit: int
    offset: int


class DocumentRead(BaseModel):
    """An uploaded document and where its ingestion stands."""

    id: uuid.UUID
    knowledge_base_id: uuid.UUID
    filename: str
    content_type: str
    size: int = Field(description="Bytes.")
    sha256: str
    status: DocumentStatus = Field(description="pending, processing, ready or failed.")
    error: str | None = Field(description="Why ingestion failed (status failed).")
    chunks_total: int = Field(description="Chunks the document was split into (0 until known).")
    chunks_done: int = Field(description="Chunks embedded and stored so far.")
    replaces_id: uuid.UUID | None = Field(
        description="The document with the same name this one replaces once it is ready."
    )
    created_at: datetime
    updated_at: datetime


class DocumentPage(BaseModel):
    """One page of documents, newest first."""

    items: list[DocumentRead]
    total: int
    limit: int
    offset: int


class SearchQuery(BaseModel):
    """A query to try against a knowledge base."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2000, description="The question.")
    k: int = Field(default=4, ge=1, le=50, description="How many chunks to return.")


class SearchHit(BaseModel):
    """One chunk found."""

    document_id: uuid.UUID | None = Field(description="The document the chunk is from.")
    filename: str = Field(description="The document's name.")
    chunk: int = Field(description="Position of the chunk in its document (0-based).")
    section: str = Field(description="Headings the chunk sits under, joined with ' > '.")
    text: str
    score: float = Field(description="Reciprocal-rank-fusion score of dense and BM25 search.")


class SearchResult(BaseModel):
    """Chunks found for a query, best first."""

    query: str
    hits: list[SearchHit]
