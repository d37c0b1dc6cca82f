"""Conversation endpoints: runs waiting for answers (viewer), global keywords (editor)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from socialflow.api.conversations import service
from socialflow.api.conversations.schemas import KeywordsRead, KeywordsUpdate, WaitPage, WaitQuery
from socialflow.api.deps import EditorMember, SessionDep, ViewerMember

__all__ = ["router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/conversations", tags=["conversations"])


@router.get("/waits", name="list_waits")
async def list_waits(
    member: ViewerMember, session: SessionDep, query: Annotated[WaitQuery, Query()]
) -> WaitPage:
    """Runs of the workspace waiting for (or that waited for) a contact's answer: contact,
    account, question, deadline, and the reply that resumed them (viewer)."""
    return await service.list_waits(member.workspace_id, query, session=session)


@router.get("/keywords", name="get_global_keywords")
async def get_keywords(member: ViewerMember, session: SessionDep) -> KeywordsRead:
    """The workspace's global keywords (viewer)."""
    return await service.list_keywords(member.workspace_id, session=session)


@router.put("/keywords", name="replace_global_keywords")
async def replace_keywords(
    body: KeywordsUpdate, member: EditorMember, session: SessionDep
) -> KeywordsRead:
    """Replace the global keywords: sent alone by a contact, such a word goes to the flows
    even while a run waits for that contact's answer, and ends that run (editor)."""
    return await service.replace_keywords(member.workspace_id, body.keywords, session=session)
