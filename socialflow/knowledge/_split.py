"""Chunking for ingestion: Markdown sections first, then a recursive character split.

A document is cut at its headings (``#`` … ``######`` lines outside code fences), so a chunk
never spans two sections; a section longer than ``chunk_size`` is split recursively at
paragraph, line, sentence and word boundaries, neighbouring pieces sharing ``chunk_overlap``
characters. Each chunk keeps the path of headings it sits under (instead of the heading lines)
and its document's title (``document_title``: the first heading or a short first line, else the
file name). ``Chunk.text`` is what a reader is shown; ``Chunk.context`` (title and heading path)
is what the chunk alone would lose, and the stores put it in front of the text for embedding and
BM25 only (``indexed_text``), so the twentieth chunk of a help article still names its subject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

__all__ = ["Chunk", "document_title", "split_markdown", "split_text"]

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", "")
#: a first line longer than this is a paragraph, not a title
_TITLE_CHARS = 150
_CONTEXT_SEPARATOR = " > "


@dataclass(frozen=True)
class Chunk:
    """One piece of a document to embed: its text, and where in the document it sits."""

    text: str
    headings: tuple[str, ...] = ()
    title: str = ""

    @property
    def section(self) -> str:
        """The headings joined with `` > ``, empty outside any section."""
        return _CONTEXT_SEPARATOR.join(self.headings)

    @property
    def context(self) -> str:
        """What a reader of this chunk alone would miss: the document's title, then the
        headings it sits under, joined with `` > ``. The title is left out where the text
        already starts with it (a plain-text document's first chunk) or the first heading
        repeats it."""
        headings = list(self.headings)
        if headings and headings[0].casefold() == self.title.casefold():
            headings.pop(0)  # a Markdown title is the first heading: named once, as the title
        named = not self.title or self.text.startswith(self.title)
        return _CONTEXT_SEPARATOR.join([*([] if named else [self.title]), *headings])


def document_title(text: str, filename: str = "") -> str:
    """What a document is about, in a line: its first heading, else a short first line (a
    title or a help thread's question), else its file name without the extension.

    Args:
        text: The parsed document (Markdown-flavoured).
        filename: The upload's name.

    Returns:
        The title; empty when the text has no short first line and there is no file name.
    """
    lines = [line.strip() for line in text.splitlines()]
    first = next((n for n, line in enumerate(lines) if line), None)
    if first is not None:
        heading = _HEADING.match(lines[first])
        if heading is None and len(lines[first]) <= _TITLE_CHARS:
            return lines[first]
        # a heading titles the document only when no later heading is of its rank or above
        # (a file of several "# ..." sections is named by its file name instead)
        if heading is not None and not any(
            (later := _HEADING.match(line)) is not None
            and len(later.group(1)) <= len(heading.group(1))
            for line in lines[first + 1 :]
        ):
            return heading.group(2).strip()
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    return re.sub(r"[-_\s]+", " ", stem).strip()


def split_markdown(
    text: str, *, chunk_size: int = 1000, chunk_overlap: int = 150, title: str = ""
) -> list[Chunk]:
    """Split a document at its Markdown headings, then by size.

    Args:
        text: The document's text (Markdown or plain).
        chunk_size: Target characters per chunk (a single word longer than this is cut).
        chunk_overlap: Characters neighbouring chunks of one section share.
        title: The document's title (``document_title``), kept on every chunk.

    Returns:
        The chunks in document order; blank sections yield none.
    """
    chunks: list[Chunk] = []
    for headings, body in _sections(text):
        for piece in split_text(body, chunk_size=chunk_size, chunk_overlap=chunk_overlap):
            chunks.append(Chunk(text=piece, headings=headings, title=title))
    return chunks


def _sections(text: str) -> list[tuple[tuple[str, ...], str]]:
    # a heading with no text under it becomes a section of its own (its title as the text)
    # unless a later section sits below it, so no heading's words are lost
    found: list[tuple[tuple[str, ...], str | None]] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        body = "\n".join(lines).strip()
        headings = tuple(title for _, title in path)
        if body:
            found.append((headings, body))
        elif headings:
            found.append((headings, None))
        lines.clear()

    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level = len(match.group(1))
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, match.group(2).strip()))
    flush()
    sections: list[tuple[tuple[str, ...], str]] = []
    for index, (headings, body) in enumerate(found):
        if body is not None:
            sections.append((headings, body))
        elif not any(
            later[: len(headings)] == headings for later, text in found[index + 1 :] if text
        ):
            sections.append((headings[:-1], headings[-1]))
    return sections


def split_text(text: str, *, chunk_size: int = 1000, chunk_overlap: int = 150) -> list[str]:
    """Split text recursively into pieces of at most ``chunk_size`` characters.

    Args:
        text: Any text.
        chunk_size: Most characters per piece.
        chunk_overlap: Characters a piece repeats from the end of the previous one.

    Returns:
        Non-blank pieces in order.
    """
    if chunk_size < 1:
        msg = f"chunk_size must be at least 1, not {chunk_size}"
        raise ValueError(msg)
    overlap = max(0, min(chunk_overlap, chunk_size // 2))
    text = text.strip()
    if not text:
        return []
    return [piece for piece in _split(text, _SEPARATORS, chunk_size, overlap) if piece.strip()]


def _split(text: str, separators: tuple[str, ...], size: int, overlap: int) -> list[str]:
    if len(text) <= size:
        return [text]
    separator, rest = separators[0], separators[1:]
    if separator == "":
        step = size - overlap
        return [text[i : i + size] for i in range(0, max(len(text) - overlap, 1), step)]
    if separator not in text:
        return _split(text, rest, size, overlap)
    parts = text.split(separator)
    # a part still too long is split further with the finer separators
    pieces: list[str] = []
    for part in parts:
        if len(part) > size:
            pieces.extend(_split(part, rest, size, overlap))
        elif part.strip():
            pieces.append(part)
    return _merge(pieces, separator, size, overlap)


def _merge(pieces: list[str], separator: str, size: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for piece in pieces:
        added = len(piece) + (len(separator) if current else 0)
        if current and length + added > size:
            chunks.append(separator.join(current).strip())
            # keep the tail of the previous chunk as the overlap
            while current and (length > overlap or length + len(piece) + len(separator) > size):
                length -= len(current[0]) + (len(separator) if len(current) > 1 else 0)
                current.pop(0)
            added = len(piece) + (len(separator) if current else 0)
        current.append(piece)
        length += added
    if current:
        chunks.append(separator.join(current).strip())
    return chunks
