"""Documents of a knowledge base: upload, list, get and delete.

An upload is read from the request with its size capped (``receive_file``), checked (size,
then type by content), stored under a generated name and written
as a ``pending`` row; workers claim pending rows and run the ingestion flow. Uploading a file
whose name already exists in the base replaces that document once the new one is ready; an
unchanged file (same name, same content) does nothing and answers the existing document.
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
import uuid
from contextlib import aclosing
from pathlib import PurePosixPath
from typing import IO

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from socialflow.api.body import BodyLimit, iter_body
from socialflow.api.errors import PayloadTooLargeError
from socialflow.api.knowledge.schemas import DocumentPage, DocumentRead
from socialflow.core.errors import NotFoundError, ValidationError
from socialflow.knowledge import (
    Document,
    DocumentStatus,
    IngestContext,
    KnowledgeBase,
    UnsupportedDocumentError,
    remove_document_data,
    sniff,
)

__all__ = [
    "MULTIPART_ALLOWANCE",
    "get_row",
    "list",
    "read",
    "receive_file",
    "upload",
]

_HASH_BLOCK = 1 << 20
FILENAME_MAX = 255
#: Room for the multipart boundaries and part headers around the file itself.
MULTIPART_ALLOWANCE = 64_000


def _upload_limit(limit: int) -> BodyLimit:
    msg = f"file is larger than the {limit}-byte upload limit"
    return BodyLimit(limit, msg, details={"field": "file", "max_bytes": limit})


def _too_large(limit: int) -> PayloadTooLargeError:
    return _upload_limit(limit).error()


def _no_file(message: str) -> ValidationError:
    problem = {"field": "body.file", "message": message, "type": "missing"}
    return ValidationError(f"file: {message}", problems=[problem])


async def receive_file(request: Request, limit: int) -> UploadFile:
    """The ``file`` part of a multipart upload, reading the body no further than the limit.

    The body is counted as it arrives, so a request without ``Content-Length`` (chunked
    transfer) is refused as soon as it passes ``limit`` + ``MULTIPART_ALLOWANCE`` instead of
    being spooled whole; what was spooled so far is closed. (A body announced too large is
    refused by the middleware before anything is read.)

    Raises:
        PayloadTooLargeError: The body passed the limit.
        ValidationError: Not multipart/form-data, malformed, or without a ``file`` part.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        msg = "send the document as multipart/form-data with a part named file"
        raise _no_file(msg)
    # the body may pass the file's limit by the multipart framing, and is refused past that
    refused = _upload_limit(limit)
    cap = BodyLimit(limit + MULTIPART_ALLOWANCE, refused.message, refused.details)
    try:
        async with aclosing(iter_body(request, cap)) as body:
            form = await MultiPartParser(request.headers, body, max_files=1, max_fields=10).parse()
    except MultiPartException as exc:
        msg = f"the multipart body could not be read ({exc.message})"
        raise _no_file(msg) from exc
    file = form.get("file")
    if not isinstance(file, UploadFile):
        await form.close()
        msg = "the multipart body has no part named file; send the document as file"
        raise _no_file(msg)
    return file


def read(document: Document) -> DocumentRead:
    """A document as the API shows it."""
    return DocumentRead.model_validate(document, from_attributes=True)


async def get_row(
    base: KnowledgeBase, document_id: uuid.UUID, *, session: AsyncSession
) -> Document:
    """A document of ``base``.

    Raises:
        NotFoundError: No such document in this base.
    """
    document = await session.scalar(
        select(Document).where(Document.id == document_id, Document.knowledge_base_id == base.id)
    )
    if document is None:
        msg = f"document {document_id} not found"
        raise NotFoundError(msg, code="document_not_found")
    return document


