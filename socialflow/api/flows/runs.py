"""Starting runs by hand: run a published flow now, test-run the draft in the sandbox, and
re-run a past execution with its original trigger payload. Runs are queued for a worker; the
answer carries the execution id to follow (history or the live stream)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from socialflow.api.deps import EditorMember, RegistryDep, SessionDep
from socialflow.api.flows.dependencies import EditedFlow
from socialflow.api.flows.models import Flow, FlowVersion
from socialflow.core.errors import ConflictError, NotFoundError
from socialflow.nodes import NodeRegistry
from socialflow.orchestration import FlowExecution, GraphSpec, compile_graph, enqueue_run

__all__ = ["router"]

router = APIRouter(tags=["runs"])


class RunRequest(BaseModel):
    """A run started by hand."""

    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The trigger payload the run starts with."
    )


class RerunRequest(BaseModel):
    """Which version a re-run uses."""

    model_config = ConfigDict(extra="forbid")
    version: Literal["same", "active"] = Field(
        default="same", description="'same': the version that ran; 'active': the active one."
    )


class RunQueued(BaseModel):
    """The queued execution."""

    execution_id: uuid.UUID
    sandbox: bool


async def _active_version(flow: Flow, session: SessionDep) -> FlowVersion:
    if flow.active_version_id is None:
        msg = f"flow {flow.id} has never been published: publish it first or use a test run"
        raise ConflictError(msg, code="flow_not_published")
    version = await session.get(FlowVersion, flow.active_version_id)
    if version is None:  # pragma: no cover - the foreign key forbids it
        msg = f"flow {flow.id} has lost its active version"
        raise ConflictError(msg, code="flow_not_published")
    return version


def _trigger_kind(graph: dict[str, Any], registry: NodeRegistry) -> str:
    return compile_graph(GraphSpec.model_validate(graph), registry).trigger.spec.kind


@router.post("/workspaces/{workspace_id}/flows/{flow_id}/run", status_code=202, name="run_flow_now")
async def run_flow_now(
    flow: EditedFlow, registry: RegistryDep, session: SessionDep, body: RunRequest | None = None
) -> RunQueued:
    """Run the active version now with a payload (editor)."""
    version = await _active_version(flow, session)
    execution_id = await enqueue_run(
        session,
        workspace_id=flow.workspace_id,
        flow_id=flow.id,
        flow_name=flow.name,
        trigger_kind=_trigger_kind(version.graph, registry),
        payload=(body or RunRequest()).payload,
        version_id=version.id,
        version_number=version.number,
    )
    return RunQueued(execution_id=execution_id, sandbox=False)


@router.post("/workspaces/{workspace_id}/flows/{flow_id}/test", status_code=202, name="test_flow")
async def test_flow(
    flow: EditedFlow, registry: RegistryDep, session: SessionDep, body: RunRequest | None = None
) -> RunQueued:
    """Test-run the draft with a sample payload, always in the sandbox: nothing is sent (editor).

    Raises:
        ValidationError: The draft has problems (every one listed).
    """
    spec = GraphSpec.model_validate(flow.draft)
    compiled = compile_graph(spec, registry)
    execution_id = await enqueue_run(
        session,
        workspace_id=flow.workspace_id,
        flow_id=flow.id,
        flow_name=flow.name,
        trigger_kind=compiled.trigger.spec.kind,
        payload=(body or RunRequest()).payload,
        draft_graph_json=spec.model_dump_json(exclude_defaults=True),
        sandbox=True,
    )
    return RunQueued(execution_id=execution_id, sandbox=True)


@router.post(
    "/workspaces/{workspace_id}/executions/{execution_id}/rerun",
    status_code=202,
    name="rerun_execution",
)
async def rerun_execution(
    member: EditorMember,
    execution_id: Annotated[uuid.UUID, Path(description="The execution to run again.")],
    session: SessionDep,
    body: RerunRequest | None = None,
) -> RunQueued:
    """Run a past execution again with its original trigger payload (editor)."""
    past = await session.scalar(
        select(FlowExecution).where(
            FlowExecution.id == execution_id, FlowExecution.workspace_id == member.workspace_id
        )
    )
    if past is None or past.flow_id is None or past.flow_version_id is None:
        msg = f"execution {execution_id} not found, or it did not run a flow of this workspace"
        raise NotFoundError(msg, code="execution_not_found")
    version_id, number = past.flow_version_id, past.version_number
    if (body or RerunRequest()).version == "active":
        flow = await session.get(Flow, past.flow_id)
        if flow is None:
            msg = f"the flow of execution {execution_id} was deleted"
            raise NotFoundError(msg, code="flow_not_found")
        active = await _active_version(flow, session)
        version_id, number = active.id, active.number
    new_id = await enqueue_run(
        session,
        workspace_id=member.workspace_id,
        flow_id=past.flow_id,
        flow_name=past.flow_name,
        trigger_kind=past.trigger_kind,
        payload=past.trigger_payload or {},
        version_id=version_id,
        version_number=number,
        sandbox=past.sandbox,
    )
    return RunQueued(execution_id=new_id, sandbox=past.sandbox)
