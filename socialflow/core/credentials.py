"""Workspace credentials, sealed with envelope encryption.

The table lives in core because the API manages credentials while the engine, the Instagram
client and the knowledge stores resolve them for nodes; none of those may import the API.
Everything that touches a credential's secret goes through this module: the fields each kind
takes (URL fields a user sets are checked by the address guard before saving), sealing and
opening a row, its masked hint, master-key rotation, and the resolver that hands decrypted
fields to nodes.
"""

from __future__ import annotations

import json
import typing
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pydantic.config import JsonDict
from pydantic_core import InitErrorDetails, PydanticCustomError
from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint, Uuid, select, update
from sqlalchemy.orm import Mapped, mapped_column

from socialflow.core.crypto import KeyWrapper, LocalKeyWrapper, Sealed, open_secret, rewrap, seal
from socialflow.core.db import Base, Database, rows_touched, utcnow
from socialflow.core.errors import UserError
from socialflow.core.logging import get_logger

if TYPE_CHECKING:
    from socialflow.core.netguard import AddressPolicy
    from socialflow.core.settings import Settings

__all__ = [
    "CREDENTIAL_KINDS",
    "SECRET_MODELS",
    "AnthropicSecret",
    "Credential",
    "CredentialKind",
    "DatabaseCredentialResolver",
    "HttpBasicSecret",
    "HttpHeaderSecret",
    "InstagramSecret",
    "OllamaSecret",
    "OpenAISecret",
    "PineconeSecret",
    "S3Secret",
    "SecretFields",
    "check_secret_urls",
    "hint_for",
    "key_wrapper",
    "open_credential",
    "parse_secret",
    "rotate_master_key",
    "seal_credential",
    "url_fields",
]

_log = get_logger(__name__)

#: Secrets shorter than this get a hint without any real character.
HINT_MIN_LENGTH = 12
_HINT_MASK = "••••"
_ROTATE_BATCH = 200
_ERROR_TITLE = "credential secret"


class Credential(Base):
    """A named secret of a workspace (API key, token, password), encrypted at rest."""

    __tablename__ = "credential"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # the workspace table belongs to the API; the key names it without importing it
    # typed here: a key to a table not imported would leave it untyped (NullType), and a
    # process that never loads the API's models could then not read its credentials
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        Uuid(), ForeignKey("workspace.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(40), default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- kinds and their fields -----------------------------------------------------------------


class _UserUrl:
    """Marks a field as a URL the server will call: the address guard checks it when saved."""


Token = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8192)]
HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048), _UserUrl()]


def _secret(description: str, **constraints: Any) -> Any:
    # hidden from repr; the web app renders it as a password input
    extra: JsonDict = {"writeOnly": True, "format": "password"}
    return Field(repr=False, description=description, json_schema_extra=extra, **constraints)


