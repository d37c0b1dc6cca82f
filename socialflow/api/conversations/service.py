"""Reading waits and keeping the workspace's global keywords."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.conversations.schemas import KeywordsRead, WaitPage, WaitQuery, WaitRead
from socialflow.orchestration import ConversationWait, GlobalKeyword

__all__ = ["list_keywords", "list_waits", "replace_keywords"]


async def list_keywords(workspace_id: uuid.UUID, *, session: AsyncSession) -> KeywordsRead:
    """The workspace's global keywords, alphabetically."""
    rows = await session.scalars(
        select(GlobalKeyword.keyword)
        .where(GlobalKeyword.workspace_id == workspace_id)
        .order_by(GlobalKeyword.keyword)
    )
    return KeywordsRead(keywords=list(rows))


async def replace_keywords(
    workspace_id: uuid.UUID, keywords: list[str], *, session: AsyncSession
) -> KeywordsRead:
    """Replace the workspace's global keywords (commits)."""
    await session.execute(delete(GlobalKeyword).where(GlobalKeyword.workspace_id == workspace_id))
    session.add_all(GlobalKeyword(workspace_id=workspace_id, keyword=k) for k in keywords)
    await session.commit()
    return await list_keywords(workspace_id, session=session)


async def list_waits(
    workspace_id: uuid.UUID, query: WaitQuery, *, session: AsyncSession
) -> WaitPage:
    """A page of the workspace's waits, newest first."""
    conditions = [ConversationWait.workspace_id == workspace_id]
    if query.status:
        conditions.append(ConversationWait.status == query.status)
    if query.contact_id:
        conditions.append(ConversationWait.contact_id == query.contact_id)
    total = await session.scalar(
        select(func.count()).select_from(ConversationWait).where(*conditions)
    )
    rows = await session.scalars(
        select(ConversationWait)
        .where(*conditions)
        .order_by(ConversationWait.created_at.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    items = [
        WaitRead(
            id=w.id,
            execution_id=w.execution_id,
            flow_id=w.flow_id,
            node_id=w.node_id,
            account_id=w.account_id,
            contact_id=w.contact_id,
            status=w.status,
            expects=w.expects,
            question=w.question,
            tries=int((w.state or {}).get("tries", 0)),
            reply=w.reply,
            event_id=w.event_id,
            expires_at=w.expires_at,
            window_expires_at=w.window_expires_at,
            created_at=w.created_at,
            resolved_at=w.resolved_at,
        )
        for w in rows
    ]
    return WaitPage(items=items, total=total or 0, limit=query.limit, offset=query.offset)
