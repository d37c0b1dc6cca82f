"""Knowledge bases over HTTP: uploads to S3 on loopback, ingestion, search, limits and roles."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.knowledge import (
    IngestContext,
    IngestWorker,
    MiniLMEmbeddings,
    chunk_prefix,
    open_store,
    set_ingest_context,
    split_markdown,
)
from tests.api.conftest import Team, api_settings, make_team
from tests.fixtures.documents import (
    make_binary,
    make_corrupt_pdf,
    make_csv,
    make_docx,
    make_html,
    make_pdf,
)
from tests.fixtures.embedders import CountingEmbeddings
from tests.fixtures.llm_server import LOOPBACK_ALLOWED
from tests.fixtures.s3 import S3Server, s3, s3_endpoint  # noqa: F401 - fixtures

PDF = "application/pdf"


class Harness:
    """The app, its knowledge context, the embedder's counters, and a team."""

    def __init__(self, client: httpx.AsyncClient, context: IngestContext, team: Team) -> None:
        self.client = client
        self.context = context
        self.team = team
        self.embedder: CountingEmbeddings = context.counting  # type: ignore[attr-defined]
        self.bases = f"/api/workspaces/{team.workspace_id}/knowledge-bases"

    async def create_base(self, name: str = "Help centre") -> str:
        answer = await self.client.post(
            self.bases, json={"name": name}, headers=self.team.editor.headers
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def upload(
        self, base_id: str, filename: str, data: bytes, *, who: str = "editor"
    ) -> httpx.Response:
        return await self.client.post(
            f"{self.bases}/{base_id}/documents",
            files={"file": (filename, data, "application/octet-stream")},
            headers=self.team.by_role(who).headers,
        )

    async def documents(self, base_id: str) -> dict[str, dict[str, Any]]:
        answer = await self.client.get(
            f"{self.bases}/{base_id}/documents", headers=self.team.viewer.headers
        )
        assert answer.status_code == 200, answer.text
        return {doc["filename"]: doc for doc in answer.json()["items"]}

    async def search(self, base_id: str, query: str, *, who: str = "viewer") -> httpx.Response:
        return await self.client.post(
            f"{self.bases}/{base_id}/search",
            json={"query": query, "k": 3},
            headers=self.team.by_role(who).headers,
        )

    async def store_count(self, base_id: str, prefix: str | None = None) -> int:
        from socialflow.knowledge import KnowledgeBase

        async with self.context.db.sessionmaker() as session:
            base = await session.get(KnowledgeBase, uuid.UUID(base_id))
        assert base is not None
        return (await self.context.store(base)).count(prefix)


@pytest.fixture
async def harness(
    db: Any,
    test_registry: Any,
    s3: S3Server,  # noqa: F811
    tmp_path: Path,
) -> AsyncIterator[Harness]:
    settings = api_settings(
        db.url,
        data_dir=tmp_path,
        knowledge={**s3.knowledge_settings(), "embed_batch_size": 8},
        # model servers of credentials run on loopback here, allowed as an operator would
        http=LOOPBACK_ALLOWED,
    )
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    embedder = CountingEmbeddings(MiniLMEmbeddings.shared())
    context = IngestContext(settings=settings, db=db, embeddings=lambda _base: embedder)
    context.counting = embedder  # type: ignore[attr-defined]
    app.state.knowledge = context
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Harness(client, context, await make_team(client))
    set_ingest_context(None)


async def drain(harness: Harness) -> int:
    return await IngestWorker(harness.context).drain()


@pytest.mark.prefect
async def test_four_formats_on_s3_become_searchable_and_delete_removes_everything(
    harness: Harness,
    s3: S3Server,  # noqa: F811
) -> None:
    base_id = await harness.create_base()
    files = {
        "refunds.pdf": make_pdf(["Refund policy", "Refunds are paid back within 14 days."]),
        "shipping.docx": make_docx("Shipping", ["Parcels are shipped by courier every Tuesday."]),
        "hours.html": make_html("Opening hours", ["The shop opens at 9 am on Saturdays."]),
        "prices.csv": make_csv(["product", "price"], [["blue mug", "12 euros"], ["tea", "4"]]),
    }
    for filename, data in files.items():
        answer = await harness.upload(base_id, filename, data)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "pending"
    assert len(s3.keys(f"uploads/{base_id.replace('-', '')}/")) == 4
    # stored under generated names, never the upload's
    assert not any(key.endswith(tuple(files)) for key in s3.keys())

    assert await drain(harness) == 4
    docs = await harness.documents(base_id)
    for filename in files:
        doc = docs[filename]
        assert doc["status"] == "ready", doc
        assert doc["chunks_total"] == doc["chunks_done"] > 0
        assert (
            await harness.store_count(base_id, chunk_prefix(doc["sha256"])) == doc["chunks_total"]
        )

    for query, expected in (
        ("When does the shop open on Saturday?", "hours.html"),
        ("How much does the blue mug cost?", "prices.csv"),
        ("How long until I get my money back?", "refunds.pdf"),
        ("Which day are parcels sent by courier?", "shipping.docx"),
    ):
        answer = await harness.search(base_id, query)
        assert answer.status_code == 200, answer.text
        hits = answer.json()["hits"]
        assert hits[0]["filename"] == expected, (query, hits)
        assert hits[0]["document_id"] == docs[expected]["id"]

    shipping = docs["shipping.docx"]
    total = await harness.store_count(base_id)
    deleted = await harness.client.delete(
        f"{harness.bases}/{base_id}/documents/{shipping['id']}", headers=harness.team.editor.headers
    )
    assert deleted.status_code == 204, deleted.text
    assert await harness.store_count(base_id, chunk_prefix(shipping["sha256"])) == 0
    assert await harness.store_count(base_id) == total - shipping["chunks_total"]
    assert len(s3.keys(f"uploads/{base_id.replace('-', '')}/")) == 3
    assert "shipping.docx" not in await harness.documents(base_id)

    base = await harness.client.get(
        f"{harness.bases}/{base_id}", headers=harness.team.viewer.headers
    )
    assert base.json()["ready_documents"] == 3
    assert base.json()["embedder_model"] == "all-MiniLM-L6-v2"
    assert base.json()["embedder_dimension"] == 384

    gone = await harness.client.delete(
        f"{harness.bases}/{base_id}", headers=harness.team.editor.headers
    )
    assert gone.status_code == 204
    assert s3.keys(f"uploads/{base_id.replace('-', '')}/") == []
    assert (
        await harness.client.get(f"{harness.bases}/{base_id}", headers=harness.team.viewer.headers)
    ).status_code == 404
    store = open_store(harness.context.settings, namespace=base_id, embeddings=harness.embedder)
    assert store.count() == 0


@pytest.mark.prefect
async def test_size_and_type_limits(harness: Harness, s3: S3Server) -> None:  # noqa: F811
    base_id = await harness.create_base()

    too_big = await harness.upload(base_id, "huge.pdf", b"%PDF-1.4\n" + bytes(30_000_000))
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["code"] == "payload_too_large"
    # the service checks the real size too, below the framing allowance of the middleware
    harness.context.settings.knowledge.max_upload_bytes = 2_000
    over = await harness.upload(base_id, "notes.txt", b"word " * 2_000)
    assert over.status_code == 413, over.text
    assert over.json()["details"]["max_bytes"] == 2_000
    harness.context.settings.knowledge.max_upload_bytes = 25_000_000

    renamed = await harness.upload(base_id, "invoice.pdf", make_binary())
    assert renamed.status_code == 422, renamed.text
    problem = renamed.json()["details"]["problems"][0]
    assert problem["field"] == "body.file" and problem["type"] == "not_a_pdf"
    assert "not a PDF" in renamed.json()["message"]
    assert s3.keys() == []
    assert await harness.documents(base_id) == {}

    corrupt = await harness.upload(base_id, "broken.pdf", make_corrupt_pdf())
    assert corrupt.status_code == 202
    good = await harness.upload(base_id, "faq.md", b"# Returns\n\nReturns are free for members.")
    assert good.status_code == 202
    await drain(harness)
    docs = await harness.documents(base_id)
    assert docs["broken.pdf"]["status"] == "failed"
    assert docs["broken.pdf"]["error"].startswith("could not read the pdf document: ")
    assert docs["faq.md"]["status"] == "ready"
    hits = (await harness.search(base_id, "Are returns free?")).json()["hits"]
    assert hits[0]["filename"] == "faq.md"
    assert hits[0]["section"] == "Returns"


@pytest.mark.prefect
async def test_reupload_unchanged_does_nothing_and_changed_replaces(
    harness: Harness,
    s3: S3Server,  # noqa: F811
) -> None:
    base_id = await harness.create_base()
    first = await harness.upload(base_id, "faq.md", b"# Delivery\n\nDelivery takes two days.")
    assert first.status_code == 202
    await drain(harness)
    embedded = harness.embedder.documents
    chunks = await harness.store_count(base_id)
    assert embedded > 0 and chunks > 0

    again = await harness.upload(base_id, "faq.md", b"# Delivery\n\nDelivery takes two days.")
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert await drain(harness) == 0
    assert harness.embedder.documents == embedded
    assert await harness.store_count(base_id) == chunks
    assert len(s3.keys(f"uploads/{base_id.replace('-', '')}/")) == 1

    changed = await harness.upload(base_id, "faq.md", b"# Delivery\n\nDelivery now takes a week.")
    assert changed.status_code == 202
    assert changed.json()["replaces_id"] == first.json()["id"]
    # until the new one is ready, the old one still answers
    assert await harness.store_count(base_id, chunk_prefix(first.json()["sha256"])) == chunks
    await drain(harness)
    docs = await harness.documents(base_id)
    assert list(docs) == ["faq.md"] and docs["faq.md"]["id"] == changed.json()["id"]
    assert await harness.store_count(base_id, chunk_prefix(first.json()["sha256"])) == 0
    assert await harness.store_count(base_id) == docs["faq.md"]["chunks_total"]
    assert harness.embedder.documents > embedded
    assert len(s3.keys(f"uploads/{base_id.replace('-', '')}/")) == 1


@pytest.mark.prefect
async def test_viewers_list_and_search_but_cannot_change(harness: Harness) -> None:
    base_id = await harness.create_base()
    uploaded = await harness.upload(base_id, "a.txt", b"Members get free returns.")
    await drain(harness)
    doc_id = uploaded.json()["id"]

    listed = await harness.client.get(harness.bases, headers=harness.team.viewer.headers)
    assert [b["id"] for b in listed.json()["items"]] == [base_id]
    assert (await harness.search(base_id, "free returns")).status_code == 200
    refused = await harness.upload(base_id, "b.txt", b"hello", who="viewer")
    assert refused.status_code == 403
    assert refused.json()["details"]["required_role"] == "editor"
    for url in (f"{harness.bases}/{base_id}/documents/{doc_id}", f"{harness.bases}/{base_id}"):
        answer = await harness.client.delete(url, headers=harness.team.viewer.headers)
        assert answer.status_code == 403
    created = await harness.client.post(
        harness.bases, json={"name": "Mine"}, headers=harness.team.viewer.headers
    )
    assert created.status_code == 403
    # another workspace sees nothing
    other = f"/api/workspaces/{harness.team.other_workspace_id}/knowledge-bases/{base_id}"
    assert (
        await harness.client.get(other, headers=harness.team.outsider.headers)
    ).status_code == 404


@pytest.mark.prefect
async def test_progress_is_visible_while_a_worker_ingests(harness: Harness) -> None:
    harness.context.settings.knowledge.embed_batch_size = 2
    harness.context.settings.knowledge.chunk_size = 100
    harness.context.settings.knowledge.chunk_overlap = 0
    release = threading.Event()
    calls: list[int] = []
    inner = harness.embedder.embed_documents

    def gated(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        if len(calls) == 2:
            release.wait(60)  # hold the second batch until the test has looked
        return inner(texts)

    harness.embedder.embed_documents = gated  # type: ignore[method-assign]
    base_id = await harness.create_base()
    text = "\n\n".join(
        f"Paragraph {n} talks about topic number {n} at great length." for n in range(5)
    )
    expected = len(split_markdown(text, chunk_size=100, chunk_overlap=0))
    assert expected == 5
    uploaded = await harness.upload(base_id, "long.txt", text.encode())
    url = f"{harness.bases}/{base_id}/documents/{uploaded.json()['id']}"

    worker = IngestWorker(harness.context, poll_interval=0.05)
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        seen: dict[str, Any] = {}
        for _ in range(1200):
            seen = (await harness.client.get(url, headers=harness.team.viewer.headers)).json()
            if seen["chunks_done"] == 2:
                break
            await asyncio.sleep(0.05)
        assert seen["status"] == "processing", seen
        assert (seen["chunks_done"], seen["chunks_total"]) == (2, expected)
        release.set()
        for _ in range(1200):
            seen = (await harness.client.get(url, headers=harness.team.viewer.headers)).json()
            if seen["status"] != "processing":
                break
            await asyncio.sleep(0.05)
        assert seen["status"] == "ready" and seen["chunks_done"] == 5, seen
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(running, 60)


@pytest.mark.prefect
async def test_a_base_embeds_with_an_ollama_credential(harness: Harness) -> None:
    from tests.fixtures.llm_server import embed, serve_llm

    harness.context.embeddings = None  # the base's own embedder, built from its credential
    with serve_llm(api_key="gateway-token") as llm:
        credentials = f"/api/workspaces/{harness.team.workspace_id}/credentials"
        created = await harness.client.post(
            credentials,
            json={
                "name": "Local Ollama",
                "kind": "ollama",
                "secret": {"base_url": llm.ollama_url, "api_key": "gateway-token"},
            },
            headers=harness.team.admin.headers,
        )
        assert created.status_code == 201, created.text
        openai = await harness.client.post(
            credentials,
            json={"name": "OpenAI", "kind": "openai", "secret": {"api_key": "sk-test-key"}},
            headers=harness.team.admin.headers,
        )
        assert openai.status_code == 201, openai.text

        # the credential must be of the provider's kind, and minilm takes none
        for provider, credential, expected in (
            ("ollama", openai.json()["id"], "credential_not_found"),
            ("openai", created.json()["id"], "credential_not_found"),
            ("minilm", created.json()["id"], "credential_not_allowed"),
        ):
            refused = await harness.client.post(
                harness.bases,
                json={"name": "x", "embedder_provider": provider, "credential_id": credential},
                headers=harness.team.editor.headers,
            )
            assert refused.status_code == 422, refused.text
            problem = refused.json()["details"]["problems"][0]
            assert (problem["field"], problem["type"]) == ("body.credential_id", expected)

        answer = await harness.client.post(
            harness.bases,
            json={
                "name": "Local",
                "embedder_provider": "ollama",
                "embedder_model": "scripted-embed",
                "credential_id": created.json()["id"],
            },
            headers=harness.team.editor.headers,
        )
        assert answer.status_code == 201, answer.text
        base = answer.json()
        assert (base["embedder_provider"], base["embedder_model"]) == ("ollama", "scripted-embed")
        assert base["embedder_dimension"] == len(embed("x")) == 64  # measured, not assumed

        uploaded = await harness.upload(base["id"], "faq.md", b"# Returns\n\nReturns are free.")
        assert uploaded.status_code == 202, uploaded.text
        await drain(harness)
        docs = await harness.documents(base["id"])
        assert docs["faq.md"]["status"] == "ready", docs
        hits = (await harness.search(base["id"], "are returns free")).json()["hits"]
        assert hits[0]["filename"] == "faq.md"
        embedded = [r for r in llm.requests if r["path"] == "/api/embed"]
        assert len(embedded) >= 3  # the probe, the chunks, the query
        assert {r["headers"].get("authorization") for r in embedded} == {"Bearer gateway-token"}

        # a model the server has not pulled is a user error at creation, nothing is created
        missing = await harness.client.post(
            harness.bases,
            json={
                "name": "Missing",
                "embedder_provider": "ollama",
                "embedder_model": "no-such-model",
                "credential_id": created.json()["id"],
            },
            headers=harness.team.editor.headers,
        )
        assert missing.status_code == 400, missing.text
        assert missing.json()["code"] == "embedder_unavailable"
        assert "not found, try pulling it first" in missing.json()["message"]
        listed = await harness.client.get(harness.bases, headers=harness.team.viewer.headers)
        assert [b["name"] for b in listed.json()["items"]] == ["Local"]


async def test_a_chunked_upload_is_cut_off_at_the_limit(
    harness: Harness,
    s3: S3Server,  # noqa: F811
) -> None:
    base_id = await harness.create_base()
    limit = harness.context.settings.knowledge.max_upload_bytes
    boundary = "socialflow-test-boundary"
    sent: list[int] = []

    async def body(size: int) -> AsyncIterator[bytes]:
        # no Content-Length: httpx sends a generator with chunked transfer encoding
        yield (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="huge.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n%PDF-1.4\n"
        ).encode()
        block = bytes(256 * 1024)
        for _ in range(size // len(block)):
            sent.append(len(block))
            yield block
        yield f"\r\n--{boundary}--\r\n".encode()

    def upload(size: int) -> Any:
        return harness.client.post(
            f"{harness.bases}/{base_id}/documents",
            content=body(size),
            headers={
                **harness.team.editor.headers,
                "content-type": f"multipart/form-data; boundary={boundary}",
            },
        )

    answer = await upload(limit + 8_000_000)
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "payload_too_large"
    assert answer.json()["details"] == {"field": "file", "max_bytes": limit}
    # reading stopped just past the limit and its framing allowance: the rest was never pulled
    assert limit < sum(sent) <= limit + 64_000 + 256 * 1024
    assert s3.keys() == []
    assert await harness.documents(base_id) == {}

    sent.clear()
    harness.context.settings.knowledge.max_upload_bytes = 2_000_000
    small = await upload(1_000_000)  # chunked and within the limit: accepted
    assert small.status_code == 202, small.text
    assert small.json()["size"] == len("%PDF-1.4\n") + sum(sent)
    # leave no pending document behind for the workers of other tests
    removed = await harness.client.delete(
        f"{harness.bases}/{base_id}/documents/{small.json()['id']}",
        headers=harness.team.editor.headers,
    )
    assert removed.status_code == 204

    missing = await harness.client.post(
        f"{harness.bases}/{base_id}/documents",
        files={"attachment": ("a.txt", b"hello", "text/plain")},
        headers=harness.team.editor.headers,
    )
    assert missing.status_code == 422, missing.text
    assert missing.json()["details"]["problems"][0]["field"] == "body.file"
    not_multipart = await harness.client.post(
        f"{harness.bases}/{base_id}/documents",
        json={"file": "hello"},
        headers=harness.team.editor.headers,
    )
    assert not_multipart.status_code == 422, not_multipart.text
    assert "multipart/form-data" in not_multipart.json()["message"]