class SecretFields(BaseModel):
    """Base of each kind's secret fields: unknown fields are refused, values never shown."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)
    #: The field whose last characters make the hint.
    hint_field: ClassVar[str]


class InstagramSecret(SecretFields):
    """kind ``instagram``: an Instagram (Graph API) access token."""

    hint_field = "access_token"
    access_token: Token = _secret("Instagram access token.")


class OpenAISecret(SecretFields):
    """kind ``openai``: any OpenAI-compatible LLM or embeddings endpoint."""

    hint_field = "api_key"
    api_key: Token = _secret("API key.")
    base_url: HttpUrl | None = Field(
        default=None, description="Base URL (http:// or https://); empty means OpenAI's own."
    )


class AnthropicSecret(SecretFields):
    """kind ``anthropic``: an Anthropic API key."""

    hint_field = "api_key"
    api_key: Token = _secret("API key.")
    base_url: HttpUrl | None = Field(
        default=None, description="Base URL (http:// or https://); empty means Anthropic's own."
    )


class OllamaSecret(SecretFields):
    """kind ``ollama``: an Ollama server, with a key when a gateway in front of it wants one."""

    hint_field = "base_url"
    base_url: HttpUrl = Field(description="Ollama server URL, e.g. http://ollama:11434.")
    api_key: Token | None = _secret(
        "Bearer token for a gateway in front of Ollama; optional.", default=None
    )


class PineconeSecret(SecretFields):
    """kind ``pinecone``: a Pinecone API key."""

    hint_field = "api_key"
    api_key: Token = _secret("API key.")


class HttpHeaderSecret(SecretFields):
    """kind ``http-header``: one header sent by HTTP request nodes (``Authorization``, …)."""

    hint_field = "header_value"
    header_name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
        description="Header name: letters, digits and !#$%&'*+.^_`|~- only.",
    )
    header_value: str = _secret(
        "Header value, on one line.", min_length=1, max_length=8192, pattern=r"^[^\r\n]*$"
    )


class HttpBasicSecret(SecretFields):
    """kind ``http-basic``: a user name and password for HTTP basic authentication."""

    hint_field = "password"
    username: str = Field(
        min_length=1, max_length=200, pattern=r"^[^:\r\n]*$", description="User name, without ':'."
    )
    password: str = _secret("Password.", min_length=1, max_length=1024)


class S3Secret(SecretFields):
    """kind ``s3``: keys for S3 or an S3-compatible store (MinIO, …)."""

    hint_field = "secret_access_key"
    access_key_id: Token = Field(description="Access key id.")
    secret_access_key: Token = _secret("Secret access key.")
    region: str | None = Field(
        default=None, max_length=64, pattern=r"^[a-z0-9-]+$", description="Region, e.g. eu-west-1."
    )
    endpoint_url: HttpUrl | None = Field(
        default=None, description="Endpoint of an S3-compatible store; empty means AWS."
    )


CredentialKind = Literal[
    "instagram", "openai", "anthropic", "ollama", "pinecone", "http-header", "http-basic", "s3"
]
SECRET_MODELS: dict[str, type[SecretFields]] = {
    "instagram": InstagramSecret,
    "openai": OpenAISecret,
    "anthropic": AnthropicSecret,
    "ollama": OllamaSecret,
    "pinecone": PineconeSecret,
    "http-header": HttpHeaderSecret,
    "http-basic": HttpBasicSecret,
    "s3": S3Secret,
}
CREDENTIAL_KINDS: tuple[str, ...] = tuple(SECRET_MODELS)


def _fields_of(model: type[SecretFields]) -> str:
    return ", ".join(
        f"{name} ({'required' if info.is_required() else 'optional'})"
        for name, info in model.model_fields.items()
    )


def parse_secret(kind: str, fields: Any) -> SecretFields:
    """Validate the secret fields of a credential of ``kind``.

    Error messages name the field and what the kind takes; they never repeat a value.

    Args:
        kind: One of ``CREDENTIAL_KINDS``.
        fields: The fields as given, e.g. ``{"api_key": "..."}``.

    Returns:
        The fields as the kind's model.

    Raises:
        pydantic.ValidationError: Unknown kind, or fields the kind does not take or lacks;
            locations are relative to the secret (``("api_key",)``).
    """
    model = SECRET_MODELS.get(kind)
    if model is None:
        unknown = PydanticCustomError(
            "unknown_kind",
            "unknown credential kind {kind}; use one of: {kinds}",
            {"kind": repr(kind), "kinds": ", ".join(CREDENTIAL_KINDS)},
        )
        raise PydanticValidationError.from_exception_data(
            _ERROR_TITLE, [InitErrorDetails(type=unknown, loc=(), input="")]
        )
    try:
        return model.model_validate(fields)
    except PydanticValidationError as exc:
        problems: list[InitErrorDetails] = []
        for problem in exc.errors(include_input=False, include_url=False):
            if problem["type"] == "model_type":
                message = f"must be an object of fields; {kind} takes {_fields_of(model)}"
            elif problem["type"] == "extra_forbidden":
                message = f"unknown field; {kind} takes {_fields_of(model)}"
            elif problem["type"] == "missing":
                message = f"required for kind {kind}"
            else:
                field_info = (
                    model.model_fields.get(str(problem["loc"][0])) if problem["loc"] else None
                )
                described = f" ({field_info.description})" if field_info else ""
                message = f"{problem['msg']}{described}"
            problems.append(
                InitErrorDetails(
                    type=PydanticCustomError(problem["type"], message),
                    loc=problem["loc"],
                    input="",
                )
            )
        raise PydanticValidationError.from_exception_data(_ERROR_TITLE, problems) from None


def _is_user_url(annotation: Any) -> bool:
    # ``HttpUrl | None`` keeps the marker inside the union's Annotated member
    if typing.get_origin(annotation) is Annotated:
        return any(isinstance(m, _UserUrl) for m in annotation.__metadata__)
    return any(_is_user_url(arg) for arg in typing.get_args(annotation))


def url_fields(model: type[SecretFields]) -> tuple[str, ...]:
    """The fields of a kind that hold a URL the server will call (typed ``HttpUrl``)."""
    return tuple(
        name
        for name, info in model.model_fields.items()
        if any(isinstance(m, _UserUrl) for m in info.metadata) or _is_user_url(info.annotation)
    )


async def check_secret_urls(secret: SecretFields, policy: AddressPolicy) -> None:
    """Refuse URL fields the server must not call: the address guard, at save time.

    Each URL field (``base_url``, ``endpoint_url``) must be an absolute http(s) URL without a
    user name or password, whose host is not, and does not resolve to, a private, loopback,
    link-local or other special-purpose address, unless the policy allows it. Calls made with
    the credential are checked again when they connect.

    Args:
        secret: Validated fields (see ``parse_secret``).
        policy: The process's address policy (``SOCIALFLOW_HTTP_ALLOWED_HOSTS``).

    Raises:
        pydantic.ValidationError: One problem per refused field, located like ``parse_secret``'s
            (``("base_url",)``), typed with the guard's code (``address_forbidden``,
            ``invalid_url``).
    """
    from socialflow.core.netguard import refusal_in

    problems: list[InitErrorDetails] = []
    for name in url_fields(type(secret)):
        value = getattr(secret, name)
        if value is None:
            continue
        try:
            await policy.check_url(str(value))
        except UserError as exc:
            if refusal_in(exc) is None:
                raise
            problems.append(
                InitErrorDetails(
                    type=PydanticCustomError(exc.code, "{reason}", {"reason": exc.message}),
                    loc=(name,),
                    input="",
                )
            )
    if problems:
        raise PydanticValidationError.from_exception_data(_ERROR_TITLE, problems)


def hint_for(secret: SecretFields) -> str:
    """A masked reminder of a secret: its last 4 characters, or none when it is short.

    Args:
        secret: The validated fields; the kind's ``hint_field`` is the one shown.

    Returns:
        ``••••abcd``, or just ``••••`` for a main field shorter than 12 characters.
    """
    value = str(getattr(secret, secret.hint_field))
    if len(value) < HINT_MIN_LENGTH:
        return _HINT_MASK
    return _HINT_MASK + value[-4:]


# --- sealing and opening --------------------------------------------------------------------


def key_wrapper(settings: Settings) -> LocalKeyWrapper:
    """The master keys of this process.

    Args:
        settings: Their ``security.master_keys``; when empty, outside production, a key derived
            from ``secret_key`` (development only; production refuses empty master keys).

    Raises:
        ValueError: A master key is malformed, or none is configured in production.
    """
    fallback = settings.secret_key if settings.environment != "production" else None
    try:
        return LocalKeyWrapper(settings.security.master_keys, fallback_secret=fallback)
    except ValueError as exc:
        msg = f"SOCIALFLOW_SECURITY_MASTER_KEYS: {exc}"
        raise ValueError(msg) from exc


def _context(row: Credential) -> bytes:
    # bound as associated data: a ciphertext copied to another row or workspace does not open
    return f"socialflow.credential:{row.workspace_id}:{row.id}".encode()


def seal_credential(row: Credential, secret: SecretFields, wrapper: KeyWrapper) -> None:
    """Encrypt ``secret`` into ``row`` under a fresh data key, and set its hint.

    Gives the row an id first when it has none, since the id is bound to the ciphertext.

    Args:
        row: A credential with its ``workspace_id`` and ``kind`` set.
        secret: Fields of the row's kind (see ``parse_secret``).
        wrapper: The master keys.

    Raises:
        UserError: ``secret`` is not of the row's kind.
    """
    if SECRET_MODELS.get(row.kind) is not type(secret):
        msg = f"a {type(secret).__name__} cannot be sealed into a credential of kind {row.kind!r}"
        raise UserError(msg, code="credential_kind_mismatch")
    if row.id is None:
        row.id = uuid.uuid4()
    plaintext = json.dumps(
        secret.model_dump(mode="json", exclude_none=True), separators=(",", ":"), sort_keys=True
    ).encode()
    sealed = seal(plaintext, wrapper, context=_context(row))
    row.ciphertext = sealed.ciphertext
    row.wrapped_key = sealed.wrapped_key
    row.key_id = sealed.key_id
    row.hint = hint_for(secret)


def open_credential(row: Credential, wrapper: KeyWrapper) -> dict[str, Any]:
    """Decrypt a credential's fields.

    Args:
        row: The credential as stored.
        wrapper: The master keys; must hold the one named by ``row.key_id``.

    Returns:
        The secret fields, e.g. ``{"api_key": "..."}``.

    Raises:
        DecryptionError: Unknown master key, tampered data, or a ciphertext that belongs to
            another row or workspace.
    """
    sealed = Sealed(ciphertext=row.ciphertext, wrapped_key=row.wrapped_key, key_id=row.key_id)
    fields: dict[str, Any] = json.loads(open_secret(sealed, wrapper, context=_context(row)))
    return fields


async def rotate_master_key(db: Database, settings: Settings) -> int:
    """Re-wrap, in batches, every data key not wrapped by the current master key.

    Secrets themselves are not re-encrypted; a row re-sealed meanwhile is picked up again.

    Args:
        db: The application database.
        settings: Master keys: the first is current, the others must hold the old ones.

    Returns:
        How many credentials were re-wrapped.

    Raises:
        DecryptionError: A data key is wrapped by a master key missing from the settings.
    """
    wrapper = key_wrapper(settings)
    current = wrapper.current_key_id
    count = 0
    while True:
        async with db.session() as session:
            query = select(Credential).where(Credential.key_id != current).order_by(Credential.id)
            rows = list((await session.scalars(query.limit(_ROTATE_BATCH))).all())
            if not rows:
                break
            for row in rows:
                fresh = rewrap(Sealed(row.ciphertext, row.wrapped_key, row.key_id), wrapper)
                # matched on the old wrapping, so a row re-sealed meanwhile is not overwritten;
                # a new wrapping of the same secret is not an edit, so updated_at stays
                result = await session.execute(
                    update(Credential)
                    .where(Credential.id == row.id, Credential.wrapped_key == row.wrapped_key)
                    .values(
                        wrapped_key=fresh.wrapped_key,
                        key_id=fresh.key_id,
                        updated_at=Credential.updated_at,
                    )
                    .execution_options(synchronize_session=False)
                )
                count += rows_touched(result)
    _log.info("credentials re-wrapped", count=count, key_id=current)
    return count


# --- resolving for nodes --------------------------------------------------------------------


class DatabaseCredentialResolver:
    """Hands nodes the decrypted fields of their workspace's credentials, and nothing else.

    Args:
        db: The application database.
        wrapper: The master keys.
        workspace_id: The workspace whose credentials the run may use.
    """

    def __init__(self, db: Database, wrapper: KeyWrapper, workspace_id: uuid.UUID) -> None:
        self._db = db
        self._wrapper = wrapper
        self._workspace_id = workspace_id

    async def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        """The fields of the workspace's credential of ``kind`` (named ``name`` when given).

        Raises:
            UserError: ``credential_missing`` when there is none, or several and no name.
            DecryptionError: The credential does not open with the configured master keys.
        """
        query = select(Credential).where(
            Credential.workspace_id == self._workspace_id, Credential.kind == kind
        )
        if name is not None:
            query = query.where(Credential.name == name)
        async with self._db.sessionmaker() as session:
            rows = list((await session.scalars(query.order_by(Credential.name))).all())
        if not rows:
            named = f" named {name!r}" if name is not None else ""
            msg = (
                f"this workspace has no credential of kind {kind!r}{named}; "
                "an admin can add one under the workspace's credentials"
            )
            raise UserError(msg, code="credential_missing", details={"kind": kind, "name": name})
        if len(rows) > 1:
            names = ", ".join(repr(row.name) for row in rows)
            msg = (
                f"this workspace has {len(rows)} credentials of kind {kind!r} ({names}); "
                "choose one by name in the node's settings"
            )
            raise UserError(msg, code="credential_missing", details={"kind": kind, "name": None})
        row = rows[0]
        _log.debug("credential resolved", credential_id=str(row.id), kind=kind)
        return open_credential(row, self._wrapper)
