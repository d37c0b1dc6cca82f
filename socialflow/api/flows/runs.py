"""Starting runs by hand: run a published flow now, test-run the draft in the sandbox, re-run a
past execution with its original trigger payload, and replay past events through the draft.
Runs are queued for a worker; the answer carries the execution id to follow (history or the
live stream), or the replay to read."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from socialflow.api.deps import EditorMember, RegistryDep, SessionDep
from socialflow.api.flows.dependencies import EditedFlow, ViewedFlow
from socialflow.api.flows.models import Flow, FlowVersion
from socialflow.api.flows.replay import ReplayRead, ReplayRequest, read_replay, start_replay
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


class TestRunRequest(RunRequest):
    """A test run of the draft."""

    ignore_filters: bool = Field(
        default=False,
        description=(
            "Run even when the draft's trigger would not take the payload (keyword, account "
            "or media filters); by default such a test is refused with the reason."
        ),
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
        record_event="manual",
    )
    return RunQueued(execution_id=execution_id, sandbox=False)


@router.post("/workspaces/{workspace_id}/flows/{flow_id}/test", status_code=202, name="test_flow")
async def test_flow(
    flow: EditedFlow, registry: RegistryDep, session: SessionDep, body: TestRunRequest | None = None
) -> RunQueued:
    """Test-run the draft with a sample payload, always in the sandbox: nothing is sent (editor).

    The draft's trigger filters apply to the sample as they apply to real events: a sample they
    would not take is refused (409 ``trigger_filter_not_matched``, the reason in ``details``)
    unless ``ignore_filters`` is set.

    Raises:
        ValidationError: The draft has problems (every one listed).
        ConflictError: The trigger's filters would not take the sample.
    """
    spec = GraphSpec.model_validate(flow.draft)
    compiled = compile_graph(spec, registry)
    request = body or TestRunRequest()
    trigger = compiled.trigger
    if not request.ignore_filters:
        # the trigger's own filter code, as the dispatcher applies it to real events
        rejection = registry.get(trigger.spec.kind).rejection(trigger.config, request.payload)
        if rejection is not None:
            msg = (
                f"the sample would not start this flow: {rejection.message}; "
                "send ignore_filters to run it anyway"
            )
            raise ConflictError(
                msg,
                code="trigger_filter_not_matched",
                details={"reason": rejection.message, "field": rejection.field},
            )
    execution_id = await enqueue_run(
        session,
        workspace_id=flow.workspace_id,
        flow_id=flow.id,
        flow_name=flow.name,
        trigger_kind=trigger.spec.kind,
        payload=request.payload,
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
        record_event=None if past.sandbox else "manual",
    )
    return RunQueued(execution_id=new_id, sandbox=past.sandbox)


@router.post(
    "/workspaces/{workspace_id}/flows/{flow_id}/replays",
    status_code=202,
    name="replay_through_draft",
)
async def replay_through_draft(
    flow: EditedFlow,
    member: EditorMember,
    registry: RegistryDep,
    session: SessionDep,
    body: ReplayRequest,
) -> ReplayRead:
    """Replay past events through the draft, in the sandbox: nothing is ever sent (editor).

    Give ``event_ids`` (from the event log), ``execution_ids`` (past runs of this flow) or
    ``last`` (the flow's last N events). Each event runs the draft on its exact trigger payload,
    unless the draft's trigger would not take it (the reason is given, as the event log gives
    it). Read the replay back (``GET .../replays/{id}``) as the runs finish: per event, node by
    node status and output differences with the published version's run of the same event, and
    the send-ledger difference in words; a summary counts the events whose sends change.

    Raises:
        ValidationError: The draft has problems, or an id is not this workspace's event or
            this flow's execution.
    """
    replay = await start_replay(
        flow, body, registry=registry, user_id=member.user.id, session=session
    )
    return await read_replay(flow, replay.id, session=session)


@router.get("/workspaces/{workspace_id}/flows/{flow_id}/replays/{replay_id}", name="get_replay")
async def get_replay(
    flow: ViewedFlow,
    replay_id: Annotated[uuid.UUID, Path(description="The replay.")],
    session: SessionDep,
) -> ReplayRead:
    """A replay compared as far as its runs have got; ``status`` is ``finished`` once every run
    has ended (viewer)."""
    return await read_replay(flow, replay_id, session=session)
