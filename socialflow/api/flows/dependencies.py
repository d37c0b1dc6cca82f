"""Dependencies of the flow endpoints: the flow named in the path.

The flow is looked up after the caller's role is checked and before the body is read, so a
flow of another workspace answers 404 whatever the request carries, and a role too low
answers 403 whether the flow exists or not.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path

from socialflow.api.deps import EditorMember, SessionDep, ViewerMember
from socialflow.api.flows import service
from socialflow.api.flows.models import Flow

__all__ = ["EditedFlow", "ViewedFlow"]

FlowId = Annotated[uuid.UUID, Path(description="Flow id.")]


async def _viewed_flow(flow_id: FlowId, member: ViewerMember, session: SessionDep) -> Flow:
    return await service.get_row(member.workspace_id, flow_id, session=session)


async def _edited_flow(flow_id: FlowId, member: EditorMember, session: SessionDep) -> Flow:
    return await service.get_row(member.workspace_id, flow_id, session=session)


#: The flow in the path, for a caller with at least the viewer role.
ViewedFlow = Annotated[Flow, Depends(_viewed_flow)]
#: The flow in the path, for a caller with at least the editor role.
EditedFlow = Annotated[Flow, Depends(_edited_flow)]
