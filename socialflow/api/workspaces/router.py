"""Workspace and member endpoints."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from socialflow.api.deps import AdminMember, CurrentUser, SessionDep, ViewerMember
from socialflow.api.workspaces import service
from socialflow.api.workspaces.schemas import (
    MemberCreate,
    MemberRead,
    MemberUpdate,
    WorkspaceCreate,
    WorkspaceRead,
    WorkspaceUpdate,
)

__all__ = ["router"]

router = APIRouter(prefix="/workspaces", tags=["workspaces"])


@router.post("", status_code=201, name="create_workspace")
async def create_workspace(
    body: WorkspaceCreate, user: CurrentUser, session: SessionDep
) -> WorkspaceRead:
    """Create a workspace; you become its admin."""
    return await service.create(body.name, owner=user, session=session)


@router.get("", name="list_workspaces")
async def list_workspaces(user: CurrentUser, session: SessionDep) -> list[WorkspaceRead]:
    """The workspaces you belong to."""
    return await service.list_for_user(user, session=session)


@router.get("/{workspace_id}", name="get_workspace")
async def get_workspace(member: ViewerMember, session: SessionDep) -> WorkspaceRead:
    """One of your workspaces."""
    return await service.get(member.workspace_id, member.role, session=session)


@router.patch("/{workspace_id}", name="rename_workspace")
async def rename_workspace(
    body: WorkspaceUpdate, member: AdminMember, session: SessionDep
) -> WorkspaceRead:
    """Rename a workspace (admin)."""
    return await service.rename(member.workspace_id, body.name, member.role, session=session)


@router.delete("/{workspace_id}", status_code=204, name="delete_workspace")
async def delete_workspace(member: AdminMember, session: SessionDep) -> Response:
    """Delete a workspace and everything in it (admin)."""
    await service.delete(member.workspace_id, session=session)
    return Response(status_code=204)


@router.get("/{workspace_id}/members", name="list_members")
async def list_members(member: ViewerMember, session: SessionDep) -> list[MemberRead]:
    """Members and their roles."""
    return await service.list_members(member.workspace_id, session=session)


@router.post("/{workspace_id}/members", status_code=201, name="add_member")
async def add_member(body: MemberCreate, member: AdminMember, session: SessionDep) -> MemberRead:
    """Add a registered user by email (admin)."""
    return await service.add_member(member.workspace_id, body.email, body.role, session=session)


@router.patch("/{workspace_id}/members/{user_id}", name="change_member_role")
async def change_member_role(
    user_id: uuid.UUID, body: MemberUpdate, member: AdminMember, session: SessionDep
) -> MemberRead:
    """Change a member's role (admin); the last admin cannot be demoted."""
    return await service.change_role(member.workspace_id, user_id, body.role, session=session)


@router.delete("/{workspace_id}/members/{user_id}", status_code=204, name="remove_member")
async def remove_member(user_id: uuid.UUID, member: AdminMember, session: SessionDep) -> Response:
    """Remove a member (admin); the last admin cannot be removed."""
    await service.remove_member(member.workspace_id, user_id, session=session)
    return Response(status_code=204)
