"""Execution endpoints: a workspace's run history, one run with its nodes, and the live stream."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, WebSocket

from socialflow.api.deps import EditorMember, SessionDep, SettingsDep, ViewerMember
from socialflow.api.executions import service, ws
from socialflow.api.executions.schemas import ExecutionPage, ExecutionQuery, ExecutionRead
from socialflow.orchestration import request_cancel

__all__ = ["router", "ws_router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/executions", tags=["executions"])

# WebSocket routes live outside the /api prefix, at /ws/...
ws_router = APIRouter(tags=["executions"])


def _prefect_ui(settings: SettingsDep) -> str | None:
    return service.prefect_ui_url(settings)


PrefectUi = Annotated[str | None, Depends(_prefect_ui)]


@router.get("", name="list_executions")
async def list_executions(
    member: ViewerMember,
    session: SessionDep,
    prefect_ui: PrefectUi,
    query: Annotated[ExecutionQuery, Query()],
) -> ExecutionPage:
    """The workspace's executions, newest first, filtered and paged (viewer)."""
    return await service.list_for_workspace(
        member.workspace_id, query, prefect_ui=prefect_ui, session=session
    )


@router.get("/{execution_id}", name="get_execution")
async def get_execution(
    execution_id: uuid.UUID, member: ViewerMember, session: SessionDep, prefect_ui: PrefectUi
) -> ExecutionRead:
    """One execution with every node run: status, attempts, timings, recorded input and output,
    errors, and its Prefect flow and task runs (viewer)."""
    return await service.get(
        member.workspace_id, execution_id, prefect_ui=prefect_ui, session=session
    )


@router.post("/{execution_id}/cancel", name="cancel_execution")
async def cancel_execution(
    execution_id: uuid.UUID, member: EditorMember, session: SessionDep, prefect_ui: PrefectUi
) -> ExecutionRead:
    """Cancel a run (editor). One that has not started is cancelled at once; a running one is
    stopped by its worker within about a second: unfinished nodes are recorded as cancelled and
    the Prefect flow run ends Cancelled. ``cancel_requested_at`` is set in both cases; a run
    that already finished answers 409."""
    await request_cancel(member.workspace_id, execution_id, session=session)
    return await service.get(
        member.workspace_id, execution_id, prefect_ui=prefect_ui, session=session
    )


@ws_router.websocket("/ws/workspaces/{workspace_id}/executions", name="stream_executions")
async def stream_executions(
    websocket: WebSocket, workspace_id: uuid.UUID, execution_id: uuid.UUID | None = None
) -> None:
    """Live updates of the workspace's runs (viewer): the pending and running executions first,
    then every execution and node update. ``execution_id`` follows one execution. Close codes
    and credentials: see ``socialflow.api.executions.ws``."""
    await ws.stream(websocket, workspace_id, execution_id=execution_id)
