"""The retrieval gateway: workspace isolation, the base's own embedder, relevance threshold."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from socialflow.core.credentials import Credential, key_wrapper, parse_secret, seal_credential
from socialflow.core.errors import NotFoundError, UserError
from socialflow.core.settings import Settings
from socialflow.knowledge import (
    EmbedderMismatchError,
    KnowledgeBase,
    MiniLMEmbeddings,
    StoreCache,
    WorkspaceRetriever,
    get_embeddings,
    open_store,
)
from tests.fixtures.llm_server import allowing_loopback, serve_llm
from tests.knowledge._helpers import HashEmbeddings

FAQ = [
    ("Our shop opens at 9 am and closes at 6 pm, Monday to Saturday.", "hours.md"),
    ("Returns are accepted within 30 days with the receipt; refunds take 5 days.", "returns.md"),
    ("Shipping to Portugal and Spain is free for orders above 50 euros.", "shipping.md"),
    ("Our ceramic mugs are dishwasher safe and hold 350 ml.", "products.md"),
]


def workspace_row(workspace_id: uuid.UUID) -> Any:
    from socialflow.api.workspaces.models import Workspace

    return Workspace(id=workspace_id, name=f"w-{workspace_id.hex[:6]}")


async def add_base(db: Any, workspace_id: uuid.UUID, **fields: Any) -> KnowledgeBase:
    base = KnowledgeBase(
        workspace_id=workspace_id,
        name=fields.pop("name", "FAQ"),
        embedder_provider=fields.pop("embedder_provider", "minilm"),
        embedder_model=fields.pop("embedder_model", "all-MiniLM-L6-v2"),
        embedder_dimension=fields.pop("embedder_dimension", 384),
        **fields,
    )
    async with db.session() as session:
        if await session.get(workspace_row(workspace_id).__class__, workspace_id) is None:
            session.add(workspace_row(workspace_id))
            await session.flush()
        session.add(base)
    return base


def fill(settings: Settings, base: KnowledgeBase, embeddings: Any) -> None:
    store = open_store(settings, namespace=str(base.id), embeddings=embeddings)
    store.add_texts(
        [text for text, _ in FAQ],
        [{"filename": name, "chunk": 0} for _, name in FAQ],
        ids=[f"{name}#0" for _, name in FAQ],
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(knowledge={"store_path": str(tmp_path / "stores")})


async def test_finds_the_relevant_chunk_with_its_source(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings
) -> None:
    workspace = uuid.uuid4()
    base = await add_base(db, workspace)
    fill(settings, base, minilm)
    retriever = WorkspaceRetriever(db, settings, workspace)
    chunks = await retriever.retrieve(base.id, "Can I get a refund?", k=2, score_threshold=0.3)
    assert chunks, "the returns passage should be relevant"
    assert chunks[0].source == "returns.md"
    assert chunks[0].id == "returns.md#0"
    assert "30 days" in chunks[0].text
    assert all(c.score >= 0.3 for c in chunks)
    assert [c.score for c in chunks] == sorted((c.score for c in chunks), reverse=True) or len(
        chunks
    ) == 1

    filtered = await retriever.retrieve(
        base.id, "Can I get a refund?", k=4, score_threshold=0.0, filter={"filename": "hours.md"}
    )
    assert [c.source for c in filtered] == ["hours.md"]


async def test_nothing_above_the_threshold_returns_nothing(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings
) -> None:
    workspace = uuid.uuid4()
    base = await add_base(db, workspace)
    fill(settings, base, minilm)
    retriever = WorkspaceRetriever(db, settings, workspace)
    question = "Who won the football world cup in 1998?"
    assert await retriever.retrieve(base.id, question, k=4, score_threshold=0.3) == []
    # the same question with no threshold still ranks something: the threshold did the work
    ranked = await retriever.retrieve(base.id, question, k=4, score_threshold=0.0)
    assert ranked and max(c.score for c in ranked) < 0.3


async def test_refuses_a_knowledge_base_of_another_workspace(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await add_base(db, mine)
    their_base = await add_base(db, theirs, name="Their FAQ")
    fill(settings, their_base, minilm)
    retriever = WorkspaceRetriever(db, settings, mine)
    with pytest.raises(NotFoundError) as caught:
        await retriever.retrieve(their_base.id, "refund", score_threshold=0)
    assert "does not exist in this workspace" in caught.value.message
    with pytest.raises(NotFoundError):
        await retriever.retrieve(uuid.uuid4(), "refund")
    # the owner reads it
    owner = WorkspaceRetriever(db, settings, theirs)
    assert await owner.retrieve(their_base.id, "refund", score_threshold=0)
    with pytest.raises(UserError, match="has none"):
        await WorkspaceRetriever(db, settings, None).retrieve(their_base.id, "refund")
    with pytest.raises(UserError, match="empty"):
        await owner.retrieve(their_base.id, "   ")


async def test_a_store_built_by_another_embedder_is_refused(db: Any, settings: Settings) -> None:
    workspace = uuid.uuid4()
    base = await add_base(db, workspace)  # recorded: MiniLM
    fill(settings, base, HashEmbeddings())  # but the vectors are of another model
    with pytest.raises(EmbedderMismatchError, match="hash-bow"):
        await WorkspaceRetriever(db, settings, workspace).retrieve(base.id, "refund")


async def test_stores_stay_open_between_queries(
    db: Any, settings: Settings, minilm: MiniLMEmbeddings
) -> None:
    workspace = uuid.uuid4()
    base = await add_base(db, workspace)
    fill(settings, base, minilm)
    cache = StoreCache(size=1)
    retriever = WorkspaceRetriever(db, settings, workspace, stores=cache)
    await retriever.retrieve(base.id, "mugs", score_threshold=0)
    (key,) = cache._stores
    store = cache.get(key)
    await retriever.retrieve(base.id, "shipping", score_threshold=0)
    assert cache.get(key) is store
    other = await add_base(db, workspace, name="Other")
    fill(settings, other, minilm)
    await retriever.retrieve(other.id, "mugs", score_threshold=0)
    assert cache.get(key) is None, "the least recently used store is closed beyond the size"
    cache.close()


async def test_a_remote_embedder_uses_the_bases_credential(db: Any, settings: Settings) -> None:
    settings = allowing_loopback(settings)
    workspace = uuid.uuid4()
    with serve_llm(api_key="sk-embed") as server:
        async with db.session() as session:
            session.add(workspace_row(workspace))
            await session.flush()
            row = Credential(workspace_id=workspace, name="Embedder", kind="openai")
            secret = parse_secret("openai", {"api_key": "sk-embed", "base_url": server.url})
            seal_credential(row, secret, key_wrapper(settings))
            session.add(row)
        base = await add_base(
            db,
            workspace,
            embedder_provider="openai",
            embedder_model="scripted-embedding",
            embedder_dimension=64,
            credential_id=row.id,
        )
        embeddings = get_embeddings(
            settings,
            provider="openai",
            model="scripted-embedding",
            base_url=server.url,
            api_key="sk-embed",
        )
        fill(settings, base, embeddings)
        server.requests.clear()
        chunks = await WorkspaceRetriever(db, settings, workspace).retrieve(
            base.id, "free shipping to Spain", k=1, score_threshold=0.1
        )
        assert [c.source for c in chunks] == ["shipping.md"]
        embedded = [
            r
            for r in server.requests
            if r["path"] == "/v1/embeddings" and r["body"]["input"] == ["free shipping to Spain"]
        ]
        assert len(embedded) == 1, "the query is embedded once for hybrid and dense search"
        assert embedded[0]["headers"]["authorization"] == "Bearer sk-embed"
