"""The embedded SQLite store: persistence, several writer processes, filters, deletes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from socialflow.core.errors import UserError
from socialflow.core.settings import Settings
from socialflow.knowledge import (
    EmbeddedStore,
    EmbedderMismatchError,
    MiniLMEmbeddings,
    StoreInfo,
    open_store,
)
from tests.knowledge._helpers import HashEmbeddings

DOCS = {
    "aaa#0": (
        "Refunds are issued within 14 days of a returned order.",
        {"doc": "policy", "page": 1},
    ),
    "aaa#1": ("Shipping to Canada takes five business days.", {"doc": "policy", "page": 2}),
    "bbb#0": (
        "Our cafe serves espresso, cappuccino and oat milk lattes.",
        {"doc": "menu", "page": 1},
    ),
    "bbb#1": ("The bakery sells croissants and sourdough bread daily.", {"doc": "menu", "page": 2}),
}


def _fill(store: EmbeddedStore) -> None:
    ids = list(DOCS)
    store.add_texts([DOCS[i][0] for i in ids], [DOCS[i][1] for i in ids], ids=ids)


def test_persists_across_reopen(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, namespace="kb1", embeddings=HashEmbeddings())
    _fill(store)
    store.close()
    reopened = EmbeddedStore(tmp_path, namespace="kb1", embeddings=HashEmbeddings())
    assert reopened.info() == StoreInfo(model_name="hash-bow", dimension=64, count=4)
    top, score = reopened.similarity_search_with_score("sourdough bread bakery", k=1)[0]
    assert top.id == "bbb#1"
    assert top.metadata == {"doc": "menu", "page": 2}
    assert 0 < score <= 1.0
    assert [d.id for d in reopened.get_by_ids(["bbb#0", "nope", "aaa#1"])] == ["bbb#0", "aaa#1"]


def test_adding_an_existing_id_replaces_it(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings())
    _fill(store)
    assert store.similarity_search("espresso cappuccino", k=1)[0].id == "bbb#0"
    store.add_texts(["Tea only from now on: green, black and mint."], ids=["bbb#0"])
    assert store.count() == 4
    assert store.get_by_ids(["bbb#0"])[0].page_content.startswith("Tea only")
    assert store.similarity_search("espresso cappuccino", k=1)[0].id != "bbb#0"


def _writer(path: str, worker: int, batches: int) -> None:
    store = EmbeddedStore(path, namespace="shared", embeddings=HashEmbeddings())
    for batch in range(batches):
        ids = [f"w{worker}-{batch:02d}-{n:02d}" for n in range(25)]
        texts = [f"worker {worker} batch {batch} item {n} topic{worker}" for n in range(25)]
        store.add_texts(texts, [{"worker": worker}] * 25, ids=ids)
        store.similarity_search(f"topic{1 - worker}", k=3)  # read while the other writes


def test_two_processes_write_concurrently(tmp_path: Path) -> None:
    reader = EmbeddedStore(tmp_path, namespace="shared", embeddings=HashEmbeddings())
    reader.add_texts(["seed record"], ids=["seed"])
    assert reader.similarity_search("seed", k=5)[0].id == "seed"  # loads its matrix
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, 6)) for w in (0, 1)]
    for proc in workers:
        proc.start()
    for proc in workers:
        proc.join(120)
        assert proc.exitcode == 0
    assert reader.count() == 1 + 2 * 6 * 25
    assert reader.count("w1-") == 150
    # the reader's cached matrix picks up the other processes' appends
    hits = reader.similarity_search("topic1 worker 1", k=5, filter={"worker": 1})
    assert len(hits) == 5
    assert all(d.metadata == {"worker": 1} for d in hits)
    assert {d.id for d in reader.similarity_search("topic0", k=150)} >= {"w0-05-24", "w0-00-00"}


def test_metadata_filters_apply_to_every_search(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings())
    _fill(store)
    store.add_texts(
        ["Bread refunds are never issued."],
        [{"doc": "menu", "page": 3, "draft": True}],
        ids=["ccc#0"],
    )
    for search in (store.similarity_search_with_score, store.hybrid_search, store.keyword_search):
        found = search("refunds issued bread", k=10, filter={"doc": "menu"})
        assert found and {d.metadata["doc"] for d, _ in found} == {"menu"}, search
    assert [d.id for d, _ in store.hybrid_search("refunds", k=5, filter={"draft": True})] == [
        "ccc#0"
    ]
    assert [d.id for d, _ in store.keyword_search("bread", filter={"page": 2})] == ["bbb#1"]
    assert store.similarity_search("refunds", filter={"doc": "nothing"}) == []
    with pytest.raises(UserError, match="metadata filter field"):
        store.similarity_search("x", filter={"doc') OR 1=1 --": "menu"})


def test_delete_prefix_and_delete(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings())
    other = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings())
    _fill(store)
    assert other.similarity_search("espresso", k=4)  # caches the matrix before the delete
    assert store.delete_prefix("bbb#") == 2
    assert store.delete_prefix("bbb#") == 0
    assert store.count() == 2 and store.count("bbb#") == 0 and store.count("aaa#") == 2
    for s in (store, other):
        assert {d.id for d in s.similarity_search("espresso croissants", k=4)} == {"aaa#0", "aaa#1"}
        assert s.keyword_search("espresso") == []
    assert store.delete(["aaa#0", "zzz"]) is True
    assert store.delete(["zzz"]) is False
    assert [d.id for d in other.similarity_search("shipping", k=4)] == ["aaa#1"]
    with pytest.raises(UserError, match="non-empty prefix"):
        store.delete_prefix("")
    store.drop()
    assert store.info() == StoreInfo(model_name=None, dimension=None, count=0)


def test_another_embedder_is_refused(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings(64, "model-a"))
    _fill(store)
    wrong_dim = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings(32, "model-a"))
    wrong_name = EmbeddedStore(tmp_path, namespace="kb", embeddings=HashEmbeddings(64, "model-b"))
    with pytest.raises(EmbedderMismatchError) as caught:
        wrong_name.hybrid_search("refunds")
    assert "'model-a' (64 dimensions)" in caught.value.message
    assert "'model-b' (64 dimensions)" in caught.value.message
    assert isinstance(caught.value, UserError)
    with pytest.raises(EmbedderMismatchError, match="32 dimensions"):
        wrong_dim.add_texts(["more"], ids=["x"])
    assert store.count() == 4


def test_hybrid_search_with_minilm_through_open_store(
    tmp_path: Path, minilm: MiniLMEmbeddings
) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings, namespace="42", embeddings=minilm)
    assert isinstance(store, EmbeddedStore)
    assert store.path == tmp_path / "knowledge" / "42.sqlite3"
    _fill(store)
    store.add_texts(["Order number SKU-99817 ships from the Lyon warehouse."], ids=["ddd#0"])
    assert store.hybrid_search("How long until I get my money back?", k=1)[0][0].id == "aaa#0"
    assert store.hybrid_search("SKU-99817", k=1)[0][0].id == "ddd#0"  # an exact code: BM25
    dense = store.similarity_search_with_score("coffee drinks", k=2)
    assert dense[0][0].id == "bbb#0" and dense[0][1] > dense[1][1]


def test_invalid_namespace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"namespace '\.\./x' is invalid"):
        EmbeddedStore(tmp_path, namespace="../x", embeddings=HashEmbeddings())


async def test_empty_namespace_and_async_twins(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, namespace="fresh", embeddings=HashEmbeddings())
    assert await store.ahybrid_search("anything") == []
    assert store.keyword_search("anything") == []
    assert store.similarity_search_by_vector([1.0] * 64) == []
    assert store.info() == StoreInfo(model_name=None, dimension=None, count=0)
    await store.aadd_texts(["Espresso at the cafe."], [{"doc": "menu"}], ids=["m#0"])
    assert await store.acount() == 1
    hits = await store.asimilarity_search_with_score("espresso", k=1)
    assert hits[0][0].id == "m#0"
    assert await store.adelete_prefix("m#") == 1
