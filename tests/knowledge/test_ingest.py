"""The ingestion flow and its queue, on each database, S3 on loopback and a real Prefect server."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from socialflow.core.db import utcnow
from socialflow.core.settings import Settings
from socialflow.knowledge import (
    Document,
    DocumentStatus,
    IngestContext,
    IngestWorker,
    ObjectStorage,
    chunk_prefix,
    ingest_document,
    set_ingest_context,
)
from tests.fixtures.documents import make_corrupt_pdf, make_csv, make_pdf
from tests.fixtures.embedders import CountingEmbeddings
from tests.fixtures.s3 import S3Server, s3, s3_endpoint  # noqa: F401 - fixtures
from tests.knowledge._helpers import HashEmbeddings, add_document, fetch, make_base


@pytest.fixture
async def context(db: Any, s3: S3Server, tmp_path: Path) -> AsyncIterator[IngestContext]:  # noqa: F811
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database={"url": db.url},
        knowledge={**s3.knowledge_settings(), "chunk_size": 200, "chunk_overlap": 20},
    )
    embedder = CountingEmbeddings(HashEmbeddings())
    ctx = IngestContext(settings=settings, db=db, embeddings=lambda _base: embedder)
    ctx.counting = embedder  # type: ignore[attr-defined]
    set_ingest_context(ctx)
    yield ctx
    set_ingest_context(None)


POLICY = [
    f"Refund rule {n}: money comes back within {n + 10} days of the return." for n in range(8)
]


@pytest.mark.prefect
async def test_a_pdf_on_s3_becomes_ready_with_its_chunks(
    context: IngestContext,
    s3: S3Server,  # noqa: F811
) -> None:
    base = await make_base(context)
    doc = await add_document(context, base, "policy.pdf", make_pdf(POLICY))
    assert s3.keys(f"uploads/{base.id.hex}/") == [f"uploads/{doc.stored_name}"]

    outcome = await ingest_document(str(doc.id))

    row = await fetch(context, doc)
    assert row is not None and row.status == DocumentStatus.READY, row and row.error
    assert outcome.chunks == row.chunks_total == row.chunks_done > 1
    store = await context.store(base)
    assert store.count(chunk_prefix(doc.sha256)) == row.chunks_total
    hits = store.hybrid_search("how many days until the refund for rule 3", k=2)
    assert hits and hits[0][0].metadata["document_id"] == str(doc.id)
    assert hits[0][0].metadata["filename"] == "policy.pdf"


@pytest.mark.prefect
async def test_the_flow_run_shows_in_prefect(context: IngestContext) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    base = await make_base(context)
    doc = await add_document(
        context, base, "prices.csv", make_csv(["item", "price"], [["mug", "9"]])
    )
    await ingest_document(str(doc.id))
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"ingest-{doc.id}"]))
        )
    assert len(runs) == 1
    assert runs[0].state is not None and runs[0].state.is_completed()


@pytest.mark.prefect
async def test_a_corrupt_pdf_fails_with_the_reason_and_the_base_stays_usable(
    context: IngestContext,
) -> None:
    base = await make_base(context)
    broken = await add_document(context, base, "broken.pdf", make_corrupt_pdf())
    good = await add_document(context, base, "good.pdf", make_pdf(POLICY[:2]))

    worker = IngestWorker(context)
    assert await worker.drain() == 2

    failed = await fetch(context, broken)
    assert failed is not None and failed.status == DocumentStatus.FAILED
    assert failed.error is not None and failed.error.startswith("could not read the pdf document")
    ready = await fetch(context, good)
    assert ready is not None and ready.status == DocumentStatus.READY
    store = await context.store(base)
    assert store.count() == ready.chunks_total > 0


@pytest.mark.prefect
async def test_unchanged_content_is_not_embedded_again(context: IngestContext) -> None:
    counting: CountingEmbeddings = context.counting  # type: ignore[attr-defined]
    base = await make_base(context)
    data = make_pdf(POLICY)
    first = await add_document(context, base, "policy.pdf", data)
    await ingest_document(str(first.id))
    embedded = counting.documents
    assert embedded > 0

    copy = await add_document(context, base, "policy-copy.pdf", data)
    outcome = await ingest_document(str(copy.id))

    assert outcome.reused and outcome.embedded == 0
    assert counting.documents == embedded
    row = await fetch(context, copy)
    assert row is not None and row.status == DocumentStatus.READY
    assert row.chunks_total == (await fetch(context, first)).chunks_total  # type: ignore[union-attr]


@pytest.mark.prefect
async def test_a_changed_file_replaces_the_old_one_once_ready(
    context: IngestContext,
    s3: S3Server,  # noqa: F811
) -> None:
    base = await make_base(context)
    old = await add_document(context, base, "policy.pdf", make_pdf(POLICY))
    await ingest_document(str(old.id))
    new = await add_document(context, base, "policy.pdf", make_pdf(["Refunds now take 90 days."]))
    store = await context.store(base)
    assert store.count(chunk_prefix(old.sha256)) > 0

    await ingest_document(str(new.id))

    assert await fetch(context, old) is None
    assert store.count(chunk_prefix(old.sha256)) == 0
    assert store.count() == store.count(chunk_prefix(new.sha256)) > 0
    assert s3.keys(f"uploads/{base.id.hex}/") == [f"uploads/{new.stored_name}"]


async def test_workers_claim_each_document_once(context: IngestContext) -> None:
    base = await make_base(context)
    docs = [
        await add_document(context, base, f"note-{n}.csv", make_csv(["n"], [[str(n)]]))
        for n in range(4)
    ]
    first, second = IngestWorker(context), IngestWorker(context)
    # other tests share the database: claim more than ours, both at once
    claimed = await asyncio.gather(first.claim(50), second.claim(50))
    ours = {doc.id for doc in docs}
    mine = [i for i in claimed[0] + claimed[1] if i in ours]
    assert len(mine) == len(set(mine)) == 4
    async with context.db.sessionmaker() as session:
        statuses = set(await session.scalars(select(Document.status).where(Document.id.in_(ours))))
    assert statuses == {DocumentStatus.PROCESSING}


async def test_a_lapsed_claim_is_taken_over_and_given_up_after_max_attempts(
    context: IngestContext,
) -> None:
    base = await make_base(context)
    doc = await add_document(context, base, "notes.csv", make_csv(["a"], [["b"]]))
    worker = IngestWorker(context, lease_seconds=60, max_attempts=2)
    assert doc.id in await worker.claim(10)
    assert doc.id not in await worker.claim(10)  # the claim holds

    async def lapse() -> None:
        async with context.db.sessionmaker() as session:
            await session.execute(
                update(Document)
                .where(Document.id == doc.id)
                .values(claimed_at=utcnow() - timedelta(minutes=5))
            )
            await session.commit()

    await lapse()
    assert doc.id in await worker.claim(10)  # a dead worker's claim is taken over
    await lapse()
    assert doc.id not in await worker.claim(10)
    row = await fetch(context, doc)
    assert row is not None and row.status == DocumentStatus.FAILED
    assert row.attempts == 2 and "gave up after 2 attempts" in (row.error or "")


@pytest.mark.prefect
async def test_the_worker_loop_ingests_what_is_queued(context: IngestContext) -> None:
    base = await make_base(context)
    worker = IngestWorker(context, poll_interval=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        doc = await add_document(context, base, "faq.csv", make_csv(["q", "a"], [["open?", "yes"]]))
        worker.poke()
        for _ in range(400):
            row = await fetch(context, doc)
            if row is not None and row.status in (DocumentStatus.READY, DocumentStatus.FAILED):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(running, 60)
    assert row is not None and row.status == DocumentStatus.READY, row and row.error


def test_local_storage_round_trip(tmp_path: Path) -> None:
    storage = ObjectStorage(str(tmp_path / "uploads"))
    url = storage.put(io.BytesIO(b"hello"), "kb/abc.txt")
    assert url == (tmp_path / "uploads" / "kb" / "abc.txt").resolve().as_uri()
    assert storage.read(url) == b"hello" and storage.exists(url)
    storage.delete(url)
    storage.delete(url)  # twice is fine
    assert not storage.exists(url)
    with pytest.raises(ValueError, match="safe"):
        storage.url_for("../escape")


@pytest.mark.prefect
async def test_a_plain_text_article_gives_every_chunk_its_title_as_context(
    context: IngestContext,
) -> None:
    counting: CountingEmbeddings = context.counting  # type: ignore[attr-defined]
    base = await make_base(context)
    title = "How to skip a delivery week"
    body = " ".join(f"Step {n}: open the app and pick a card before the cutoff." for n in range(12))
    doc = await add_document(context, base, "hb-001.txt", f"{title}\n\n{body}\n".encode())

    outcome = await ingest_document(str(doc.id))

    assert outcome.chunks > 2 and counting.documents == outcome.chunks
    store = await context.store(base)
    chunks = store.get_by_ids([f"{chunk_prefix(doc.sha256)}{n}" for n in range(outcome.chunks)])
    assert chunks[0].page_content.startswith(title)
    assert chunks[0].metadata["context"] == ""
    for chunk in chunks[1:]:
        assert title not in chunk.page_content  # shown as the document has it
        assert chunk.metadata["context"] == title and chunk.metadata["title"] == title
    # the title's words find every chunk of the article, not only the first
    found = {d.id for d, _ in store.keyword_search("skip delivery week", k=20)}
    assert found == {d.id for d in chunks}


@pytest.mark.prefect
async def test_chunks_stored_before_chunk_context_are_embedded_anew_on_upload(
    context: IngestContext,
) -> None:
    counting: CountingEmbeddings = context.counting  # type: ignore[attr-defined]
    base = await make_base(context)
    data = ("Gift cards\n\n" + "They never expire and are used before your card. " * 10).encode()
    first = await add_document(context, base, "gift-cards.txt", data)
    done = await ingest_document(str(first.id))
    store = await context.store(base)
    ids = [f"{chunk_prefix(first.sha256)}{n}" for n in range(done.chunks)]
    # what an older version stored: the same ids, no context field
    old = store.get_by_ids(ids)
    store.add_texts(
        [d.page_content for d in old],
        [{k: v for k, v in d.metadata.items() if k != "context"} for d in old],
        ids=ids,
    )
    assert all("context" not in d.metadata for d in store.get_by_ids(ids))
    embedded = counting.documents

    again = await add_document(context, base, "gift-cards.txt", data)
    outcome = await ingest_document(str(again.id))

    assert not outcome.reused and outcome.embedded == done.chunks
    assert counting.documents == embedded + done.chunks
    assert all(d.metadata["context"] in ("", "Gift cards") for d in store.get_by_ids(ids))
    assert store.count() == done.chunks
    assert (await fetch(context, again)).status == DocumentStatus.READY  # type: ignore[union-attr]
