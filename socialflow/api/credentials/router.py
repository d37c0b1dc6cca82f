"""Credential endpoints: admins manage a workspace's secrets, editors pick them by name."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from socialflow.api.credentials import service
from socialflow.api.credentials.schemas import CredentialCreate, CredentialRead, CredentialUpdate
from socialflow.api.deps import AdminMember, EditorMember, SessionDep, SettingsDep
from socialflow.core.credentials import CredentialKind, key_wrapper
from socialflow.core.crypto import KeyWrapper
from socialflow.core.netguard import AddressPolicy

__all__ = ["router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/credentials", tags=["credentials"])


def _key_wrapper(settings: SettingsDep) -> KeyWrapper:
    return key_wrapper(settings)


def _address_policy(settings: SettingsDep) -> AddressPolicy:
    return AddressPolicy.from_hosts(settings.http.allowed_hosts)


WrapperDep = Annotated[KeyWrapper, Depends(_key_wrapper)]
PolicyDep = Annotated[AddressPolicy, Depends(_address_policy)]


@router.post("", status_code=201, name="create_credential")
async def create_credential(
    body: CredentialCreate,
    member: AdminMember,
    wrapper: WrapperDep,
    policy: PolicyDep,
    session: SessionDep,
) -> CredentialRead:
    """Store a new credential, encrypted (admin). The answer shows a masked hint only.

    A URL field (``base_url``, ``endpoint_url``) naming a private, loopback, link-local or other
    special-purpose address, or a host resolving to one, is refused (422) unless the host is
    in ``SOCIALFLOW_HTTP_ALLOWED_HOSTS``.
    """
    return await service.create(
        member.workspace_id,
        body,
        created_by=member.user.id,
        wrapper=wrapper,
        policy=policy,
        session=session,
    )


@router.get("", name="list_credentials")
async def list_credentials(
    member: EditorMember,
    session: SessionDep,
    kind: Annotated[CredentialKind | None, Query(description="Only this kind.")] = None,
) -> list[CredentialRead]:
    """The workspace's credentials by name, for credential pickers (editor)."""
    return await service.list_for_workspace(member.workspace_id, kind=kind, session=session)


@router.get("/{credential_id}", name="get_credential")
async def get_credential(
    credential_id: uuid.UUID, member: EditorMember, session: SessionDep
) -> CredentialRead:
    """One credential, without its secret (editor)."""
    return await service.get(member.workspace_id, credential_id, session=session)


@router.patch("/{credential_id}", name="update_credential")
async def update_credential(
    credential_id: uuid.UUID,
    body: CredentialUpdate,
    member: AdminMember,
    wrapper: WrapperDep,
    policy: PolicyDep,
    session: SessionDep,
) -> CredentialRead:
    """Rename a credential and/or replace all its secret fields (admin); URL fields are
    checked as when creating."""
    return await service.update(
        member.workspace_id, credential_id, body, wrapper=wrapper, policy=policy, session=session
    )


@router.delete("/{credential_id}", status_code=204, name="delete_credential")
async def delete_credential(
    credential_id: uuid.UUID, member: AdminMember, session: SessionDep
) -> Response:
    """Delete a credential (admin)."""
    await service.delete(member.workspace_id, credential_id, session=session)
    return Response(status_code=204)
