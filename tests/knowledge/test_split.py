"""Chunking: Markdown sections first, then recursive splits of the right size with overlap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialflow.knowledge._split import Chunk, split_markdown, split_text

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank. "


def test_headings_split_sections_and_are_kept_as_context() -> None:
    text = (
        "# Returns\nReturn within 30 days.\n\n## Damaged items\nSend a photo.\n"
        "# Shipping\nWe ship on Tuesdays."
    )
    chunks = split_markdown(text, chunk_size=200, chunk_overlap=20)
    assert [(c.headings, c.text) for c in chunks] == [
        (("Returns",), "Return within 30 days."),
        (("Returns", "Damaged items"), "Send a photo."),
        (("Shipping",), "We ship on Tuesdays."),
    ]
    assert chunks[1].content == "Returns > Damaged items\n\nSend a photo."


def test_hashes_inside_code_fences_are_not_headings() -> None:
    text = "# Setup\n```\n# not a heading\nrun()\n```\nDone."
    chunks = split_markdown(text, chunk_size=500, chunk_overlap=0)
    assert len(chunks) == 1
    assert "# not a heading" in chunks[0].text


def test_long_sections_are_split_near_the_size_with_overlap() -> None:
    text = "# Story\n" + SENTENCE * 60  # ~3,900 characters
    chunks = split_markdown(text, chunk_size=1000, chunk_overlap=150)
    assert len(chunks) >= 4
    assert all(len(c.text) <= 1000 for c in chunks)
    assert all(len(c.text) >= 500 for c in chunks[:-1])
    for previous, current in itertools.pairwise(chunks):
        # the next chunk starts with words the previous one ended with
        assert current.text[:40] in previous.text


def test_paragraphs_are_preferred_over_mid_sentence_cuts() -> None:
    paragraphs = [f"Paragraph {n}. " + "word " * 30 for n in range(6)]
    pieces = split_text("\n\n".join(paragraphs), chunk_size=400, chunk_overlap=0)
    for piece in pieces:
        assert piece.startswith("Paragraph ")


def test_blank_text_gives_no_chunks() -> None:
    assert split_markdown("  \n\n \n") == []
    # a heading with nothing under it keeps its words as a chunk of their own
    assert split_markdown("  \n\n# Empty\n\n") == [Chunk(text="Empty")]
    assert [c.text for c in split_markdown("# A\n## B\ntext")] == ["text"]
    with pytest.raises(ValueError, match="chunk_size"):
        split_text("x", chunk_size=0)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("ab .\n#"), max_size=3000),
    size=st.integers(min_value=20, max_value=400),
    overlap=st.integers(min_value=0, max_value=100),
)
def test_no_chunk_is_over_the_size_and_no_word_is_lost(text: str, size: int, overlap: int) -> None:
    chunks = split_markdown(text, chunk_size=size, chunk_overlap=overlap)
    assert all(0 < len(c.text) <= size for c in chunks)
    words = set(text.replace("#", " ").split())
    kept = set(" ".join(c.text for c in chunks).replace("#", " ").split())
    # words of headings live in the headings, not the text
    headed = set(" ".join(" ".join(c.headings) for c in chunks).replace("#", " ").split())
    assert words - kept - headed <= {w for w in words if len(w) > size}
