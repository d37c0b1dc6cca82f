"""The pure parts of bench/retrieval.py and bench/refusal.py on a three-article set committed in
tests/fixtures/data/mini-faq: loading, chunking through the ingestion path, metrics, fusion
modes, threshold calibration and refusal outcomes; then the whole search with MiniLM."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import _corpus as corpus_module
from bench._corpus import (
    documents,
    ingested,
    load_corpus,
    load_split,
    load_unanswerable,
    metrics,
    one_record_per_document,
)
from bench.refusal import calibrate, margin, outcome, top_cosine, top_z
from bench.retrieval import DEFAULT_MODE, Run, evaluate, rank, search
from socialflow.core.settings import Settings
from socialflow.knowledge import MiniLMEmbeddings

MINI = Path(__file__).resolve().parent / "fixtures" / "data" / "mini-faq"
SETTINGS = Settings(knowledge={"chunk_size": 200, "chunk_overlap": 20})


def test_metrics_of_one_ranking() -> None:
    recall1, recall5, mrr, ndcg = metrics(["a", "b", "c"], {"b": 1})
    assert (recall1, recall5, mrr) == (0.0, 1.0, 0.5)
    assert ndcg == pytest.approx(1 / math.log2(3))
    assert metrics(["b"], {"b": 1}) == (1.0, 1.0, 1.0, 1.0)
    assert metrics([f"x{n}" for n in range(20)] + ["b"], {"b": 1}) == (0.0, 0.0, 0.0, 0.0)
    # two relevant documents: recall counts both, nDCG is against the ideal order
    r1, r5, mrr, ndcg = metrics(["a", "b", "x", "c"], {"a": 1, "c": 1})
    assert (r1, r5, mrr) == (0.5, 1.0, 1.0)
    assert ndcg == pytest.approx((1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_a_document_ranks_at_its_best_chunk() -> None:
    doc_of = {"a#0": "a", "a#1": "a", "b#0": "b", "c#0": "c"}
    assert documents(["a#1", "b#0", "a#0", "c#0"], doc_of) == ["a", "b", "c"]


def test_splits_and_unanswerable_queries_load() -> None:
    corpus = load_corpus(MINI)
    assert list(corpus) == ["d1", "d2", "d3"] and corpus["d2"][0] == "Gift cards"
    dev, dev_qrels = load_split(MINI, "dev")
    assert list(dev) == ["q1", "q4"] and dev_qrels == {"q1": {"d1": 1}, "q4": {"d1": 1}}
    test, _ = load_split(MINI, "test")
    assert list(test) == ["q2", "q3"]
    assert list(load_unanswerable(MINI, "dev")) == ["u1"]
    assert list(load_unanswerable(MINI, "test")) == ["u2"]
    with pytest.raises(SystemExit, match="train split missing"):
        load_split(MINI, "train")


def test_articles_are_chunked_as_ingestion_chunks_them_with_and_without_context() -> None:
    corpus = load_corpus(MINI)
    plain = ingested("plain", corpus, context=False, settings=SETTINGS)
    rich = ingested("rich", corpus, context=True, settings=SETTINGS)
    assert plain.ids == rich.ids and plain.texts == rich.texts
    assert len(plain.ids) > len(corpus), "every article is more than one chunk"
    for chunk_id, shown, with_context, without in zip(
        rich.ids, rich.texts, rich.indexed, plain.indexed, strict=True
    ):
        title = corpus[rich.doc_of[chunk_id]][0]
        assert without == shown
        if shown.startswith(title):  # an article's first chunk names its subject already
            assert with_context == shown
        else:
            assert with_context == f"{title}\n\n{shown}"
    one = one_record_per_document("one", corpus)
    assert one.texts[1].startswith("Gift cards. Gift cards come")


LISTS = (
    [("a#0", 0.9), ("b#0", 0.5), ("a#1", 0.4)],  # dense
    [("b#0", 12.0), ("c#0", 3.0)],  # BM25
)


def test_every_mode_ranks_the_candidates() -> None:
    assert rank(LISTS, "dense") == ["a#0", "b#0", "a#1"]
    assert rank(LISTS, "bm25") == ["b#0", "c#0"]
    assert rank(LISTS, "rrf")[0] == "b#0", "first in one list, second in the other"
    assert rank(LISTS, "convex:zscore:0.9")[0] == "a#0"
    assert rank(LISTS, "convex:zscore:0.1")[0] == "b#0"
    assert set(rank(LISTS, DEFAULT_MODE)) == {"a#0", "b#0", "a#1", "c#0"}


def test_refusal_statistics_and_calibration() -> None:
    doc_of = {"a#0": "a", "a#1": "a", "b#0": "b", "c#0": "c"}
    assert top_cosine(LISTS, doc_of) == 0.9
    assert margin(LISTS, doc_of) == pytest.approx(0.4), "best chunk of another document: b#0"
    assert top_z(LISTS, doc_of) > 1
    assert top_cosine(([], []), doc_of) == -1.0
    values = [n / 100 for n in range(1, 21)]
    threshold = calibrate(values)
    assert threshold == 0.02 and sum(v >= threshold for v in values) / len(values) == 0.95
    assert calibrate([0.5] * 3) == 0.5, "under 20 questions nothing may be refused"


def test_answered_and_refused_shares() -> None:
    collection = one_record_per_document("x", {"a": ("A", "a"), "b": ("B", "b")})
    answerable = {"q1": ([("a", 0.8)], []), "q2": ([("b", 0.2)], [])}
    unanswerable = {"u1": ([("a", 0.5)], []), "u2": ([("b", 0.1)], [])}
    qrels = {"q1": {"a": 1}, "q2": {"a": 1}}
    assert outcome(answerable, unanswerable, qrels, collection, top_cosine, 0.3) == (
        0.5,
        0.5,
        0.5,
    )
    assert outcome(answerable, unanswerable, qrels, collection, top_cosine, 0.0) == (
        1.0,
        0.5,  # q2 is answered from b, the wrong article
        0.0,
    )


@pytest.mark.slow
def test_the_whole_search_finds_each_article(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_module, "CACHE", tmp_path / "cache")
    corpus = load_corpus(MINI)
    splits = {s: load_split(MINI, s) for s in ("dev", "test")}
    collection = ingested("mini+context", corpus, context=True, settings=SETTINGS)
    run: Run = search("mini", collection, splits, "dev", MiniLMEmbeddings.shared(), 10)
    assert list(run.lists) == ["dev", "test"]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 3, "chunks and both query splits"
    for split in ("dev", "test"):
        for mode in ("dense", DEFAULT_MODE):
            r1, _, mrr, ndcg = evaluate(run, split, mode)
            assert r1 == mrr == ndcg == 1.0, (split, mode)
