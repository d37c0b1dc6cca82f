"""What the auth endpoints read and write."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi_users import schemas
from pydantic import BaseModel, Field, model_validator

__all__ = ["LoginRead", "TokenRead", "UserCreate", "UserRead", "UserUpdate"]


class UserRead(schemas.BaseUser[uuid.UUID]):
    """A user as the API shows them."""

    display_name: str = ""


class UserCreate(schemas.BaseUserCreate):
    """Sign-up form."""

    display_name: str = Field(default="", max_length=100)


class UserUpdate(schemas.BaseUserUpdate):
    """Changes to one's own profile. A field that is sent must have a value: null is refused
    (an omitted field is left as it is)."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(key for key, value in data.items() if value is None)
            if nulls:
                msg = f"{', '.join(nulls)}: must not be null; omit a field to leave it unchanged"
                raise ValueError(msg)
        return data

    # a plain str: an explicit null must be refused, not written into a NOT NULL column;
    # an omitted field is left alone (updates apply only the fields that were sent)
    display_name: str = Field(default="", max_length=100)


class LoginRead(BaseModel):
    """Answer to a browser login: who signed in, and the CSRF token to echo in X-CSRF-Token."""

    user: UserRead
    csrf_token: str


class TokenRead(BaseModel):
    """Answer to an API-client login."""

    access_token: str
    token_type: str = "bearer"
