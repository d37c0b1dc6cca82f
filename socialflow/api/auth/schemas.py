"""What the auth endpoints read and write."""

from __future__ import annotations

import uuid

from fastapi_users import schemas
from pydantic import BaseModel, Field

__all__ = ["LoginRead", "TokenRead", "UserCreate", "UserRead", "UserUpdate"]


class UserRead(schemas.BaseUser[uuid.UUID]):
    """A user as the API shows them."""

    display_name: str = ""


class UserCreate(schemas.BaseUserCreate):
    """Sign-up form."""

    display_name: str = Field(default="", max_length=100)


class UserUpdate(schemas.BaseUserUpdate):
    """Changes to one's own profile."""

    display_name: str | None = Field(default=None, max_length=100)


class LoginRead(BaseModel):
    """Answer to a browser login: who signed in, and the CSRF token to echo in X-CSRF-Token."""

    user: UserRead
    csrf_token: str


class TokenRead(BaseModel):
    """Answer to an API-client login."""

    access_token: str
    token_type: str = "bearer"
