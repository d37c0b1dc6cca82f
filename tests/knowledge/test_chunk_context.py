"""Chunk context: a chunk's title and heading path are embedded and indexed, never shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socialflow.core.settings import Settings
from socialflow.knowledge import CONTEXT_FIELD, indexed_text, open_store
from tests.knowledge._helpers import HashEmbeddings


class RecordingEmbeddings(HashEmbeddings):
    """The hashed bag of words, remembering every text embedded as a document."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += texts
        return super().embed_documents(texts)


TITLE = "How to skip a delivery week"
SECOND = "There is no limit on how many weeks in a row; a pause may be simpler for long trips."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(knowledge={"store_path": str(tmp_path / "stores")})


def test_the_context_is_embedded_and_indexed_but_the_text_is_what_comes_back(
    settings: Settings,
) -> None:
    embedder = RecordingEmbeddings()
    store = open_store(settings, namespace="help", embeddings=embedder)
    store.add_texts(
        [SECOND, "Our shop opens at 9 am."],
        [{"filename": "a.txt", CONTEXT_FIELD: TITLE}, {"filename": "hours.txt"}],
        ids=["a#1", "hours#0"],
    )
    assert embedder.embedded == [f"{TITLE}\n\n{SECOND}", "Our shop opens at 9 am."]
    # "skip" and "delivery" are only in the title: BM25 finds the chunk by them
    (hit,) = store.keyword_search("skip delivery", k=5)
    assert hit[0].id == "a#1"
    assert hit[0].page_content == SECOND, "the context is not part of the text shown"
    assert hit[0].metadata[CONTEXT_FIELD] == TITLE
    # the stored vector is the one of the text with its context
    dense = store.similarity_search_with_score(f"{TITLE}\n\n{SECOND}", k=1)
    assert dense[0][0].id == "a#1" and dense[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [d.page_content for d in store.get_by_ids(["a#1"])] == [SECOND]
    hybrid = store.hybrid_search("how do I skip a week", k=2)
    assert hybrid[0][0].id == "a#1" and hybrid[0][0].page_content == SECOND


def test_chunks_stored_without_context_keep_working(settings: Settings) -> None:
    embedder = RecordingEmbeddings()
    store = open_store(settings, namespace="old", embeddings=embedder)
    store.add_texts([SECOND], [{"filename": "a.txt", "section": ""}], ids=["a#1"])
    assert embedder.embedded == [SECOND]
    assert store.keyword_search("skip delivery", k=5) == []
    (hit,) = store.keyword_search("pause trips", k=5)
    assert hit[0].page_content == SECOND


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, "text"),
        ({}, "text"),
        ({CONTEXT_FIELD: ""}, "text"),
        ({CONTEXT_FIELD: "   "}, "text"),
        ({CONTEXT_FIELD: 42}, "text"),  # not text: ignored, never str()-ed into the index
        ({CONTEXT_FIELD: " Title > Part "}, "Title > Part\n\ntext"),
    ],
)
def test_indexed_text(metadata: dict[str, object] | None, expected: str) -> None:
    assert indexed_text("text", metadata) == expected


def test_a_huge_context_is_cut_like_any_long_text_by_the_embedder(settings: Settings) -> None:
    # the context comes from the document (a first line is at most 150 characters, headings
    # are lines): even a pathological one only makes the embedded text longer, never the text
    embedder = RecordingEmbeddings()
    store = open_store(settings, namespace="big", embeddings=embedder)
    context = " > ".join(["section"] * 2000)
    store.add_texts(["short text"], [{CONTEXT_FIELD: context}], ids=["x#0"])
    (hit,) = store.keyword_search("short text", k=1)
    assert hit[0].page_content == "short text"
    assert np.isfinite(store.similarity_search_with_score("section", k=1)[0][1])
