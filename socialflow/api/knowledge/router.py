"""Knowledge-base endpoints: bases, document uploads and a search to try queries.

Viewers list, read and search; editors create, rename and delete bases and upload and delete
documents. Every base is looked up within the workspace of the path, so another workspace's
base answers 404 like one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from socialflow.api.deps import EditorMember, SessionDep, ViewerMember
from socialflow.api.errors import ErrorBody
from socialflow.api.knowledge import documents, service
from socialflow.api.knowledge.dependencies import EditedBase, KnowledgeDep, ViewedBase
from socialflow.api.knowledge.schemas import (
    DocumentPage,
    DocumentRead,
    KnowledgeBaseCreate,
    KnowledgeBasePage,
    KnowledgeBaseRead,
    KnowledgeBaseUpdate,
    SearchQuery,
    SearchResult,
)
from socialflow.knowledge import DocumentStatus

__all__ = ["UPLOAD_PATH", "router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/knowledge-bases", tags=["knowledge"])

#: Upload routes, for the body-size limit of the middleware (a regular expression).
UPLOAD_PATH = r"^/api/workspaces/[^/]+/knowledge-bases/[^/]+/documents/?$"

DocumentId = Annotated[uuid.UUID, Path(description="Document id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=2_147_483_647, description="Items to skip.")]


@router.post("", status_code=201, name="create_knowledge_base")
async def create_knowledge_base(
    body: KnowledgeBaseCreate, member: EditorMember, context: KnowledgeDep, session: SessionDep
) -> KnowledgeBaseRead:
    """Create a knowledge base (editor); its embedder is recorded and fixed from now on."""
    return await service.create(
        member.workspace_id, body, user_id=member.user.id, context=context, session=session
    )


@router.get("", name="list_knowledge_bases")
async def list_knowledge_bases(
    member: ViewerMember, session: SessionDep, limit: Limit = 20, offset: Offset = 0
) -> KnowledgeBasePage:
    """The workspace's knowledge bases, by name, with document counts."""
    return await service.list(member.workspace_id, limit=limit, offset=offset, session=session)


@router.get("/{knowledge_base_id}", name="get_knowledge_base")
async def get_knowledge_base(base: ViewedBase, session: SessionDep) -> KnowledgeBaseRead:
    """A knowledge base with its embedder and document counts."""
    return await service.read(base, session=session)


@router.patch("/{knowledge_base_id}", name="update_knowledge_base")
async def update_knowledge_base(
    base: EditedBase, body: KnowledgeBaseUpdate, session: SessionDep
) -> KnowledgeBaseRead:
    """Rename a knowledge base or change its description (editor)."""
    return await service.update(base, body, session=session)


@router.delete("/{knowledge_base_id}", status_code=204, name="delete_knowledge_base")
async def delete_knowledge_base(
    base: EditedBase, context: KnowledgeDep, session: SessionDep
) -> Response:
    """Delete a knowledge base with every document, stored file and chunk (editor)."""
    await service.delete(base, context=context, session=session)
    return Response(status_code=204)


#: The upload's body, documented by hand: the route reads it itself (``receive_file``).
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "title": "Body_upload_document",
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "title": "File",
                            "type": "string",
                            "format": "binary",
                            "description": (
                                "PDF, DOCX, HTML, CSV, Markdown or text; checked by content."
                            ),
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/{knowledge_base_id}/documents",
    status_code=202,
    name="upload_document",
    responses={
        200: {"model": DocumentRead, "description": "The same file was already there."},
        413: {"model": ErrorBody, "description": "Larger than the upload limit."},
    },
    openapi_extra=_UPLOAD_BODY,
)
async def upload_document(
    base: EditedBase,
    member: EditorMember,
    context: KnowledgeDep,
    session: SessionDep,
    request: Request,
    response: Response,
) -> DocumentRead:
    """Upload a document (editor); it is queued for ingestion (202).

    A file with the name of an existing document replaces it once ingested; the same file
    again (same name and content) changes nothing and answers the existing document (200).
    The body is read only after the caller's role and the base are checked, and no further
    than the upload limit (413), announced or not.
    """
    file = await documents.receive_file(request, context.settings.knowledge.max_upload_bytes)
    try:
        document, created = await documents.upload(
            base, file, user_id=member.user.id, context=context, session=session
        )
    finally:
        await file.close()
    if not created:
        response.status_code = 200
    return document


@router.get("/{knowledge_base_id}/documents", name="list_documents")
async def list_documents(
    base: ViewedBase,
    session: SessionDep,
    status: Annotated[
        DocumentStatus | None, Query(description="Only documents with this status.")
    ] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DocumentPage:
    """The base's documents with their ingestion status and progress, newest first."""
    return await documents.list(base, status=status, limit=limit, offset=offset, session=session)


@router.get("/{knowledge_base_id}/documents/{document_id}", name="get_document")
async def get_document(
    base: ViewedBase, document_id: DocumentId, session: SessionDep
) -> DocumentRead:
    """One document: status, error, chunks_done of chunks_total."""
    return documents.read(await documents.get_row(base, document_id, session=session))


@router.delete(
    "/{knowledge_base_id}/documents/{document_id}", status_code=204, name="delete_document"
)
async def delete_document(
    base: EditedBase, document_id: DocumentId, context: KnowledgeDep, session: SessionDep
) -> Response:
    """Delete a document, its stored file and every chunk of it (editor)."""
    document = await documents.get_row(base, document_id, session=session)
    await service.delete_document(base, document, context=context, session=session)
    return Response(status_code=204)


@router.post("/{knowledge_base_id}/search", name="search_knowledge_base")
async def search_knowledge_base(
    base: ViewedBase, body: SearchQuery, context: KnowledgeDep, session: SessionDep
) -> SearchResult:
    """Try a query: the best chunks by hybrid search (dense + BM25), with their documents."""
    return await service.search(base, body, context=context, session=session)
