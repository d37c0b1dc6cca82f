"""The generic webhook trigger: ``POST /hooks/{flow_id}`` stores the request in the inbox and
answers 202 at once; the flow runs on a worker.

Callers prove themselves with the trigger's secret: in ``X-Socialflow-Secret`` (``header``
mode), or by signing each request (``hmac_sha256`` mode, ``signing.py``: a timestamp within
five minutes, the delivery's ``Idempotency-Key`` and the body, all under one HMAC), which also
makes a replayed request a duplicate. A repeated ``Idempotency-Key`` is acknowledged and not
run again; in ``header`` mode it is optional.
"""

from __future__ import annotations

import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.auth.users import get_session
from socialflow.api.deps import EditorMember
from socialflow.api.errors import ErrorBody
from socialflow.api.hooks import signing
from socialflow.core import safejson
from socialflow.core.errors import NotFoundError, UserError
from socialflow.core.metrics import EVENTS_DEDUPLICATED, EVENTS_RECEIVED
from socialflow.core.settings import Settings
from socialflow.nodes.builtins import WebhookTriggerNode
from socialflow.orchestration import (
    EventIn,
    FlowTrigger,
    InboxWriter,
    TriggerCache,
    open_trigger_secret,
    rotate_trigger_secret,
)

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])
SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass(frozen=True)
class _HookTarget:
    workspace_id: uuid.UUID
    config: WebhookTriggerNode.Config
    secret: str


async def _hook_target(request: Request, flow_id: uuid.UUID) -> _HookTarget:
    # read through the process's trigger cache: a pause, republish or new secret is honoured
    # within TRIGGER_TTL_SECONDS of its commit (orchestration/_trigger_cache.py)
    triggers: TriggerCache = request.app.state.triggers
    trigger = await triggers.get(flow_id)
    if (
        trigger is None
        or not trigger.active
        or trigger.trigger_kind != WebhookTriggerNode.kind
        or trigger.secret is None
    ):
        msg = f"no active webhook flow {flow_id}"
        raise NotFoundError(msg, code="webhook_not_found")
    return _HookTarget(
        workspace_id=trigger.workspace_id,
        config=_config(trigger.trigger_config),
        secret=trigger.secret,
    )


_CONFIGS: dict[str, WebhookTriggerNode.Config] = {}


def _config(raw: dict[str, Any]) -> WebhookTriggerNode.Config:
    """The trigger's validated config; validated once per distinct config in a process."""
    key = json.dumps(raw, sort_keys=True)
    config = _CONFIGS.get(key)
    if config is None:
        if len(_CONFIGS) > 1000:
            _CONFIGS.clear()
        config = _CONFIGS[key] = WebhookTriggerNode.Config.model_validate(raw)
    return config


class HookAccepted(BaseModel):
    """The event was stored; the flow runs shortly."""

    event_id: uuid.UUID
    duplicate: bool


class WebhookInfo(BaseModel):
    """Where and how to call a flow's webhook."""

    url: str
    auth: str
    methods: list[str]
    secret: str


@router.get(
    "/api/workspaces/{workspace_id}/flows/{flow_id}/webhook",
    name="get_flow_webhook",
    tags=["flows"],
)
async def get_flow_webhook(
    request: Request,
    member: EditorMember,
    flow_id: Annotated[uuid.UUID, Path(description="The flow's id.")],
    session: SessionDep,
) -> WebhookInfo:
    """The published webhook flow's URL and secret (editor)."""
    settings: Settings = request.app.state.settings
    trigger = _own_webhook(await session.get(FlowTrigger, flow_id), member.workspace_id, flow_id)
    return _webhook_info(trigger, settings)


@router.post(
    "/api/workspaces/{workspace_id}/flows/{flow_id}/webhook/secret",
    name="rotate_flow_webhook_secret",
    tags=["flows"],
)
async def rotate_flow_webhook_secret(
    request: Request,
    member: EditorMember,
    flow_id: Annotated[uuid.UUID, Path(description="The flow's id.")],
    session: SessionDep,
) -> WebhookInfo:
    """Give the webhook a new secret (editor). The old one is refused by every API process
    within 2 seconds (``TRIGGER_TTL_SECONDS``), usually at once."""
    settings: Settings = request.app.state.settings
    _own_webhook(await session.get(FlowTrigger, flow_id), member.workspace_id, flow_id)
    trigger = await rotate_trigger_secret(session, settings=settings, flow_id=flow_id)
    assert trigger is not None
    info = _webhook_info(trigger, settings)
    await session.commit()
    return info


