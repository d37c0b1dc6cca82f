"""Dependencies of the knowledge endpoints: the ingestion context, and the base in the path.

The base is looked up after the caller's role is checked and, for uploads (whose route reads
its body itself), before the body is read, so a base of another workspace answers 404
whatever the request carries, and a role too low answers 403 whether the base exists or not.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Request

from socialflow.api.deps import DatabaseDep, EditorMember, SessionDep, SettingsDep, ViewerMember
from socialflow.api.knowledge import service
from socialflow.knowledge import IngestContext, KnowledgeBase

__all__ = ["EditedBase", "KnowledgeDep", "ViewedBase", "get_knowledge"]

KnowledgeBaseId = Annotated[uuid.UUID, Path(description="Knowledge base id.")]


def get_knowledge(request: Request, settings: SettingsDep, database: DatabaseDep) -> IngestContext:
    """The app's knowledge context (storage, embedders), built on first use.

    A caller may install its own as ``app.state.knowledge`` before the first request.
    """
    context: IngestContext | None = getattr(request.app.state, "knowledge", None)
    if context is None:
        context = IngestContext(settings=settings, db=database)
        request.app.state.knowledge = context
    return context


async def _viewed_base(
    knowledge_base_id: KnowledgeBaseId, member: ViewerMember, session: SessionDep
) -> KnowledgeBase:
    return await service.get_row(member.workspace_id, knowledge_base_id, session=session)


async def _edited_base(
    knowledge_base_id: KnowledgeBaseId, member: EditorMember, session: SessionDep
) -> KnowledgeBase:
    return await service.get_row(member.workspace_id, knowledge_base_id, session=session)


KnowledgeDep = Annotated[IngestContext, Depends(get_knowledge)]
#: The base in the path, for a caller with at least the viewer role.
ViewedBase = Annotated[KnowledgeBase, Depends(_viewed_base)]
#: The base in the path, for a caller with at least the editor role.
EditedBase = Annotated[KnowledgeBase, Depends(_edited_base)]
