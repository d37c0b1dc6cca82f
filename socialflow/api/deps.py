"""Dependencies every domain router uses: what the app holds (session, settings, registry, the
webhook inbox and trigger cache: ``app_state.py``), the current user, workspace roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy import select

from socialflow.api.app_state import (
    DatabaseDep,
    EmailDep,
    InboxDep,
    LoginLimiterDep,
    RegistryDep,
    SessionDep,
    SettingsDep,
    TriggersDep,
)
from socialflow.api.auth.models import User
from socialflow.api.auth.users import current_active_user
from socialflow.api.workspaces.models import Membership, Role
from socialflow.core.errors import ForbiddenError, NotFoundError

__all__ = [
    "AdminMember",
    "CurrentUser",
    "DatabaseDep",
    "EditorMember",
    "EmailDep",
    "InboxDep",
    "LoginLimiterDep",
    "Member",
    "RegistryDep",
    "SessionDep",
    "SettingsDep",
    "TriggersDep",
    "ViewerMember",
    "require_role",
]

CurrentUser = Annotated[User, Depends(current_active_user)]


@dataclass(frozen=True)
class Member:
    """The caller as a member of the workspace in the path."""

    workspace_id: uuid.UUID
    user: User
    role: Role


async def _member(
    workspace_id: Annotated[uuid.UUID, Path(description="Workspace id.")],
    user: CurrentUser,
    session: SessionDep,
) -> Member:
    role = await session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == workspace_id, Membership.user_id == user.id
        )
    )
    if role is None:
        # the same answer whether the workspace exists or not: no existence leak
        msg = f"workspace {workspace_id} not found"
        raise NotFoundError(msg, code="workspace_not_found")
    return Member(workspace_id=workspace_id, user=user, role=Role(role))


def require_role(role: Role):  # type: ignore[no-untyped-def]  # FastAPI reads the signature
    """A dependency resolving the caller's membership and refusing roles below ``role``."""

    async def dependency(member: Annotated[Member, Depends(_member)]) -> Member:
        if member.role.rank < role.rank:
            msg = f"this needs the {role.value} role in the workspace; you are {member.role.value}"
            raise ForbiddenError(msg, details={"required_role": role.value})
        return member

    dependency.required_role = role  # type: ignore[attr-defined]  # read by the role-matrix test
    return dependency


ViewerMember = Annotated[Member, Depends(require_role(Role.VIEWER))]
EditorMember = Annotated[Member, Depends(require_role(Role.EDITOR))]
AdminMember = Annotated[Member, Depends(require_role(Role.ADMIN))]
