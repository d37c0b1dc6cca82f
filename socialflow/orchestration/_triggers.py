"""The engine's side of activating a flow version: the graph snapshot runs read, the active
trigger the dispatcher matches, and the webhook secret of a flow."""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.credentials import key_wrapper
from socialflow.core.crypto import Sealed, open_secret, seal
from socialflow.core.settings import Settings
from socialflow.orchestration._graph import CompiledGraph
from socialflow.orchestration._inbox import notify
from socialflow.orchestration._inbox_models import FlowTrigger
from socialflow.orchestration._models import GraphSnapshot
from socialflow.orchestration._trigger_cache import TRIGGER_CHANNEL, changed

__all__ = [
    "deactivate_trigger",
    "open_trigger_secret",
    "rotate_trigger_secret",
    "save_snapshot",
    "upsert_trigger",
]


async def save_snapshot(session: AsyncSession, snapshot_id: uuid.UUID, graph_json: str) -> None:
    """Store the graph a version runs, once; a snapshot is never changed afterwards."""
    exists = await session.scalar(select(GraphSnapshot.id).where(GraphSnapshot.id == snapshot_id))
    if exists is None:
        session.add(GraphSnapshot(id=snapshot_id, graph=graph_json))
        await session.flush()


async def upsert_trigger(
    session: AsyncSession,
    *,
    settings: Settings,
    flow_id: uuid.UUID,
    workspace_id: uuid.UUID,
    flow_name: str,
    version_id: uuid.UUID,
    version_number: int,
    graph: CompiledGraph,
    graph_json: str,
    deployment_id: uuid.UUID | None = None,
) -> FlowTrigger:
    """Make ``version_id`` the flow's active version for dispatch; keep its webhook secret."""
    await save_snapshot(session, version_id, graph_json)
    trigger_node = graph.trigger
    row = await session.get(FlowTrigger, flow_id)
    if row is None:
        row = FlowTrigger(flow_id=flow_id)
        session.add(row)
    row.workspace_id = workspace_id
    row.flow_name = flow_name
    row.version_id = version_id
    row.version_number = version_number
    row.trigger_kind = trigger_node.spec.kind
    row.trigger_config = trigger_node.config.model_dump(mode="json")
    row.graph = graph_json
    row.active = True
    row.removed = False
    row.deployment_id = deployment_id
    if row.secret_ciphertext is None:
        _new_secret(row, settings)
    await session.flush()
    await _changed(session, flow_id)
    return row


def _new_secret(row: FlowTrigger, settings: Settings) -> None:
    sealed = seal(
        secrets.token_urlsafe(32).encode(), key_wrapper(settings), context=row.flow_id.bytes
    )
    row.secret_ciphertext = sealed.ciphertext
    row.secret_wrapped_key = sealed.wrapped_key
    row.secret_key_id = sealed.key_id


async def _changed(session: AsyncSession, flow_id: uuid.UUID) -> None:
    """Make the API processes forget the flow's trigger when this transaction commits."""
    changed(session, flow_id)
    await notify(session, TRIGGER_CHANNEL, str(flow_id))


async def rotate_trigger_secret(
    session: AsyncSession, *, settings: Settings, flow_id: uuid.UUID
) -> FlowTrigger | None:
    """Give the flow's webhook a new secret; the old one is refused once this commits (within
    ``TRIGGER_TTL_SECONDS`` in every API process). None when the flow has no trigger."""
    row = await session.get(FlowTrigger, flow_id)
    if row is None:
        return None
    _new_secret(row, settings)
    await session.flush()
    await _changed(session, flow_id)
    return row


async def deactivate_trigger(
    session: AsyncSession, flow_id: uuid.UUID, *, removed: bool = False
) -> None:
    """Stop dispatching events to the flow: paused (its events say so) or deleted."""
    await session.execute(
        update(FlowTrigger)
        .where(FlowTrigger.flow_id == flow_id)
        .values(active=False, removed=removed)
    )
    await _changed(session, flow_id)


def open_trigger_secret(trigger: FlowTrigger, settings: Settings) -> str:
    """The flow's webhook secret in clear, for checking a request or showing it to an editor."""
    if trigger.secret_ciphertext is None or trigger.secret_wrapped_key is None:
        msg = f"flow {trigger.flow_id} has no webhook secret"
        raise ValueError(msg)
    sealed = Sealed(
        ciphertext=trigger.secret_ciphertext,
        wrapped_key=trigger.secret_wrapped_key,
        key_id=trigger.secret_key_id or "",
    )
    return open_secret(sealed, key_wrapper(settings), context=trigger.flow_id.bytes).decode()
