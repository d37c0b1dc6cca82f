"""Dependencies of the flow endpoints: the node registry, and the flow named in the path.

The flow is looked up after the caller's role is checked and before the body is read, so a
flow of another workspace answers 404 whatever the request carries, and a role too low
answers 403 whether the flow exists or not.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Path, Request

from socialflow.api.deps import EditorMember, SessionDep, ViewerMember
from socialflow.api.flows import service
from socialflow.api.flows.models import Flow
from socialflow.core.settings import Settings
from socialflow.nodes import NodeRegistry

__all__ = [
    "EditedFlow",
    "RegistryDep",
    "SettingsDep",
    "ViewedFlow",
    "get_app_settings",
    "get_registry",
]

FlowId = Annotated[uuid.UUID, Path(description="Flow id.")]


def get_registry(request: Request) -> NodeRegistry:
    """The app's node registry (``app.state.registry``)."""
    registry: NodeRegistry = request.app.state.registry
    return registry


async def _viewed_flow(flow_id: FlowId, member: ViewerMember, session: SessionDep) -> Flow:
    return await service.get_row(member.workspace_id, flow_id, session=session)


async def _edited_flow(flow_id: FlowId, member: EditorMember, session: SessionDep) -> Flow:
    return await service.get_row(member.workspace_id, flow_id, session=session)


RegistryDep = Annotated[NodeRegistry, Depends(get_registry)]


def get_app_settings(request: Request) -> Settings:
    """The app's settings (``app.state.settings``)."""
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
#: The flow in the path, for a caller with at least the viewer role.
ViewedFlow = Annotated[Flow, Depends(_viewed_flow)]
#: The flow in the path, for a caller with at least the editor role.
EditedFlow = Annotated[Flow, Depends(_edited_flow)]
