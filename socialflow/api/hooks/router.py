"""The generic webhook trigger over HTTP: ``POST /hooks/{flow_id}`` (and the other methods a
trigger may accept) stores the request in the inbox and answers 202 at once; the flow runs on
a worker. Editors read a flow's webhook URL and secret, and rotate the secret.

The rules (authentication, parsing, what is stored) are in ``service.py``.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from socialflow.api.body import BodyLimit, read_body
from socialflow.api.deps import EditorMember, InboxDep, SessionDep, SettingsDep, TriggersDep
from socialflow.api.errors import ErrorBody
from socialflow.api.hooks import service
from socialflow.api.hooks.schemas import HookAccepted, WebhookInfo

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])
FlowId = Annotated[uuid.UUID, Path(description="The flow's id.")]


@router.get(
    "/api/workspaces/{workspace_id}/flows/{flow_id}/webhook",
    name="get_flow_webhook",
    tags=["flows"],
)
async def get_flow_webhook(
    member: EditorMember, flow_id: FlowId, settings: SettingsDep, session: SessionDep
) -> WebhookInfo:
    """The published webhook flow's URL and secret (editor)."""
    return await service.get_webhook(
        member.workspace_id, flow_id, settings=settings, session=session
    )


@router.post(
    "/api/workspaces/{workspace_id}/flows/{flow_id}/webhook/secret",
    name="rotate_flow_webhook_secret",
    tags=["flows"],
)
async def rotate_flow_webhook_secret(
    member: EditorMember, flow_id: FlowId, settings: SettingsDep, session: SessionDep
) -> WebhookInfo:
    """Give the webhook a new secret (editor). The old one is refused by every API process
    within 2 seconds (``TRIGGER_TTL_SECONDS``), usually at once."""
    return await service.rotate_secret(
        member.workspace_id, flow_id, settings=settings, session=session
    )


_HOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Not JSON or a form (malformed_body), JSON nested deeper than 64 levels "
        "(json_too_deep), a lone surrogate, a NUL or not UTF-8 (invalid_unicode), NaN or an "
        "overflowing number (invalid_number), or a signed call's Idempotency-Key with other "
        "characters than letters, digits, - _ : (invalid_idempotency_key). Nothing is stored.",
    },
    401: {
        "description": "Missing or wrong secret or signature (webhook_unauthorized), or a "
        "signed timestamp more than 5 minutes off (webhook_timestamp_expired)."
    },
    413: {"description": "Too large."},
}


# one route per method, so each has its own operation id in the OpenAPI document
@router.put(
    "/hooks/{flow_id}", status_code=202, name="receive_webhook_put", responses=_HOOK_RESPONSES
)
@router.patch(
    "/hooks/{flow_id}", status_code=202, name="receive_webhook_patch", responses=_HOOK_RESPONSES
)
@router.post("/hooks/{flow_id}", status_code=202, name="receive_webhook", responses=_HOOK_RESPONSES)
async def receive_webhook(
    request: Request,
    flow_id: FlowId,
    settings: SettingsDep,
    triggers: TriggersDep,
    inbox: InboxDep,
) -> HookAccepted:
    """Store the request as a trigger event of the flow; answer before the flow runs."""
    target = await service.get_target(triggers, flow_id)
    target.check_method(request.method)
    limit = settings.api.max_body_bytes
    body = await read_body(request, BodyLimit(limit, f"request body is larger than {limit} bytes"))
    signed_key = service.authenticate(target, request.headers, body)
    call = service.HookCall(
        method=request.method,
        body=body,
        parsed=service.parse_body(request.headers.get("content-type", ""), body),
        query=request.query_params,
        headers=request.headers,
        # a signed call's key is covered by its signature: a replay lands on the same key
        idempotency_key=signed_key or request.headers.get("idempotency-key"),
    )
    return await service.store_call(inbox, target, call)
