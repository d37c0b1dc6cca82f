"""Document types are recognised by content, and each parser yields the document's text."""

from __future__ import annotations

import io
import zipfile

import pytest

from socialflow.knowledge._parse import (
    DocumentKind,
    DocumentParseError,
    UnsupportedDocumentError,
    parse,
    sniff,
)
from tests.fixtures.documents import (
    make_binary,
    make_corrupt_pdf,
    make_csv,
    make_docx,
    make_html,
    make_pdf,
)


def test_pdf_text_is_extracted() -> None:
    data = make_pdf(["Refunds are paid within 14 days.", "Keep the receipt (original)."])
    assert sniff("policy.pdf", data[:1024]) == (DocumentKind.PDF, "application/pdf")
    text = parse(data, DocumentKind.PDF)
    assert "Refunds are paid within 14 days." in text
    assert "Keep the receipt (original)." in text


def test_docx_headings_become_markdown_headings() -> None:
    data = make_docx("Shipping", ["Parcels leave the warehouse every Tuesday."])
    kind, _ = sniff("shipping.docx", data[:1024], io.BytesIO(data))
    assert kind is DocumentKind.DOCX
    text = parse(data, kind)
    assert "# Shipping" in text.splitlines()
    assert "Parcels leave the warehouse every Tuesday." in text


def test_html_is_converted_without_scripts() -> None:
    data = make_html("Opening hours", ["We open at <b>nine</b> on weekdays."])
    kind, content_type = sniff("hours.html", data[:1024])
    assert (kind, content_type) == (DocumentKind.HTML, "text/html")
    text = parse(data, kind)
    assert "# Opening hours" in text
    assert "We open at **nine** on weekdays." in text
    assert "do not index me" not in text


def test_csv_rows_become_header_value_lines() -> None:
    data = make_csv(["product", "price"], [["Blue mug", "12 EUR"], ["Red cup", "9 EUR"]])
    kind, _ = sniff("prices.csv", data[:1024])
    text = parse(data, kind)
    assert text.split("\n\n") == [
        "product: Blue mug\nprice: 12 EUR",
        "product: Red cup\nprice: 9 EUR",
    ]


def test_text_and_markdown_are_utf8() -> None:
    data = "# Café\n\nCrème brûlée on Sundays.".encode()
    assert parse(data, sniff("menu.md", data)[0]) == data.decode()
    assert sniff("notes.txt", b"\xef\xbb\xbfplain")[0] is DocumentKind.TEXT
    assert parse(b"\xef\xbb\xbfplain", DocumentKind.TEXT) == "plain"


def test_a_binary_renamed_pdf_is_not_a_pdf() -> None:
    with pytest.raises(UnsupportedDocumentError) as caught:
        sniff("invoice.pdf", make_binary())
    assert caught.value.code == "not_a_pdf"
    assert "not a PDF" in caught.value.message
    assert caught.value.details["field"] == "file"


@pytest.mark.parametrize(
    ("filename", "data", "code"),
    [
        ("notes.txt", make_binary(), "not_text"),
        ("notes.md", b"caf\xe9 latin-1 text is refused " * 3, "not_text"),
        ("page.html", b"just words, no markup", "not_html"),
        ("letter.docx", make_pdf(["x"]), "not_a_docx"),
        ("tool.exe", b"MZ", "unsupported_type"),
        ("noextension", b"hello", "unsupported_type"),
    ],
)
def test_content_must_match_the_name(filename: str, data: bytes, code: str) -> None:
    with pytest.raises(UnsupportedDocumentError) as caught:
        sniff(filename, data[:1024], io.BytesIO(data))
    assert caught.value.code == code


def test_a_zip_that_is_not_a_word_document_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("readme.txt", "hello")
    data = buffer.getvalue()
    with pytest.raises(UnsupportedDocumentError, match=r"word/document\.xml"):
        sniff("report.docx", data[:1024], io.BytesIO(data))


def test_utf8_cut_at_the_sniff_boundary_is_accepted() -> None:
    data = ("a" * 1023 + "é").encode()  # the 1 KiB head ends inside "é"
    assert sniff("long.txt", data[:1024])[0] is DocumentKind.TEXT


def test_a_corrupt_pdf_fails_with_the_parsers_reason() -> None:
    data = make_corrupt_pdf()
    assert sniff("broken.pdf", data[:1024])[0] is DocumentKind.PDF
    with pytest.raises(DocumentParseError) as caught:
        parse(data, DocumentKind.PDF)
    message = caught.value.message
    assert message.startswith("could not read the pdf document: ")
    assert len(message) > len("could not read the pdf document: ") + 5


def _pdf_with_outline(depth: int = 2) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for lines in (["Returns are accepted within 30 days."], ["Refunds take five days."]):
        writer.append(PdfReader(io.BytesIO(make_pdf(lines))))
    parent = writer.add_outline_item(title="Store policy", page_number=0)
    for level in range(1, depth):
        parent = writer.add_outline_item(title=f"Refunds {level}", page_number=1, parent=parent)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_bookmarks_become_the_heading_path_of_its_chunks() -> None:
    from socialflow.knowledge import document_title, split_markdown

    text = parse(_pdf_with_outline(), DocumentKind.PDF)
    assert text == (
        "# Store policy\nReturns are accepted within 30 days.\n\n"
        "## Refunds 1\nRefunds take five days."
    )
    chunks = split_markdown(text, title=document_title(text, "policy.pdf"))
    assert [(c.context, c.text) for c in chunks] == [
        ("Store policy", "Returns are accepted within 30 days."),
        ("Store policy > Refunds 1", "Refunds take five days."),
    ]


def test_a_deep_pdf_outline_is_capped_at_six_heading_levels() -> None:
    text = parse(_pdf_with_outline(depth=30), DocumentKind.PDF)
    assert "\n###### Refunds 29\n" in text and "#######" not in text
    assert text.endswith("Refunds take five days.")
