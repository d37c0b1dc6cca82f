"""Document types: recognising an upload by its content, and turning it into plain text.

``sniff`` decides at upload time whether a file is what its name says (magic bytes for PDF,
the ZIP structure for DOCX, UTF-8 text for the rest). ``parse`` runs at ingestion and returns
Markdown-flavoured text: headings of DOCX and HTML become ``#`` lines so the splitter can cut
at them; CSV rows become ``header: value`` lines.

Archive formats (``ARCHIVE_KINDS``: DOCX today; XLSX, PPTX or EPUB would join them) pass
``unpack_archive`` before their parser sees them: every part's unpacked size and compression
ratio are checked from the ZIP directory, each part is inflated in small steps that stop at
the size it declares, and the parser gets the parts repacked uncompressed. A 120 KB DOCX that
unpacks to 40 MB (or a directory that lies about sizes) never reaches memory.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import IO, Any

from socialflow.core.errors import UserError

__all__ = [
    "ALLOWED_EXTENSIONS",
    "ARCHIVE_KINDS",
    "ArchiveLimits",
    "ArchiveRefusedError",
    "DocumentKind",
    "DocumentParseError",
    "UnsupportedDocumentError",
    "parse",
    "sniff",
    "unpack_archive",
]

_SNIFF_BYTES = 1024
#: parts at most this large may compress any amount (styles, settings: a few KB of XML)
_RATIO_FLOOR = 1_000_000
_INFLATE_STEP = 64 * 1024
#: bookmarks of a PDF read as headings, at most
_MAX_OUTLINE = 1_000


class DocumentKind(StrEnum):
    """The document types ingestion understands."""

    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    CSV = "csv"
    MARKDOWN = "markdown"
    TEXT = "text"


@dataclass(frozen=True)
class _Type:
    kind: DocumentKind
    content_type: str
    title: str


ALLOWED_EXTENSIONS: dict[str, _Type] = {
    ".pdf": _Type(DocumentKind.PDF, "application/pdf", "a PDF"),
    ".docx": _Type(
        DocumentKind.DOCX,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "a DOCX document",
    ),
    ".html": _Type(DocumentKind.HTML, "text/html", "an HTML page"),
    ".htm": _Type(DocumentKind.HTML, "text/html", "an HTML page"),
    ".csv": _Type(DocumentKind.CSV, "text/csv", "a CSV file"),
    ".md": _Type(DocumentKind.MARKDOWN, "text/markdown", "a Markdown file"),
    ".markdown": _Type(DocumentKind.MARKDOWN, "text/markdown", "a Markdown file"),
    ".txt": _Type(DocumentKind.TEXT, "text/plain", "a text file"),
}


class UnsupportedDocumentError(UserError):
    """An upload whose name or content is not an allowed document type."""

    code = "unsupported_document"


class DocumentParseError(UserError):
    """A document of an allowed type that its parser could not read."""

    code = "document_parse_failed"


class ArchiveRefusedError(DocumentParseError):
    """An archive document that would unpack to more than the limits allow (a ZIP bomb)."""

    code = "archive_too_large"


@dataclass(frozen=True)
class ArchiveLimits:
    """How far an archive document may unpack (``knowledge.max_unpacked_bytes`` and
    ``knowledge.max_unpack_ratio``), and how many parts it may hold."""

    max_unpacked_bytes: int = 50_000_000
    max_ratio: int = 100
    max_members: int = 5_000


#: the kinds whose files are ZIP packages: each passes ``unpack_archive`` before its parser
ARCHIVE_KINDS = frozenset({DocumentKind.DOCX})


def _refuse(filename: str, title: str, reason: str, *, code: str) -> UnsupportedDocumentError:
    msg = f"file {filename!r} is not {title}: {reason}"
    return UnsupportedDocumentError(msg, code=code, details={"field": "file", "filename": filename})


def sniff(
    filename: str, head: bytes, source: str | IO[bytes] | None = None
) -> tuple[DocumentKind, str]:
    """Check that a file is the type its name claims, by its content.

    Args:
        filename: The upload's name; its extension names the claimed type.
        head: The first bytes of the file (at least 1 KiB when the file is that long).
        source: The whole file (a path or a seekable binary file), for structural checks
            (DOCX); optional.

    Returns:
        The document kind and the content type to store.

    Raises:
        UnsupportedDocumentError: The extension is not allowed, or the content does not match.
    """
    ext = PurePosixPath(filename.lower()).suffix
    spec = ALLOWED_EXTENSIONS.get(ext)
    if spec is None:
        allowed = ", ".join(sorted(ALLOWED_EXTENSIONS))
        msg = f"file {filename!r} has an unsupported type; allowed extensions: {allowed}"
        raise UnsupportedDocumentError(
            msg, code="unsupported_type", details={"field": "file", "filename": filename}
        )
    head = head[:_SNIFF_BYTES]
    if spec.kind is DocumentKind.PDF:
        # the PDF spec allows the header anywhere in the first 1,024 bytes
        if b"%PDF-" not in head:
            raise _refuse(filename, spec.title, "it does not start with %PDF-", code="not_a_pdf")
    elif spec.kind is DocumentKind.DOCX:
        if not head.startswith(b"PK\x03\x04"):
            raise _refuse(filename, spec.title, "it is not a ZIP package", code="not_a_docx")
        if source is not None:
            try:
                with zipfile.ZipFile(source) as package:
                    names = set(package.namelist())
            except zipfile.BadZipFile as exc:
                raise _refuse(filename, spec.title, str(exc), code="not_a_docx") from exc
            if "word/document.xml" not in names:
                reason = "the package has no word/document.xml"
                raise _refuse(filename, spec.title, reason, code="not_a_docx")
    else:
        _check_text(filename, spec, head)
    return spec.kind, spec.content_type


def _check_text(filename: str, spec: _Type, head: bytes) -> None:
    if b"\x00" in head:
        raise _refuse(filename, spec.title, "it contains binary data", code="not_text")
    try:
        # the cut at 1 KiB may split a multi-byte character: only a bad byte before it counts
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:
            reason = f"it is not UTF-8 text (byte {exc.start})"
            raise _refuse(filename, spec.title, reason, code="not_text") from exc
    if spec.kind is DocumentKind.HTML and b"<" not in head:
        raise _refuse(filename, spec.title, "it has no HTML markup", code="not_html")


def parse(data: bytes, kind: DocumentKind, *, limits: ArchiveLimits | None = None) -> str:
    """Extract a document's text.

    Args:
        data: The whole file.
        kind: Its kind, as ``sniff`` found it.
        limits: How far an archive document may unpack; the defaults when omitted.

    Returns:
        The text, Markdown-flavoured (headings as ``#`` lines where the format has them).

    Raises:
        ArchiveRefusedError: An archive document unpacks beyond ``limits``.
        DocumentParseError: The parser failed; the message carries its reason.
    """
    try:
        if kind in ARCHIVE_KINDS:
            data = unpack_archive(data, limits or ArchiveLimits(), kind=kind)
        if kind is DocumentKind.PDF:
            return _pdf(data)
        if kind is DocumentKind.DOCX:
            return _docx(data)
        text = _utf8(data)
        if kind is DocumentKind.HTML:
            return _html(text)
        if kind is DocumentKind.CSV:
            return _csv(text)
        return text
    except DocumentParseError:
        raise
    except Exception as exc:  # each parser has its own exception types; report the reason
        msg = f"could not read the {kind.value} document: {type(exc).__name__}: {exc}"
        raise DocumentParseError(msg, details={"kind": kind.value}) from exc


def unpack_archive(data: bytes, limits: ArchiveLimits, *, kind: DocumentKind) -> bytes:
    """Check a ZIP-based document against ``limits`` and return it repacked, uncompressed.

    The ZIP directory is checked first (part count, each part's declared size and ratio, the
    total), so a bomb is refused before anything is inflated. Each part is then inflated in
    64 KB steps that stop at its declared size (a part whose directory entry lies fails its
    checksum instead of filling memory), and the parts are stored again without compression,
    so the format's parser reads exactly the bytes counted here.

    Raises:
        ArchiveRefusedError: Too many parts, a part or the total too large, or a part that
            expands more than ``limits.max_ratio`` times.
        DocumentParseError: Not a readable ZIP package.
    """
    what = f"the {kind.value} document"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            infos = package.infolist()
            _check_directory(infos, limits, what)
            parts = [(info, _inflate(package, info)) for info in infos if not info.is_dir()]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        msg = f"could not read {what}: its ZIP package is damaged: {exc}"
        raise DocumentParseError(msg, details={"kind": kind.value}) from exc
    repacked = io.BytesIO()
    with zipfile.ZipFile(repacked, "w", compression=zipfile.ZIP_STORED) as out:
        for info, content in parts:
            out.writestr(info.filename, content)
    return repacked.getvalue()


def _check_directory(infos: list[zipfile.ZipInfo], limits: ArchiveLimits, what: str) -> None:
    allowed = (
        f"documents may unpack to {limits.max_unpacked_bytes:,} bytes in all "
        f"(knowledge.max_unpacked_bytes), each part over {_RATIO_FLOOR:,} bytes expanding at "
        f"most {limits.max_ratio}x (knowledge.max_unpack_ratio)"
    )
    if len(infos) > limits.max_members:
        msg = f"{what} holds {len(infos):,} parts, more than {limits.max_members:,}"
        raise ArchiveRefusedError(msg, details={"parts": len(infos)})
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > limits.max_ratio:
            msg = (
                f"{what} would unpack {info.filename} from {info.compress_size:,} to "
                f"{info.file_size:,} bytes ({ratio:,.0f}x): refused unread as an archive "
                f"bomb; {allowed}"
            )
            raise ArchiveRefusedError(msg, details={"part": info.filename, "ratio": ratio})
        if total > limits.max_unpacked_bytes:
            msg = f"{what} would unpack to more than {total:,} bytes: refused unread; {allowed}"
            raise ArchiveRefusedError(msg, details={"unpacked_bytes": total})


def _inflate(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    # small reads: ZipFile.read() inflates a whole part in one call, however large the
    # stream is beyond the size its directory entry declares
    chunks: list[bytes] = []
    with package.open(info) as stream:
        while chunk := stream.read(_INFLATE_STEP):
            chunks.append(chunk)
    return b"".join(chunks)


def _utf8(data: bytes) -> str:
    return data.decode("utf-8-sig")


def _pdf(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    outline = _pdf_outline(reader)
    pages = []
    for index, page in enumerate(reader.pages):
        # the outline's entries become headings at the start of the page they point to, so
        # the splitter cuts there and chunks carry the section path
        headings = [f"{'#' * level} {title}" for level, title in outline.get(index, [])]
        pages.append("\n".join([*headings, (page.extract_text() or "").strip()]).strip())
    return "\n\n".join(page for page in pages if page)


def _pdf_outline(reader: Any) -> dict[int, list[tuple[int, str]]]:
    """The PDF's bookmarks by page index: ``(level, title)``, at most 6 levels and 1,000
    entries; an outline pypdf cannot read yields none (the text still counts)."""
    found: dict[int, list[tuple[int, str]]] = {}
    count = 0

    def walk(items: Any, level: int) -> None:
        nonlocal count
        for item in items:
            if count >= _MAX_OUTLINE:
                return
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            title = " ".join(str(getattr(item, "title", "") or "").split())[:200]
            page = reader.get_destination_page_number(item)
            if title and page is not None and page >= 0:
                found.setdefault(page, []).append((min(level, 6), title))
                count += 1

    try:
        walk(reader.outline, 1)
    except Exception:  # a damaged or cyclic outline (pypdf raises many types): no headings
        return {}
    return found


def _docx(data: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(data))
    lines: list[str] = []
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        level = _heading_level(style)
        lines.append(f"{'#' * level} {text}" if level else text)
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells]
            lines.append(" | ".join(cells))
    return "\n\n".join(lines)


def _heading_level(style: str) -> int:
    if style == "Title":
        return 1
    if style.startswith("Heading "):
        suffix = style.removeprefix("Heading ")
        if suffix.isdigit():
            return min(int(suffix), 6)
    return 0


def _html(text: str) -> str:
    from bs4 import BeautifulSoup
    from markdownify import markdownify

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg"]):
        tag.decompose()
    body = soup.body or soup
    markdown: str = markdownify(str(body), heading_style="ATX", strip=["img"])
    lines = [line.rstrip() for line in markdown.splitlines()]
    return "\n".join(lines).strip()


def _csv(text: str) -> str:
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, ",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    header = next(rows, None)
    if header is None:
        return ""
    header = [name.strip() or f"column {i + 1}" for i, name in enumerate(header)]
    records = []
    for row in rows:
        pairs = [
            f"{header[i] if i < len(header) else f'column {i + 1}'}: {value.strip()}"
            for i, value in enumerate(row)
            if value.strip()
        ]
        if pairs:
            records.append("\n".join(pairs))
    return "\n\n".join(records)
