"""What the auth endpoints read and write."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi_users import schemas
from pydantic import BaseModel, Field, model_validator

__all__ = ["LoginRead", "PasswordChange", "TokenRead", "UserCreate", "UserRead", "UserUpdate"]


class UserRead(schemas.BaseUser[uuid.UUID]):
    """A user as the API shows them."""

    display_name: str = ""


class UserCreate(schemas.BaseUserCreate):
    """Sign-up form."""

    display_name: str = Field(default="", max_length=100)


class UserUpdate(schemas.BaseUserUpdate):
    """Changes to one's own profile. A field that is sent must have a value: null is refused
    (an omitted field is left as it is). The password is not changed here but with
    ``POST /api/auth/change-password``; changing the email needs ``current_password``."""

    current_password: str = Field(
        default="",
        max_length=256,
        description="Your password now: required to change the email (a session alone cannot).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(key for key, value in data.items() if value is None)
            if nulls:
                msg = f"{', '.join(nulls)}: must not be null; omit a field to leave it unchanged"
                raise ValueError(msg)
        if isinstance(data, dict) and "password" in data:
            msg = (
                "password: change it with POST /api/auth/change-password, which asks for the "
                "current password"
            )
            raise ValueError(msg)
        return data

    def create_update_dict(self) -> dict[str, Any]:
        # the proof of the current password is checked by the user manager, never stored
        changes: dict[str, Any] = super().create_update_dict()  # type: ignore[no-untyped-call]
        changes.pop("current_password", None)
        return changes

    def create_update_dict_superuser(self) -> dict[str, Any]:
        changes: dict[str, Any] = super().create_update_dict_superuser()  # type: ignore[no-untyped-call]
        changes.pop("current_password", None)
        return changes

    # a plain str: an explicit null must be refused, not written into a NOT NULL column;
    # an omitted field is left alone (updates apply only the fields that were sent)
    display_name: str = Field(default="", max_length=100)


class PasswordChange(BaseModel):
    """A new password, proven by the current one."""

    current_password: str = Field(min_length=1, max_length=256, description="Your password now.")
    new_password: str = Field(
        max_length=256,
        description="At least 10 characters, not a common password, without your email's name.",
    )


class LoginRead(BaseModel):
    """Answer to a browser login: who signed in, and the CSRF token to echo in X-CSRF-Token."""

    user: UserRead
    csrf_token: str


class TokenRead(BaseModel):
    """Answer to an API-client login."""

    access_token: str
    token_type: str = "bearer"
