"""What the credential endpoints read and write; no answer ever carries a secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from socialflow.core.credentials import (
    AnthropicSecret,
    CredentialKind,
    HttpBasicSecret,
    HttpHeaderSecret,
    InstagramSecret,
    OllamaSecret,
    OpenAISecret,
    PineconeSecret,
    S3Secret,
    SecretFields,
    parse_secret,
)

__all__ = ["AnySecret", "CredentialCreate", "CredentialRead", "CredentialUpdate"]

#: The fields of one kind; which one is decided by the credential's ``kind``.
AnySecret = (
    InstagramSecret
    | OpenAISecret
    | AnthropicSecret
    | OllamaSecret
    | PineconeSecret
    | HttpHeaderSecret
    | HttpBasicSecret
    | S3Secret
)

Name = Field(
    min_length=1, max_length=100, description="Name, unique in the workspace (e.g. 'OpenAI prod')."
)
_SECRET_DOC = (
    "Secret fields of the kind: instagram {access_token}; openai {api_key, base_url?}; "
    "anthropic {api_key, base_url?}; ollama {base_url, api_key?}; pinecone {api_key}; "
    "http-header {header_name, header_value}; "
    "http-basic {username, password}; s3 {access_key_id, secret_access_key, region?, "
    "endpoint_url?}. Stored encrypted and never returned."
)


class CredentialCreate(BaseModel):
    """A new credential: its name, kind and secret fields."""

    model_config = ConfigDict(extra="forbid")
    name: str = Name
    kind: CredentialKind = Field(description="What the credential is for.")
    secret: AnySecret = Field(description=_SECRET_DOC)

    @field_validator("secret", mode="wrap")
    @classmethod
    def _fields_of_the_kind(
        cls, value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> SecretFields:
        kind = info.data.get("kind")
        if kind is None:
            # the kind itself is invalid and reported; checking fields against no kind is noise
            return SecretFields()
        # parse_secret's errors are located under "secret" and never repeat a value
        return parse_secret(kind, value)


class CredentialUpdate(BaseModel):
    """Renaming a credential, replacing its secret fields, or both."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=100, description="New name.")
    secret: dict[str, Any] | None = Field(
        default=None,
        description="All secret fields of the credential's kind, replacing the old ones. "
        + _SECRET_DOC,
        json_schema_extra={"writeOnly": True},
    )

    @model_validator(mode="after")
    def _something_to_change(self) -> CredentialUpdate:
        if self.name is None and self.secret is None:
            msg = "give a new name, new secret fields, or both"
            raise ValueError(msg)
        return self


class CredentialRead(BaseModel):
    """A credential as the API shows it: never its secret, only a masked hint."""

    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    kind: str = Field(description="What the credential is for.")
    hint: str = Field(description="A masked reminder such as '••••abcd'.")
    key_id: str = Field(description="Id of the master key wrapping its data key.")
    created_at: datetime
    updated_at: datetime
