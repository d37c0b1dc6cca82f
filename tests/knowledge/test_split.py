"""Chunking: Markdown sections first, then recursive splits of the right size with overlap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialflow.knowledge._split import Chunk, document_title, split_markdown, split_text

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
    # the headings are context, never part of the text a reader is shown
    assert [c.context for c in chunks] == ["Returns", "Returns > Damaged items", "Shipping"]
    assert all("Returns" not in c.text for c in chunks)


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


# -- chunk context: the document's title and the heading path ---------------------------------

ARTICLE = (
    "How to skip a delivery week\n\n"
    + "You can skip any week before its cutoff in the app. " * 25
    + "\n\nSkipped weeks are never charged, and a promotion moves to the next box you get."
)


def test_a_plain_text_title_goes_with_every_chunk_but_is_shown_once() -> None:
    title = document_title(ARTICLE, "hb-001.txt")
    assert title == "How to skip a delivery week"
    chunks = split_markdown(ARTICLE, chunk_size=400, chunk_overlap=50, title=title)
    assert len(chunks) >= 3
    # the first chunk starts with the title line: no context needed, nothing said twice
    assert chunks[0].text.startswith(title) and chunks[0].context == ""
    for chunk in chunks[1:]:
        assert title not in chunk.text, "later chunks do not repeat the subject themselves"
        assert chunk.context == title and chunk.title == title


def test_a_markdown_title_and_its_sections_make_the_heading_path() -> None:
    text = "# Returns\nWithin 30 days.\n\n## Damaged items\nSend a photo.\n\n## Refunds\nFive days."
    title = document_title(text, "policy.md")
    assert title == "Returns"
    chunks = split_markdown(text, chunk_size=200, chunk_overlap=0, title=title)
    assert [(c.context, c.text) for c in chunks] == [
        ("Returns", "Within 30 days."),
        ("Returns > Damaged items", "Send a photo."),
        ("Returns > Refunds", "Five days."),
    ]


def test_a_file_of_several_top_sections_is_titled_by_its_file_name() -> None:
    text = "# Returns\nWithin 30 days.\n# Shipping\nFree above 50 euros."
    title = document_title(text, "store_policies-2024.md")
    assert title == "store policies 2024"
    chunks = split_markdown(text, chunk_size=200, chunk_overlap=0, title=title)
    assert [c.context for c in chunks] == [
        "store policies 2024 > Returns",
        "store policies 2024 > Shipping",
    ]


@pytest.mark.parametrize(
    ("text", "filename", "title"),
    [
        ("", "notes.txt", "notes"),
        ("   \n\n", "", ""),
        ("word " * 100, "long-first-line.txt", "long first line"),  # a paragraph, not a title
        ("\n\n  What is the return window?  \nThirty days.", "x.txt", "What is the return window?"),
        ("## Only a section\ntext", "a.md", "Only a section"),
        ("x" * 151, "../../etc/passwd", "passwd"),  # a path in the name is only a name
    ],
)
def test_document_titles(text: str, filename: str, title: str) -> None:
    assert document_title(text, filename) == title


def test_a_chunk_without_title_or_headings_has_no_context() -> None:
    assert Chunk(text="plain").context == ""
    assert Chunk(text="b", headings=("A",)).context == "A"
