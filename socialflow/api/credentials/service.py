"""Workspace credentials: create, list, get, rename or replace the secret, delete.

Secrets are sealed here and never read back: answers carry the masked hint only. URL fields
pass the address guard before anything is stored. Nodes get secrets through
``socialflow.core.credentials.DatabaseCredentialResolver``, not through here.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.credentials.schemas import CredentialCreate, CredentialRead, CredentialUpdate
from socialflow.core.credentials import (
    Credential,
    SecretFields,
    check_secret_urls,
    parse_secret,
    seal_credential,
)
from socialflow.core.crypto import KeyWrapper
from socialflow.core.errors import ConflictError, NotFoundError, ValidationError
from socialflow.core.logging import get_logger
from socialflow.core.netguard import AddressPolicy

__all__ = ["create", "delete", "get", "list_for_workspace", "update"]

_log = get_logger(__name__)


async def create(
    workspace_id: uuid.UUID,
    body: CredentialCreate,
    *,
    created_by: uuid.UUID,
    wrapper: KeyWrapper,
    policy: AddressPolicy,
    session: AsyncSession,
) -> CredentialRead:
    """Seal and store a new credential.

    Args:
        workspace_id: The workspace it belongs to.
        body: Name, kind and validated secret fields.
        created_by: The admin creating it.
        wrapper: The master keys.
        policy: Which non-public hosts URL fields may name.
        session: The request's session.

    Raises:
        ConflictError: The workspace already has a credential with that name.
        ValidationError: A URL field names a host the server must not call.
    """
    await _urls_allowed(body.secret, policy)
    await _name_is_free(workspace_id, body.name, session=session)
    row = Credential(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=body.name,
        kind=body.kind,
        created_by=created_by,
    )
    seal_credential(row, body.secret, wrapper)
    session.add(row)
    await _commit(body.name, session=session)
    _log.info(
        "credential created",
        workspace_id=str(workspace_id),
        credential_id=str(row.id),
        kind=row.kind,
    )
    return CredentialRead.model_validate(row)


async def list_for_workspace(
    workspace_id: uuid.UUID, *, kind: str | None = None, session: AsyncSession
) -> list[CredentialRead]:
    """The workspace's credentials by name, optionally only those of ``kind``."""
    query = select(Credential).where(Credential.workspace_id == workspace_id)
    if kind is not None:
        query = query.where(Credential.kind == kind)
    rows = await session.scalars(query.order_by(Credential.name, Credential.id))
    return [CredentialRead.model_validate(row) for row in rows]


async def get(
    workspace_id: uuid.UUID, credential_id: uuid.UUID, *, session: AsyncSession
) -> CredentialRead:
    """One credential of the workspace.

    Raises:
        NotFoundError: No such credential in this workspace.
    """
    return CredentialRead.model_validate(await _row(workspace_id, credential_id, session=session))


async def update(
    workspace_id: uuid.UUID,
    credential_id: uuid.UUID,
    body: CredentialUpdate,
    *,
    wrapper: KeyWrapper,
    policy: AddressPolicy,
    session: AsyncSession,
) -> CredentialRead:
    """Rename a credential and/or replace its secret fields (sealed under a fresh data key).

    Raises:
        NotFoundError: No such credential in this workspace.
        ConflictError: Another credential of the workspace has the new name.
        ValidationError: The new fields do not fit the credential's kind, or a URL field
            names a host the server must not call.
    """
    row = await _row(workspace_id, credential_id, session=session)
    secret = _secret_for(row.kind, body.secret) if body.secret is not None else None
    if secret is not None:
        await _urls_allowed(secret, policy)
    if body.name is not None and body.name != row.name:
        await _name_is_free(workspace_id, body.name, session=session)
        row.name = body.name
    if secret is not None:
        seal_credential(row, secret, wrapper)
    await _commit(row.name, session=session)
    _log.info(
        "credential updated",
        workspace_id=str(workspace_id),
        credential_id=str(row.id),
        secret_replaced=secret is not None,
    )
    return CredentialRead.model_validate(row)


async def delete(
    workspace_id: uuid.UUID, credential_id: uuid.UUID, *, session: AsyncSession
) -> None:
    """Delete a credential.

    Raises:
        NotFoundError: No such credential in this workspace.
    """
    row = await _row(workspace_id, credential_id, session=session)
    await session.delete(row)
    await session.commit()
    _log.info("credential deleted", workspace_id=str(workspace_id), credential_id=str(row.id))


async def _row(
    workspace_id: uuid.UUID, credential_id: uuid.UUID, *, session: AsyncSession
) -> Credential:
    row = await session.scalar(
        select(Credential).where(
            Credential.id == credential_id, Credential.workspace_id == workspace_id
        )
    )
    if row is None:
        # another workspace's credential is answered exactly like a missing one
        msg = f"credential {credential_id} not found in this workspace"
        raise NotFoundError(msg, code="credential_not_found")
    return row


async def _name_is_free(workspace_id: uuid.UUID, name: str, *, session: AsyncSession) -> None:
    taken = await session.scalar(
        select(Credential.id).where(
            Credential.workspace_id == workspace_id, Credential.name == name
        )
    )
    if taken is not None:
        raise _name_taken(name)


async def _commit(name: str, *, session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError as exc:
        # two requests raced past the name check; the unique constraint decided
        await session.rollback()
        raise _name_taken(name) from exc


def _name_taken(name: str) -> ConflictError:
    msg = f"this workspace already has a credential named {name!r}; choose another name"
    return ConflictError(msg, code="credential_name_taken", details={"field": "name"})


def _secret_for(kind: str, fields: dict[str, Any]) -> SecretFields:
    try:
        return parse_secret(kind, fields)
    except PydanticValidationError as exc:
        raise _invalid_secret(exc) from None


async def _urls_allowed(secret: SecretFields, policy: AddressPolicy) -> None:
    try:
        await check_secret_urls(secret, policy)
    except PydanticValidationError as exc:
        raise _invalid_secret(exc) from None


def _invalid_secret(exc: PydanticValidationError) -> ValidationError:
    problems = [
        {
            "field": ".".join(str(part) for part in ("body", "secret", *error["loc"])),
            "message": error["msg"],
            "type": error["type"],
        }
        for error in exc.errors(include_input=False, include_url=False)
    ]
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    msg = f"invalid request: {summary}"
    return ValidationError(msg, problems=problems)
