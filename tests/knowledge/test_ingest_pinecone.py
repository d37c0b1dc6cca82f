"""Ingestion end to end with ``vector_store=pinecone``: documents on S3 on loopback, the worker
and the flow, the real pinecone SDK against the emulator, checked from its request log."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from socialflow.core.settings import Settings
from socialflow.knowledge import (
    Document,
    DocumentStatus,
    IngestContext,
    IngestWorker,
    KnowledgeBase,
    chunk_prefix,
    ingest_document,
    remove_document_data,
    set_ingest_context,
)
from tests.fixtures.documents import make_csv, make_docx, make_html, make_pdf
from tests.fixtures.embedders import CountingEmbeddings
from tests.fixtures.pinecone_emulator import MAX_REQUEST_BYTES, LoggedRequest, pinecone_emulator
from tests.fixtures.s3 import S3Server, s3, s3_endpoint  # noqa: F401 - fixtures
from tests.knowledge._helpers import HashEmbeddings, add_document, fetch, make_base

KEY = "test-pinecone-key"
#: OpenAI's text-embedding-3-small size: 100 such records with their text pass 2 MB as JSON
DIM = 1536
META_ID = "__socialflow__embedder"


class DenseHashEmbeddings(HashEmbeddings):
    """Bag-of-words vectors with a small per-text jitter on every coordinate, so each value
    serialises as a long float, as real embeddings do (and requests grow to real sizes)."""

    def _vector(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        jitter = np.random.default_rng(seed).uniform(-1e-3, 1e-3, self.dimension)
        return (np.asarray(super()._vector(text)) + jitter).tolist()  # type: ignore[no-any-return]


@pytest.fixture
def emulator() -> Iterator[Any]:
    with pinecone_emulator(dimension=DIM, api_key=KEY) as server:
        yield server


@pytest.fixture
async def context(
    db: Any,
    s3: S3Server,  # noqa: F811
    emulator: Any,
    tmp_path: Path,
) -> AsyncIterator[IngestContext]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database={"url": db.url},
        knowledge={
            **s3.knowledge_settings(),
            "vector_store": "pinecone",
            "pinecone_api_key": KEY,
            "pinecone_index_host": emulator.url,
            "pinecone_batch_size": 100,
            # one store call gets more than a Pinecone request may carry: the store splits
            "embed_batch_size": 250,
            "chunk_size": 300,
            "chunk_overlap": 30,
        },
    )
    embedder = CountingEmbeddings(DenseHashEmbeddings(DIM, "dense-hash"))
    ctx = IngestContext(settings=settings, db=db, embeddings=lambda _base: embedder)
    ctx.counting = embedder  # type: ignore[attr-defined]
    set_ingest_context(ctx)
    yield ctx
    set_ingest_context(None)


def _requests(emulator: Any, path: str | None = None) -> list[LoggedRequest]:
    return [r for r in emulator.requests if path is None or r.path == path]


def _stored(emulator: Any, base: KnowledgeBase) -> set[str]:
    with emulator.index.lock:
        return set(emulator.index.namespaces.get(str(base.id), {}))


def _catalogue() -> bytes:
    rows = [[f"article {n}", f"teal widget model {n}", f"{n + 3} euros"] for n in range(800)]
    return make_csv(["item", "description", "price"], rows)


FILES = {
    "refunds.pdf": make_pdf(["Refund policy", "Refunds are paid back within 14 days."]),
    "shipping.docx": make_docx("Shipping", ["Parcels are shipped by courier every Tuesday."]),
    "hours.html": make_html("Opening hours", ["The shop opens at 9 am on Saturdays."]),
    "catalogue.csv": _catalogue(),
}


@pytest.mark.prefect
async def test_ingestion_into_pinecone_batches_namespaces_search_and_delete(
    context: IngestContext, emulator: Any
) -> None:
    counting: CountingEmbeddings = context.counting  # type: ignore[attr-defined]
    base = await make_base(context, dimension=DIM, model="dense-hash")
    docs = {name: await add_document(context, base, name, data) for name, data in FILES.items()}

    # PostgreSQL is shared with other test processes: the worker may also claim theirs
    assert await IngestWorker(context).drain() >= len(FILES)

    rows = {name: await fetch(context, doc) for name, doc in docs.items()}
    for name, row in rows.items():
        assert row is not None and row.status == DocumentStatus.READY, (name, row and row.error)
        assert row.chunks_total == row.chunks_done > 0
    total = sum(row.chunks_total for row in rows.values() if row)
    catalogue = rows["catalogue.csv"]
    assert catalogue is not None and catalogue.chunks_total > 100

    namespace = str(base.id)
    upserts = _requests(emulator, "/vectors/upsert")
    assert all(r.vectors <= 100 and r.size < MAX_REQUEST_BYTES for r in upserts), [
        (r.vectors, r.size) for r in upserts
    ]
    ours = tuple(chunk_prefix(row.sha256) for row in rows.values() if row)
    assert all(r.namespace == namespace for r in upserts if any(i.startswith(ours) for i in r.ids))
    mine = [r for r in upserts if r.namespace == namespace]
    assert sum(r.vectors for r in mine) == total + 1  # every chunk once, and the embedder
    # 100 records of 1,536 dims weigh more than 2 MB: the byte budget split them, not the count
    assert max(r.vectors for r in mine) < 100
    assert max(r.size for r in mine) > MAX_REQUEST_BYTES // 2
    assert None not in {r.namespace for r in emulator.requests if r.path != "/describe_index_stats"}
    stored = _stored(emulator, base)
    for name, row in rows.items():
        assert row is not None
        expected = {f"{row.sha256}#{n}" for n in range(row.chunks_total)}
        assert {i for i in stored if i.startswith(chunk_prefix(row.sha256))} == expected, name

    store = await context.store(base)
    asked = len(emulator.requests)
    for query, expected_name in (
        ("when does the shop open on saturdays", "hours.html"),
        ("how many days until refunds are paid back", "refunds.pdf"),
        ("which day are parcels shipped by courier", "shipping.docx"),
        ("price of the teal widget model 217", "catalogue.csv"),
    ):
        hits = await store.ahybrid_search(query, k=3)
        assert hits and hits[0][0].metadata["filename"] == expected_name, (query, hits[:1])
        assert hits[0][0].metadata["document_id"] == str(docs[expected_name].id)

    queries = [r for r in emulator.requests[asked:] if r.path == "/query"]
    assert queries and {r.namespace for r in queries} == {namespace}

    shipping = rows["shipping.docx"]
    assert shipping is not None
    before = _stored(emulator, base)
    await remove_document_data(context, base, shipping)
    after = _stored(emulator, base)
    assert before - after == {f"{shipping.sha256}#{n}" for n in range(shipping.chunks_total)}
    assert META_ID in after and len(after) == total + 1 - shipping.chunks_total
    deleted = [r for r in _requests(emulator, "/vectors/delete") if r.namespace == namespace]
    assert deleted
    assert all(i.startswith(chunk_prefix(shipping.sha256)) for r in deleted for i in r.ids)
    assert counting.documents == total


@pytest.mark.prefect
async def test_unchanged_content_and_deletes_do_not_wait_for_pinecone_listing(
    context: IngestContext, emulator: Any
) -> None:
    # serverless Pinecone lists a record only a while after it is written
    emulator.index.list_lag = True
    counting: CountingEmbeddings = context.counting  # type: ignore[attr-defined]
    base = await make_base(context, dimension=DIM, model="dense-hash")
    data = FILES["catalogue.csv"]
    first = await add_document(context, base, "catalogue.csv", data)
    await ingest_document(str(first.id))
    row = await fetch(context, first)
    assert row is not None and row.status == DocumentStatus.READY
    assert (await context.store(base)).count(chunk_prefix(row.sha256)) == 0  # not listed yet
    embedded, upserts = counting.documents, len(_requests(emulator, "/vectors/upsert"))

    copy = await add_document(context, base, "catalogue-copy.csv", data)
    outcome = await ingest_document(str(copy.id))
    again = await ingest_document(str(first.id))

    assert outcome.reused and outcome.embedded == 0 and outcome.chunks == row.chunks_total
    assert again.reused and again.embedded == 0
    assert counting.documents == embedded
    assert len(_requests(emulator, "/vectors/upsert")) == upserts
    copied = await fetch(context, copy)
    assert copied is not None and copied.status == DocumentStatus.READY
    assert copied.chunks_total == row.chunks_total

    # the copy goes, the chunks stay for the first; then the first goes, and every chunk too
    await remove_document_data(context, base, copied)
    assert len(_stored(emulator, base)) == row.chunks_total + 1
    async with context.db.sessionmaker() as session:
        await session.delete(await session.get(Document, copied.id))
        await session.commit()
    await remove_document_data(context, base, row)
    assert _stored(emulator, base) == {META_ID}
