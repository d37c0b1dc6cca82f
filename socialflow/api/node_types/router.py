"""The node palette: every installed node kind as the builder needs it, with an ETag."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from pydantic import TypeAdapter

from socialflow.api.deps import CurrentUser, RegistryDep
from socialflow.nodes import BaseNode, NodeDescription, NodeRegistry

__all__ = ["router"]

router = APIRouter(tags=["node_types"])

_descriptions = TypeAdapter(list[NodeDescription])


def _kinds(registry: NodeRegistry, *, all_versions: bool) -> list[type[BaseNode]]:
    """Kinds in registry order (by kind, then version); only the newest of each unless asked."""
    if all_versions:
        return list(registry)
    newest: dict[str, type[BaseNode]] = {}
    for node in registry:
        newest[node.kind] = node  # the registry yields versions in increasing order
    return list(newest.values())


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weak comparison, as RFC 9110 asks for GET)."""
    if if_none_match.strip() == "*":
        return True
    tags = (tag.strip() for tag in if_none_match.split(","))
    return any(tag.removeprefix("W/") == etag for tag in tags)


@router.get(
    "/node-types",
    name="list_node_types",
    response_model=list[NodeDescription],
    responses={304: {"description": "Not modified: the ETag in If-None-Match is current."}},
)
async def list_node_types(
    registry: RegistryDep,
    _user: CurrentUser,
    all_versions: Annotated[
        bool, Query(description="Every installed version of each kind, not only the newest.")
    ] = False,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Every node kind: title, category, ports, credential kinds, config schema, example.

    The answer carries a strong ``ETag``; send it back in ``If-None-Match`` to get 304 while
    the installed kinds are unchanged.
    """
    described = [node.describe() for node in _kinds(registry, all_versions=all_versions)]
    body = _descriptions.dump_json(described)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    # private: only signed-in users may read it; no-cache: revalidate with the ETag each time
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if if_none_match is not None and _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
