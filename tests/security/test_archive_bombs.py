"""Archive documents are opened with a cap on unpacked size and ratio, through the normal path:
upload over the API, ingestion by the worker, the document's status and reason.

A 120 KB DOCX that unpacks to 40 MB is refused unread with a reason naming the part, the
ratio and the settings; one whose ZIP directory lies about a 200 MB part (declaring 900 KB)
fails as damaged after inflating no more than it declared. The worker's memory stays far below
either size while it ingests them, and the knowledge base stays usable. Before, python-docx
unpacked the first whole (and ingested it) and inflated the second's 200 MB in one call.
"""

from __future__ import annotations

import io
import os
import tracemalloc
import zipfile

import pytest

from tests.api.test_knowledge import Harness, drain, harness  # noqa: F401 - fixtures
from tests.fixtures.documents import make_docx
from tests.fixtures.s3 import s3, s3_endpoint  # noqa: F401 - fixtures

MB = 1_000_000
PAD_STEP = 1 << 20


def _docx_parts() -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(make_docx("Bomb", ["Nothing to see here."]))) as package:
        return {info.filename: package.read(info) for info in package.infolist()}


def _write_padded(out: zipfile.ZipFile, name: str, document: bytes, unpacked: int) -> None:
    """``document`` (word/document.xml) with an XML comment that pads it to ``unpacked`` bytes,
    written in steps: valid XML whose size alone makes it a bomb."""
    head, tail = document.split(b"<w:body>", 1)
    opening, closing = head + b"<w:body><!--", b"-->" + b"<w:body>" + tail
    padding = unpacked - len(opening) - len(closing)
    with out.open(name, "w") as stream:
        stream.write(opening)
        while padding > 0:
            step = min(padding, PAD_STEP)
            stream.write(b"A" * step)
            padding -= step
        stream.write(closing)


def docx_bomb(unpacked: int) -> bytes:
    """A DOCX of about 120 KB whose word/document.xml unpacks to ``unpacked`` bytes."""
    parts = _docx_parts()
    # a photo as thumbnail (incompressible, as real ones are): the file is about 120 KB
    parts["docProps/thumbnail.jpeg"] = os.urandom(45_000)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        for name, content in parts.items():
            if name == "word/document.xml":
                _write_padded(package, name, content, unpacked)
            else:
                package.writestr(name, content)
    return out.getvalue()


def lying_about(data: bytes, name: str, declared: int) -> bytes:
    """``data`` with the ZIP directory entry of ``name`` declaring ``declared`` unpacked bytes."""
    buffer = bytearray(data)
    at = buffer.find(b"PK\x01\x02")
    while at != -1:
        name_length = int.from_bytes(buffer[at + 28 : at + 30], "little")
        if bytes(buffer[at + 46 : at + 46 + name_length]) == name.encode():
            buffer[at + 24 : at + 28] = declared.to_bytes(4, "little")  # uncompressed size
            return bytes(buffer)
        at = buffer.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"{name} not found")


@pytest.mark.prefect
@pytest.mark.timeout(600)
async def test_docx_bombs_fail_ingestion_with_a_clear_reason_in_bounded_memory(
    harness: Harness,  # noqa: F811
) -> None:
    await drain(harness)  # files other tests left queued in the session's shared database
    base_id = await harness.create_base()
    bomb = docx_bomb(40 * MB)
    assert 100_000 < len(bomb) < 140_000, len(bomb)
    liar = lying_about(docx_bomb(200 * MB), "word/document.xml", 900_000)
    for filename, data in (("bomb.docx", bomb), ("liar.docx", liar)):
        answer = await harness.upload(base_id, filename, data)
        assert answer.status_code == 202, answer.text

    tracemalloc.start()
    try:
        assert await drain(harness) == 2
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MB, f"ingesting the bombs peaked at {peak:,} bytes"

    docs = await harness.documents(base_id)
    refused = docs["bomb.docx"]
    assert refused["status"] == "failed", refused
    assert "word/document.xml" in refused["error"] and "40,0" in refused["error"]
    assert "knowledge.max_unpack_ratio" in refused["error"], refused["error"]
    damaged = docs["liar.docx"]
    assert damaged["status"] == "failed", damaged
    assert "damaged" in damaged["error"], damaged["error"]
    assert await harness.store_count(base_id) == 0

    # the base stays usable, and an ordinary DOCX still ingests
    fine = await harness.upload(
        base_id, "returns.docx", make_docx("Returns", ["Returns are free within 30 days."])
    )
    assert fine.status_code == 202, fine.text
    assert await drain(harness) == 1
    assert (await harness.documents(base_id))["returns.docx"]["status"] == "ready"
