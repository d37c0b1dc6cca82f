"""What the workspace endpoints read and write."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from socialflow.api.workspaces.models import Role

__all__ = [
    "MemberCreate",
    "MemberRead",
    "MemberUpdate",
    "WorkspaceCreate",
    "WorkspaceRead",
    "WorkspaceUpdate",
]

Name = Field(min_length=1, max_length=100, description="Workspace name.")


class WorkspaceCreate(BaseModel):
    """A new workspace; its creator becomes its admin."""

    model_config = ConfigDict(extra="forbid")
    name: str = Name


class WorkspaceUpdate(BaseModel):
    """Renaming a workspace."""

    model_config = ConfigDict(extra="forbid")
    name: str = Name


class WorkspaceRead(BaseModel):
    """A workspace and the caller's role in it."""

    id: uuid.UUID
    name: str
    role: Role
    created_at: datetime


class MemberCreate(BaseModel):
    """Adding a registered user to a workspace."""

    model_config = ConfigDict(extra="forbid")
    email: EmailStr = Field(description="Email of a registered user.")
    role: Role = Field(default=Role.VIEWER, description="admin, editor or viewer.")


class MemberUpdate(BaseModel):
    """Changing a member's role."""

    model_config = ConfigDict(extra="forbid")
    role: Role = Field(description="admin, editor or viewer.")


class MemberRead(BaseModel):
    """A member of a workspace."""

    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    created_at: datetime
