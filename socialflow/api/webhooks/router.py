"""Meta's Instagram webhooks: the GET verification handshake, and signed POSTs stored in the
inbox before the answer (200 at once; flows run on a worker).

``POST /webhooks/instagram`` is the app-level callback: the dispatcher finds the workspaces
that connected the account. ``POST /webhooks/instagram/{flow_id}`` feeds one flow only.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse

from socialflow.api.body import BodyLimit, read_body
from socialflow.api.deps import InboxDep, RegistryDep, SettingsDep, TriggersDep
from socialflow.api.errors import UnauthorizedError
from socialflow.api.webhooks.service import WebhookReceipt, instagram_flow_workspace, store_webhook
from socialflow.core.errors import ForbiddenError, UserError
from socialflow.core.logging import get_logger
from socialflow.core.metrics import EVENTS_DEDUPLICATED, EVENTS_RECEIVED
from socialflow.core.settings import Settings
from socialflow.instagram import (
    MalformedWebhookError,
    check_challenge,
    verify_signature,
    webhook_secrets,
)
from socialflow.orchestration import InboxWriter

__all__ = ["router"]

router = APIRouter(prefix="/webhooks/instagram", tags=["webhooks"])
FlowId = Annotated[uuid.UUID, Path(description="The flow this callback feeds.")]
_log = get_logger(__name__)


def _handshake(
    request: Request, settings: Settings, flow_id: uuid.UUID | None = None
) -> PlainTextResponse:
    token = settings.instagram.verify_token
    challenge, reason = check_challenge(
        request.query_params, token.get_secret_value() if token else None
    )
    if challenge is None:
        _log.warning(
            "instagram webhook handshake refused",
            reason=reason,
            flow_id=str(flow_id) if flow_id else None,
        )
        # refused with 403 either way, as Meta expects; the code and message say which check
        code = "invalid_challenge" if reason.startswith("hub.challenge") else None
        raise ForbiddenError(reason, code=code or "webhook_verification_failed")
    return PlainTextResponse(challenge)


_HANDSHAKE_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/plain": {}}, "description": "The echoed hub.challenge."},
    403: {
        "description": "hub.mode is not subscribe, hub.verify_token does not match, or "
        "hub.challenge has characters other than letters, digits, - and _."
    },
}
_HANDSHAKE_PARAMS: dict[str, object] = {
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in ("hub.mode", "hub.verify_token", "hub.challenge")
    ]
}
_POST_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {
        "description": "The body is not a webhook: not JSON (malformed_body), nested deeper "
        "than 64 levels (json_too_deep), a lone surrogate, a NUL or not UTF-8 (invalid_unicode), "
        "NaN or an overflowing number (invalid_number). Nothing is stored."
    },
    401: {"description": "Missing or wrong X-Hub-Signature-256; nothing stored."},
    413: {"description": "Larger than instagram.max_webhook_bytes."},
}


@router.get(
    "",
    name="verify_instagram_webhook",
    response_class=PlainTextResponse,
    responses=_HANDSHAKE_RESPONSES,
    openapi_extra=_HANDSHAKE_PARAMS,
)
async def verify_instagram_webhook(request: Request, settings: SettingsDep) -> PlainTextResponse:
    """Meta's subscription handshake: echo ``hub.challenge`` when the verify token matches."""
    return _handshake(request, settings)


@router.get(
    "/{flow_id}",
    name="verify_instagram_flow_webhook",
    response_class=PlainTextResponse,
    responses=_HANDSHAKE_RESPONSES,
    openapi_extra=_HANDSHAKE_PARAMS,
)
async def verify_instagram_flow_webhook(
    request: Request, flow_id: FlowId, settings: SettingsDep
) -> PlainTextResponse:
    """The handshake for a per-flow callback URL."""
    return _handshake(request, settings, flow_id)


async def _verified_body(request: Request, settings: Settings) -> bytes:
    limit = settings.instagram.max_webhook_bytes
    too_large = f"webhook body is larger than {limit} bytes (instagram.max_webhook_bytes)"
    raw = await read_body(request, BodyLimit(limit, too_large))
    check = verify_signature(
        raw,
        request.headers,
        webhook_secrets(settings),
        allow_sha1=settings.instagram.allow_sha1_signature,
    )
    if not check:
        _log.warning("instagram webhook refused", reason=check.reason, bytes=len(raw))
        raise UnauthorizedError(check.reason, code="webhook_signature_invalid")
    return raw


async def _store(
    inbox: InboxWriter,
    body: bytes,
    *,
    flow_id: uuid.UUID | None = None,
    workspace_id: uuid.UUID | None = None,
) -> WebhookReceipt:
    started = time.perf_counter()
    try:
        receipt = await store_webhook(inbox, body, flow_id=flow_id, workspace_id=workspace_id)
    except MalformedWebhookError as exc:
        raise UserError(str(exc), code=exc.code) from exc
    EVENTS_RECEIVED.labels(source="instagram").inc(receipt.received)
    EVENTS_DEDUPLICATED.labels(source="instagram").inc(receipt.duplicates)
    _log.info(
        "instagram webhook stored",
        received=receipt.received,
        duplicates=receipt.duplicates,
        flow_id=str(flow_id) if flow_id else None,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return receipt


@router.post("", name="receive_instagram_webhook", responses=_POST_RESPONSES)
async def receive_instagram_webhook(
    request: Request, settings: SettingsDep, inbox: InboxDep
) -> WebhookReceipt:
    """Store every event of a signed batch; owners are resolved when it is dispatched."""
    body = await _verified_body(request, settings)
    return await _store(inbox, body)


@router.post("/{flow_id}", name="receive_instagram_flow_webhook", responses=_POST_RESPONSES)
async def receive_instagram_flow_webhook(
    request: Request,
    flow_id: FlowId,
    settings: SettingsDep,
    registry: RegistryDep,
    triggers: TriggersDep,
    inbox: InboxDep,
) -> WebhookReceipt:
    """Store every event of a signed batch for one flow with an Instagram trigger."""
    body = await _verified_body(request, settings)
    workspace_id = await instagram_flow_workspace(triggers, registry, flow_id)
    return await _store(inbox, body, flow_id=flow_id, workspace_id=workspace_id)
