"""Knowledge test helpers: a deterministic hashed bag-of-words embedder (no model to load) and
rows for ingestion tests (a base, a stored pending document)."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from socialflow.api.workspaces.models import Workspace
from socialflow.knowledge import Document, IngestContext, KnowledgeBase


class HashEmbeddings(Embeddings):
    """Each word adds one to a hashed coordinate; texts sharing words are close.

    Picklable, so worker processes can rebuild it.
    """

    provider = "test"

    def __init__(self, dimension: int = 64, model_name: str = "hash-bow") -> None:
        self._dimension = dimension
        self.model_name = model_name

    @property
    def dimension(self) -> int:
        return self._dimension

    def _vector(self, text: str) -> list[float]:
        vector = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            vector[int.from_bytes(digest[:4], "big") % self._dimension] += 1.0
        vector[0] += 0.01  # never all-zero
        return vector.tolist()  # type: ignore[no-any-return]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


async def make_base(
    ctx: IngestContext, *, dimension: int = 64, model: str = "hash-bow"
) -> KnowledgeBase:
    """A workspace and a knowledge base recording a ``HashEmbeddings`` embedder."""
    async with ctx.db.sessionmaker() as session:
        workspace = Workspace(name="Acme")
        session.add(workspace)
        await session.flush()
        base = KnowledgeBase(
            workspace_id=workspace.id,
            name="Help centre",
            embedder_provider="test",
            embedder_model=model,
            embedder_dimension=dimension,
        )
        session.add(base)
        await session.commit()
    return base


async def add_document(
    ctx: IngestContext, base: KnowledgeBase, filename: str, data: bytes
) -> Document:
    """Store ``data`` and insert its pending ``document`` row, as an upload does."""
    stored_name = f"{base.id.hex}/{uuid.uuid4().hex}{Path(filename).suffix}"
    url = await ctx.objects.aput(io.BytesIO(data), stored_name)
    async with ctx.db.sessionmaker() as session:
        doc = Document(
            knowledge_base_id=base.id,
            workspace_id=base.workspace_id,
            filename=filename,
            stored_name=stored_name,
            storage_url=url,
            content_type="application/octet-stream",
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        session.add(doc)
        await session.commit()
    return doc


async def fetch(ctx: IngestContext, doc: Document) -> Document | None:
    """The document's row as it is now (None once deleted)."""
    async with ctx.db.sessionmaker() as session:
        return await session.get(Document, doc.id)
