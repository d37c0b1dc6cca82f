"""Chunking for ingestion: Markdown sections first, then a recursive character split.

A document is cut at its headings (``#`` … ``######`` lines outside code fences), so a chunk
never spans two sections; a section longer than ``chunk_size`` is split recursively at
paragraph, line, sentence and word boundaries, neighbouring pieces sharing ``chunk_overlap``
characters. Each chunk keeps the path of headings it sits under (instead of the heading lines),
and ``Chunk.content`` puts that path in front of the text for embedding and BM25.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Chunk", "split_markdown", "split_text"]

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SEPARATORS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", "")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document to embed."""

    text: str
    headings: tuple[str, ...] = ()

    @property
    def section(self) -> str:
        """The headings joined with `` > ``, empty outside any section."""
        return " > ".join(self.headings)

    @property
    def content(self) -> str:
        """The text as stored and embedded: the section's headings first, for context."""
        return f"{self.section}\n\n{self.text}" if self.headings else self.text


def split_markdown(text: str, *, chunk_size: int = 1000, chunk_overlap: int = 150) -> list[Chunk]:
    """Split a document at its Markdown headings, then by size.

    Args:
        text: The document's text (Markdown or plain).
        chunk_size: Target characters per chunk (a single word longer than this is cut).
        chunk_overlap: Characters neighbouring chunks of one section share.

    Returns:
        The chunks in document order; blank sections yield none.
    """
    chunks: list[Chunk] = []
    for headings, body in _sections(text):
        for piece in split_text(body, chunk_size=chunk_size, chunk_overlap=chunk_overlap):
            chunks.append(Chunk(text=piece, headings=headings))
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
