"""Tables of the knowledge module: knowledge bases and the documents uploaded to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.db import Base, utcnow

__all__ = ["Document", "DocumentStatus", "KnowledgeBase"]


class DocumentStatus(StrEnum):
    """Where a document stands in ingestion."""

    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class KnowledgeBase(Base):
    """A named collection of documents of one workspace; one vector-store namespace.

    The embedder (provider, model, dimension) is recorded at creation: every later insert and
    query must use the same one, since vectors of different models are not comparable.
    """

    __tablename__ = "knowledge_base"
    __table_args__ = (Index("ix_knowledge_base_workspace_name", "workspace_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    embedder_provider: Mapped[str] = mapped_column(String(20))
    embedder_model: Mapped[str] = mapped_column(String(200))
    embedder_dimension: Mapped[int] = mapped_column(Integer)
    #: hybrid search's weight of dense search; None: the server's ``hybrid_dense_weight``
    hybrid_dense_weight: Mapped[float | None] = mapped_column(default=None)
    # a workspace credential (openai or ollama kind, as the provider) for a remote embedder;
    # None: the settings' key and URL
    credential_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("credential.id", ondelete="SET NULL"), default=None
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Document(Base):
    """One uploaded file of a knowledge base and its ingestion state.

    ``stored_name`` is generated (the upload's filename never reaches the storage path);
    chunks in the vector store have ids ``{sha256}#{n}``, so the document's chunks are exactly
    those with the prefix ``{sha256}#``.
    """

    __tablename__ = "document"
    __table_args__ = (
        Index("ix_document_base_filename", "knowledge_base_id", "filename"),
        Index("ix_document_status_updated", "status", "updated_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    knowledge_base_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("knowledge_base.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(100), unique=True)
    storage_url: Mapped[str] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default=DocumentStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    # the document this upload replaces once it is ready (same filename, same base)
    replaces_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    prefect_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
