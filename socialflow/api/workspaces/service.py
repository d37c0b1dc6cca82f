"""Workspaces and memberships: create, list, rename, delete; add, change and remove members."""

from __future__ import annotations

import uuid

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.auth.models import User
from socialflow.api.workspaces.models import Membership, Role, Workspace
from socialflow.api.workspaces.schemas import MemberRead, WorkspaceRead
from socialflow.contacts import Contact, ContactField, ContactTag
from socialflow.core.errors import ConflictError, NotFoundError

__all__ = [
    "add_member",
    "change_role",
    "create",
    "delete",
    "get",
    "list_for_user",
    "list_members",
    "remove_member",
    "rename",
]


async def create(name: str, *, owner: User, session: AsyncSession) -> WorkspaceRead:
    """Create a workspace with ``owner`` as its admin."""
    workspace = Workspace(name=name, created_by=owner.id)
    session.add(workspace)
    await session.flush()
    session.add(Membership(workspace_id=workspace.id, user_id=owner.id, role=Role.ADMIN))
    await session.commit()
    return WorkspaceRead(
        id=workspace.id, name=workspace.name, role=Role.ADMIN, created_at=workspace.created_at
    )


async def list_for_user(user: User, *, session: AsyncSession) -> list[WorkspaceRead]:
    """The workspaces ``user`` belongs to, by name."""
    rows = await session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user.id)
        .order_by(Workspace.name, Workspace.id)
    )
    return [
        WorkspaceRead(id=w.id, name=w.name, role=Role(role), created_at=w.created_at)
        for w, role in rows
    ]


async def get(workspace_id: uuid.UUID, role: Role, *, session: AsyncSession) -> WorkspaceRead:
    """One workspace, as seen by a member with ``role``."""
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        msg = f"workspace {workspace_id} not found"
        raise NotFoundError(msg, code="workspace_not_found")
    return WorkspaceRead(
        id=workspace.id, name=workspace.name, role=role, created_at=workspace.created_at
    )


async def rename(
    workspace_id: uuid.UUID, name: str, role: Role, *, session: AsyncSession
) -> WorkspaceRead:
    """Rename a workspace."""
    workspace = await session.get(Workspace, workspace_id)
    if workspace is None:
        msg = f"workspace {workspace_id} not found"
        raise NotFoundError(msg, code="workspace_not_found")
    workspace.name = name
    await session.commit()
    return WorkspaceRead(
        id=workspace.id, name=workspace.name, role=role, created_at=workspace.created_at
    )


async def delete(workspace_id: uuid.UUID, *, session: AsyncSession) -> None:
    """Delete a workspace and everything in it."""
    workspace = await session.get(Workspace, workspace_id)
    if workspace is not None:
        # contacts live below the API and know no workspace table: the people go with it
        # (their tags, values and event links by cascade)
        for model in (Contact, ContactTag, ContactField):
            await session.execute(sql_delete(model).where(model.workspace_id == workspace_id))
        await session.delete(workspace)
        await session.commit()


async def list_members(workspace_id: uuid.UUID, *, session: AsyncSession) -> list[MemberRead]:
    """Members of a workspace, by email."""
    rows = await session.execute(
        select(Membership, User)
        .join(User, Membership.user_id == User.id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(User.email)
    )
    return [_member_read(m, u) for m, u in rows]


async def add_member(
    workspace_id: uuid.UUID, email: str, role: Role, *, session: AsyncSession
) -> MemberRead:
    """Add a registered user by email.

    Raises:
        NotFoundError: No user has that email.
        ConflictError: The user is already a member.
    """
    user = await session.scalar(select(User).where(func.lower(User.email) == email.lower()))
    if user is None:
        msg = f"no registered user has the email {email}"
        raise NotFoundError(msg, code="user_not_found")
    exists = await session.scalar(
        select(Membership).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user.id
        )
    )
    if exists is not None:
        msg = f"{email} is already a member"
        raise ConflictError(msg, code="already_member")
    membership = Membership(workspace_id=workspace_id, user_id=user.id, role=role)
    session.add(membership)
    await session.commit()
    return _member_read(membership, user)


async def change_role(
    workspace_id: uuid.UUID, user_id: uuid.UUID, role: Role, *, session: AsyncSession
) -> MemberRead:
    """Change a member's role; the last admin cannot be demoted.

    Raises:
        NotFoundError: Not a member.
        ConflictError: It would leave the workspace without an admin.
    """
    membership, user = await _membership(workspace_id, user_id, session)
    if membership.role == Role.ADMIN and role != Role.ADMIN:
        await _keep_an_admin(workspace_id, session)
    membership.role = role
    await session.commit()
    return _member_read(membership, user)


async def remove_member(
    workspace_id: uuid.UUID, user_id: uuid.UUID, *, session: AsyncSession
) -> None:
    """Remove a member; the last admin cannot be removed.

    Raises:
        NotFoundError: Not a member.
        ConflictError: It would leave the workspace without an admin.
    """
    membership, _user = await _membership(workspace_id, user_id, session)
    if membership.role == Role.ADMIN:
        await _keep_an_admin(workspace_id, session)
    await session.delete(membership)
    await session.commit()


async def _membership(
    workspace_id: uuid.UUID, user_id: uuid.UUID, session: AsyncSession
) -> tuple[Membership, User]:
    row = (
        await session.execute(
            select(Membership, User)
            .join(User, Membership.user_id == User.id)
            .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )
    ).first()
    if row is None:
        msg = f"user {user_id} is not a member of this workspace"
        raise NotFoundError(msg, code="member_not_found")
    return row[0], row[1]


async def _keep_an_admin(workspace_id: uuid.UUID, session: AsyncSession) -> None:
    admins = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.role == Role.ADMIN)
    )
    if (admins or 0) <= 1:
        msg = "a workspace needs at least one admin: make another member admin first"
        raise ConflictError(msg, code="last_admin")


def _member_read(membership: Membership, user: User) -> MemberRead:
    return MemberRead(
        user_id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=Role(membership.role),
        created_at=membership.created_at,
    )
