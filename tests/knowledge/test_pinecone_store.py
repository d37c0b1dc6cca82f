"""The Pinecone adapter through the real pinecone SDK against the loopback emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pinecone import Index
from pinecone.errors import ApiError, PayloadTooLargeError

from socialflow.core.errors import UserError
from socialflow.core.settings import Settings
from socialflow.knowledge import EmbedderMismatchError, PineconeStore, StoreInfo, open_store
from tests.fixtures.pinecone_emulator import (
    MAX_REQUEST_BYTES,
    MAX_UPSERT_VECTORS,
    pinecone_emulator,
)
from tests.knowledge._helpers import HashEmbeddings

KEY = "test-pinecone-key"
DIM = 64


@pytest.fixture
def emulator() -> Iterator[Any]:
    with pinecone_emulator(dimension=DIM, api_key=KEY) as server:
        yield server


def _settings(emulator: Any, **knowledge: Any) -> Settings:
    values = {"vector_store": "pinecone", "pinecone_api_key": KEY, **knowledge}
    values.setdefault("pinecone_index_host", emulator.url)
    return Settings(knowledge=values)


def _store(emulator: Any, namespace: str = "kb1", **kwargs: Any) -> PineconeStore:
    embeddings = kwargs.pop("embeddings", HashEmbeddings(DIM))
    store = open_store(_settings(emulator, **kwargs), namespace=namespace, embeddings=embeddings)
    assert isinstance(store, PineconeStore)
    return store


def test_emulator_refuses_requests_over_pinecone_limits(emulator: Any) -> None:
    index = Index(host=emulator.url, api_key=KEY)
    too_many = [(f"v{i}", [1.0] * DIM) for i in range(MAX_UPSERT_VECTORS + 1)]
    with pytest.raises(ApiError, match="maximum is 1000") as caught:
        index.upsert(vectors=too_many, namespace="x")
    assert caught.value.status_code == 400
    big = [(f"v{i}", [1.0] * DIM, {"text": "x" * 30_000}) for i in range(80)]
    with pytest.raises(PayloadTooLargeError):
        index.upsert(vectors=big, namespace="x")
    with pytest.raises(ApiError, match="exceeds the limit of 40960 bytes"):
        index.upsert(vectors=[("v", [1.0] * DIM, {"text": "x" * 41_000})], namespace="x")
    with pytest.raises(ApiError, match="dimension 3 does not match"):
        index.upsert(vectors=[("v", [1.0, 2.0, 3.0])], namespace="x")
    assert index.describe_index_stats().total_vector_count == 0


def test_upserts_are_split_within_limits(emulator: Any) -> None:
    store = _store(emulator, pinecone_batch_size=100)
    texts = [f"chunk {i} " + "lorem ipsum dolor " * 900 for i in range(260)]  # ~16 KB each
    ids = [f"{'ab' * 32}#{i}" for i in range(260)]
    store.add_texts(texts, [{"doc": "big", "n": i} for i in range(260)], ids=ids)
    upserts = [r for r in emulator.requests if r[1] == "/vectors/upsert"]
    assert sum(r[3] for r in upserts) == 260 + 1  # the chunks and the embedder record
    assert all(r[2] <= MAX_REQUEST_BYTES and r[3] <= 100 for r in upserts)
    assert len(upserts) > 4  # the 2 MB limit, not the count, split these
    assert store.count() == 260
    assert store.get_by_ids([ids[7]])[0].page_content == texts[7]


def test_oversized_chunk_is_refused_before_sending(emulator: Any) -> None:
    store = _store(emulator)
    with pytest.raises(UserError, match="Pinecone allows 40960: lower the chunk size"):
        store.add_texts(["y" * 50_000], ids=["huge#0"])
    assert not any(
        r[1] == "/vectors/upsert" and r[3] == 1 and r[2] > 40_000 for r in emulator.requests
    )


def test_namespaces_filters_and_search(emulator: Any) -> None:
    kb1, kb2 = _store(emulator, "kb1"), _store(emulator, "kb2")
    kb1.add_texts(
        ["Refunds take 14 days.", "Espresso and lattes at the cafe.", "Refunds for cafe vouchers."],
        [
            {"doc": "policy", "page": 1},
            {"doc": "menu", "page": 1},
            {"doc": "menu", "page": 2, "note": None},
        ],
        ids=["p#0", "m#0", "m#1"],
    )
    kb2.add_texts(["Refunds are not possible."], ids=["other#0"])
    assert kb1.count() == 3 and kb2.count() == 1
    hits = kb1.similarity_search_with_score("refunds", k=5, filter={"doc": "menu"})
    assert [d.id for d, _ in hits] == ["m#1", "m#0"]
    assert hits[0][0].metadata == {"doc": "menu", "page": 2}
    assert hits[0][0].page_content == "Refunds for cafe vouchers."
    assert [d.id for d, _ in kb1.hybrid_search("refunds", k=2, filter={"page": 1})] == [
        "p#0",
        "m#0",
    ]
    assert [d.id for d, _ in kb1.keyword_search("espresso lattes")] == ["m#0"]
    assert [d.id for d in kb2.similarity_search("refunds", k=5)] == ["other#0"]
    assert kb1.info() == StoreInfo(model_name="hash-bow", dimension=DIM, count=3)


def test_delete_by_prefix_pages_through_list(emulator: Any) -> None:
    store = _store(emulator)
    store.add_texts([f"a {i}" for i in range(230)], ids=[f"doc-a#{i}" for i in range(230)])
    store.add_texts(["b"], ids=["doc-b#0"])
    lists_before = sum(1 for r in emulator.requests if r[1] == "/vectors/list")
    assert store.delete_prefix("doc-a#") == 230
    assert sum(1 for r in emulator.requests if r[1] == "/vectors/list") - lists_before == 3
    assert store.count() == 1 and store.count("doc-a#") == 0
    assert [d.id for d in store.similarity_search("a 5", k=3)] == ["doc-b#0"]
    assert store.delete(["doc-b#0"]) is True and store.delete(["doc-b#0"]) is False
    store.drop()
    store.drop()  # an empty namespace: Pinecone answers 404, the adapter does not care
    assert store.info().model_name is None


def test_another_embedder_is_refused(emulator: Any) -> None:
    _store(emulator, embeddings=HashEmbeddings(DIM, "model-a")).add_texts(["x"], ids=["x#0"])
    other = _store(emulator, embeddings=HashEmbeddings(DIM, "model-b"))
    with pytest.raises(EmbedderMismatchError, match=r"'model-a' .*'model-b'"):
        other.similarity_search("x")
    with pytest.raises(UserError, match="has 32 dimensions but the embedder"):
        _store(emulator, pinecone_dimension=32)


def test_index_host_is_looked_up_by_name(emulator: Any) -> None:
    store = _store(
        emulator,
        pinecone_index_host=None,
        pinecone_index_name="knowledge",
        pinecone_control_host=emulator.url,
    )
    store.add_texts(["found through the control plane"], ids=["c#0"])
    assert store.count() == 1


def test_configuration_errors_are_user_errors(emulator: Any) -> None:
    with pytest.raises(UserError, match="PINECONE_API_KEY"):
        open_store(
            Settings(knowledge={"vector_store": "pinecone"}),
            namespace="a",
            embeddings=HashEmbeddings(),
        )
    store = _store(emulator, pinecone_api_key="wrong-key")
    with pytest.raises(UserError, match="Pinecone fetch failed"):
        store.similarity_search("x")


def test_chunk_context_is_embedded_and_ranked_but_not_returned(emulator: Any) -> None:
    store = _store(emulator, "ctx")
    store.add_texts(
        ["There is no limit on how many weeks in a row.", "Our shop opens at 9 am."],
        [{"doc": "skip", "context": "How to skip a delivery week"}, {"doc": "hours"}],
        ids=["skip#1", "hours#0"],
    )
    (hit,) = store.keyword_search("skip delivery")
    assert hit[0].id == "skip#1"
    assert hit[0].page_content == "There is no limit on how many weeks in a row."
    assert hit[0].metadata["context"] == "How to skip a delivery week"
    dense = store.similarity_search_with_score(
        "How to skip a delivery week\n\nThere is no limit on how many weeks in a row.", k=1
    )
    assert dense[0][0].id == "skip#1" and dense[0][1] == pytest.approx(1.0, abs=1e-5)