def _own_webhook(
    trigger: FlowTrigger | None, workspace_id: uuid.UUID, flow_id: uuid.UUID
) -> FlowTrigger:
    if (
        trigger is None
        or trigger.workspace_id != workspace_id
        or trigger.trigger_kind != WebhookTriggerNode.kind
    ):
        msg = f"flow {flow_id} has no published webhook trigger"
        raise NotFoundError(msg, code="webhook_not_found")
    return trigger


def _webhook_info(trigger: FlowTrigger, settings: Settings) -> WebhookInfo:
    config = WebhookTriggerNode.Config.model_validate(trigger.trigger_config)
    return WebhookInfo(
        url=f"{settings.api.public_url}/hooks/{trigger.flow_id}",
        auth=config.auth,
        methods=list(config.methods),
        secret=open_trigger_secret(trigger, settings),
    )


class _Unauthorized(UserError):
    code = "webhook_unauthorized"
    http_status = 401


class _TooLarge(UserError):
    code = "payload_too_large"
    http_status = 413


class _MethodNotAllowed(UserError):
    code = "method_not_allowed"
    http_status = 405


class _UnsupportedMedia(UserError):
    code = "unsupported_media_type"
    http_status = 415


async def _read_body(request: Request, limit: int) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            msg = f"request body is larger than {limit} bytes"
            raise _TooLarge(msg)
    return bytes(body)


def _check_secret(request: Request, body: bytes, secret: str, mode: str) -> str | None:
    """Authenticate the call; returns the delivery key a signed call carries."""
    if mode == "hmac_sha256":
        return signing.verify(request.headers, body, secret)
    ok = hmac.compare_digest(
        request.headers.get("x-socialflow-secret", "").encode(), secret.encode()
    )
    if not ok:
        msg = "this webhook needs the trigger's secret in the X-Socialflow-Secret header"
        raise _Unauthorized(msg)
    return None


def _parse(request: Request, body: bytes) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded",):
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError) as exc:
            msg = f"the form body is malformed: {exc}"
            raise UserError(msg, code="malformed_body") from exc
        safejson.check(form, what="the form body")  # %00 decodes to a NUL PostgreSQL refuses
        return form
    if content_type in ("application/json", "") or content_type.endswith("+json"):
        if not body:
            return None
        # strict: nothing too deep for the engine, no lone surrogate PostgreSQL would refuse
        return safejson.loads(body, what="the body")
    msg = f"content type {content_type!r} is not accepted; send application/json or a form"
    raise _UnsupportedMedia(msg)


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
    flow_id: Annotated[uuid.UUID, Path(description="The flow's id.")],
) -> HookAccepted:
    """Store the request as a trigger event of the flow; answer before the flow runs."""
    settings: Settings = request.app.state.settings
    target = await _hook_target(request, flow_id)
    config = target.config
    if request.method not in config.methods:
        msg = f"this webhook accepts {', '.join(config.methods)}, not {request.method}"
        raise _MethodNotAllowed(msg)
    body = await _read_body(request, settings.api.max_body_bytes)
    signed_key = _check_secret(request, body, target.secret, config.auth)
    parsed = _parse(request, body)
    wanted = {h.lower() for h in config.include_headers}
    payload = {
        "method": request.method,
        "body": parsed,
        "query": dict(request.query_params),
        "headers": {k: v for k, v in request.headers.items() if k.lower() in wanted},
    }
    # a signed call's key is covered by its signature: a replay lands on the same key
    idempotency = signed_key or request.headers.get("idempotency-key")
    key = f"hook:{flow_id}:{idempotency or uuid.uuid4()}"
    inbox: InboxWriter = request.app.state.inbox
    # answered only once the commit holding the row is done (grouped with concurrent calls)
    [stored] = await inbox.store(
        [
            EventIn(
                source="webhook",
                kind="webhook.request",
                dedupe_key=key[:300],
                payload=payload,
                workspace_id=target.workspace_id,
                flow_id=flow_id,
                raw_body=body,
                headers=payload["headers"],
            )
        ],
    )
    EVENTS_RECEIVED.labels(source="webhook").inc()
    if stored.duplicate:
        EVENTS_DEDUPLICATED.labels(source="webhook").inc()
    return HookAccepted(event_id=stored.id, duplicate=stored.duplicate)
