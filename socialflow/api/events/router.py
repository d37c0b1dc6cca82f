"""Event log endpoints: the workspace's inbound events, and one with its payload and outcome."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from socialflow.api.deps import SessionDep, ViewerMember
from socialflow.api.events import service
from socialflow.api.events.schemas import EventDetail, EventPage, EventQuery

__all__ = ["router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/events", tags=["events"])


@router.get("", name="list_events")
async def list_events(
    member: ViewerMember, session: SessionDep, query: Annotated[EventQuery, Query()]
) -> EventPage:
    """The workspace's inbound events, newest first, each with what became of it: the runs it
    started, or per flow that could have taken it the reason it did not (viewer)."""
    return await service.list_events(member.workspace_id, query, session=session)


@router.get("/{event_id}", name="get_event")
async def get_event(event_id: uuid.UUID, member: ViewerMember, session: SessionDep) -> EventDetail:
    """One event: its payload as triggers see it, the raw body and kept headers (secrets and
    tokens never shown), dispatch attempts, what became of it per flow, and the event as a test
    sample (viewer)."""
    return await service.get_event(member.workspace_id, event_id, session=session)
