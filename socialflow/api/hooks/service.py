"""The generic webhook trigger's rules, apart from HTTP: which flow a call reaches, how it
proves itself, how its body is read, what is stored; and a flow's webhook URL and secret.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.api.errors import (
    MethodNotAllowedError,
    UnauthorizedError,
    UnsupportedMediaTypeError,
)
from socialflow.api.hooks import signing
from socialflow.api.hooks.schemas import HookAccepted, WebhookInfo
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

__all__ = [
    "HookCall",
    "HookTarget",
    "authenticate",
    "get_target",
    "get_webhook",
    "parse_body",
    "rotate_secret",
    "store_call",
]

#: the header that carries the trigger's secret in ``header`` mode
SECRET_HEADER = "x-socialflow-secret"


@dataclass(frozen=True)
class HookTarget:
    """The flow a call reaches: its workspace, trigger config and secret."""

    flow_id: uuid.UUID
    workspace_id: uuid.UUID
    config: WebhookTriggerNode.Config
    secret: str

    def check_method(self, method: str) -> None:
        """Refuse a method the trigger does not accept.

        Raises:
            MethodNotAllowedError: ``method`` is not among the trigger's ``methods``.
        """
        if method not in self.config.methods:
            msg = f"this webhook accepts {', '.join(self.config.methods)}, not {method}"
            raise MethodNotAllowedError(msg)


@dataclass(frozen=True)
class HookCall:
    """One authenticated call, as stored: what the router read off the request."""

    method: str
    body: bytes
    parsed: Any
    query: Mapping[str, str]
    headers: Mapping[str, str]
    #: the delivery key a signed call carries (covered by its signature), else the caller's
    idempotency_key: str | None


async def get_target(triggers: TriggerCache, flow_id: uuid.UUID) -> HookTarget:
    """The active webhook flow ``flow_id``.

    Reads through the process's trigger cache: a pause, republish or new secret is honoured
    within ``TRIGGER_TTL_SECONDS`` of its commit (``orchestration/_trigger_cache.py``).

    Raises:
        NotFoundError: No active flow with a webhook trigger and a secret.
    """
    trigger = await triggers.get(flow_id)
    if (
        trigger is None
        or not trigger.active
        or trigger.trigger_kind != WebhookTriggerNode.kind
        or trigger.secret is None
    ):
        msg = f"no active webhook flow {flow_id}"
        raise NotFoundError(msg, code="webhook_not_found")
    return HookTarget(
        flow_id=flow_id,
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


def authenticate(target: HookTarget, headers: Mapping[str, str], body: bytes) -> str | None:
    """Check the call's secret or signature.

    Returns:
        The delivery key a signed call carries; None in ``header`` mode.

    Raises:
        UnauthorizedError: A missing or wrong secret or signature (401).
        UserError: A signed call's Idempotency-Key that cannot be signed (400).
    """
    if target.config.auth == "hmac_sha256":
        return signing.verify(headers, body, target.secret)
    ok = hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), target.secret.encode())
    if not ok:
        msg = "this webhook needs the trigger's secret in the X-Socialflow-Secret header"
        raise UnauthorizedError(msg, code="webhook_unauthorized")
    return None


def parse_body(content_type: str, body: bytes) -> Any:
    """The body as JSON or as a form, decoded with the rules every stored payload follows.

    Args:
        content_type: The request's ``Content-Type`` header ("" when absent).
        body: The raw body.

    Raises:
        UserError: A malformed form, or JSON ``safejson`` refuses (400).
        UnsupportedMediaTypeError: Neither JSON nor a form (415).
    """
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError) as exc:
            msg = f"the form body is malformed: {exc}"
            raise UserError(msg, code="malformed_body") from exc
        safejson.check(form, what="the form body")  # %00 decodes to a NUL PostgreSQL refuses
        return form
    if media_type in ("application/json", "") or media_type.endswith("+json"):
        if not body:
            return None
        # strict: nothing too deep for the engine, no lone surrogate PostgreSQL would refuse
        return safejson.loads(body, what="the body")
    msg = f"content type {media_type!r} is not accepted; send application/json or a form"
    raise UnsupportedMediaTypeError(msg)


async def store_call(inbox: InboxWriter, target: HookTarget, call: HookCall) -> HookAccepted:
    """Store the call as a trigger event of the flow; returns once its row is committed.

    A repeated delivery key is a duplicate: acknowledged, not stored (nor run) again.
    """
    wanted = {h.lower() for h in target.config.include_headers}
    headers = {k: v for k, v in call.headers.items() if k.lower() in wanted}
    payload = {
        "method": call.method,
        "body": call.parsed,
        "query": dict(call.query),
        "headers": headers,
    }
    key = f"hook:{target.flow_id}:{call.idempotency_key or uuid.uuid4()}"
    # answered only once the commit holding the row is done (grouped with concurrent calls)
    [stored] = await inbox.store(
        [
            EventIn(
                source="webhook",
                kind="webhook.request",
                dedupe_key=key[:300],
                payload=payload,
                workspace_id=target.workspace_id,
                flow_id=target.flow_id,
                raw_body=call.body,
                headers=headers,
            )
        ],
    )
    EVENTS_RECEIVED.labels(source="webhook").inc()
    if stored.duplicate:
        EVENTS_DEDUPLICATED.labels(source="webhook").inc()
    return HookAccepted(event_id=stored.id, duplicate=stored.duplicate)


async def get_webhook(
    workspace_id: uuid.UUID, flow_id: uuid.UUID, *, settings: Settings, session: AsyncSession
) -> WebhookInfo:
    """The published webhook flow's URL and secret.

    Raises:
        NotFoundError: The flow (of this workspace) has no published webhook trigger.
    """
    trigger = _own_webhook(await session.get(FlowTrigger, flow_id), workspace_id, flow_id)
    return _webhook_info(trigger, settings)


async def rotate_secret(
    workspace_id: uuid.UUID, flow_id: uuid.UUID, *, settings: Settings, session: AsyncSession
) -> WebhookInfo:
    """Give the webhook a new secret and commit it; returns the new URL and secret.

    Raises:
        NotFoundError: The flow (of this workspace) has no published webhook trigger.
    """
    _own_webhook(await session.get(FlowTrigger, flow_id), workspace_id, flow_id)
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