async def list(
    base: KnowledgeBase,
    *,
    status: DocumentStatus | None,
    limit: int,
    offset: int,
    session: AsyncSession,
) -> DocumentPage:
    """The base's documents, newest first."""
    where = [Document.knowledge_base_id == base.id]
    if status is not None:
        where.append(Document.status == status)
    total = await session.scalar(select(func.count()).select_from(Document).where(*where))
    rows = (
        await session.scalars(
            select(Document)
            .where(*where)
            .order_by(Document.created_at.desc(), Document.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return DocumentPage(
        items=[read(row) for row in rows], total=int(total or 0), limit=limit, offset=offset
    )


def _clean_filename(raw: str | None) -> str:
    # only the last path component, printable, and short enough to store
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable()).strip()
    if not name or name in {".", ".."}:
        problem = {"field": "body.file", "message": "the file has no name", "type": "missing"}
        msg = "file: the upload has no file name; send one such as handbook.pdf"
        raise ValidationError(msg, problems=[problem])
    if len(name) > FILENAME_MAX:
        stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
        name = stem[: FILENAME_MAX - len(suffix)] + suffix
    return name


def _measure(source: IO[bytes], limit: int) -> tuple[int, str, bytes]:
    """Size, sha256 and first KiB of a file, refusing it as soon as it passes ``limit``."""
    digest = hashlib.sha256()
    size = 0
    source.seek(0)
    head = source.read(1024)
    source.seek(0)
    while block := source.read(_HASH_BLOCK):
        size += len(block)
        if size > limit:
            raise _too_large(limit)
        digest.update(block)
    source.seek(0)
    return size, digest.hexdigest(), head


def _sniff(filename: str, head: bytes, source: IO[bytes]) -> tuple[str, str]:
    try:
        kind, content_type = sniff(filename, head, source)
    except UnsupportedDocumentError as exc:
        problem = {"field": "body.file", "message": exc.message, "type": exc.code}
        msg = f"file: {exc.message}"
        raise ValidationError(msg, problems=[problem]) from exc
    finally:
        source.seek(0)
    return kind.value, content_type


async def upload(
    base: KnowledgeBase,
    file: UploadFile,
    *,
    user_id: uuid.UUID,
    context: IngestContext,
    session: AsyncSession,
) -> tuple[DocumentRead, bool]:
    """Store an uploaded file and queue it for ingestion.

    Returns:
        The document, and whether a new one was created (False: the same file was already
        there, unchanged, and nothing was done).

    Raises:
        PayloadTooLargeError: Over ``knowledge.max_upload_bytes``.
        ValidationError: No file name, a type that is not allowed, or content that does not
            match the name (a binary renamed ``.pdf`` is "not a PDF").
    """
    limit = context.settings.knowledge.max_upload_bytes
    if file.size is not None and file.size > limit:
        raise _too_large(limit)
    filename = _clean_filename(file.filename)
    size, sha256, head = await asyncio.to_thread(_measure, file.file, limit)
    _kind, content_type = await asyncio.to_thread(_sniff, filename, head, file.file)
    same_name = (
        await session.scalars(
            select(Document)
            .where(Document.knowledge_base_id == base.id, Document.filename == filename)
            .order_by(Document.created_at.desc())
        )
    ).all()
    for existing in same_name:
        if existing.sha256 == sha256 and existing.status != DocumentStatus.FAILED:
            return read(existing), False
    replaces = next((doc for doc in same_name if doc.status != DocumentStatus.FAILED), None)
    stored_name = f"{base.id.hex}/{uuid.uuid4().hex}{PurePosixPath(filename).suffix.lower()}"
    url = await context.objects.aput(file.file, stored_name)
    document = Document(
        knowledge_base_id=base.id,
        workspace_id=base.workspace_id,
        filename=filename,
        stored_name=stored_name,
        storage_url=url,
        content_type=content_type,
        size=size,
        sha256=sha256,
        status=DocumentStatus.PENDING,
        replaces_id=replaces.id if replaces is not None else None,
        created_by=user_id,
    )
    session.add(document)
    try:
        await session.commit()
    except BaseException:
        await context.objects.adelete(url)
        raise
    # failed uploads of the same name have nothing worth keeping
    for failed in (doc for doc in same_name if doc.status == DocumentStatus.FAILED):
        await session.delete(failed)
        await session.commit()
        await remove_document_data(context, base, failed)
    return read(document), True
