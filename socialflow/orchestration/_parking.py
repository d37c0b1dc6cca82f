"""Parking a run that waits for a contact's reply, and finding where it resumes.

``park`` ends a run's segment when a node raised ``AwaitReply``: the Prefect flow run is
proposed ``Paused`` with what it waits for as the state message; then, in one transaction,
the wait (``_waits.open_wait``, with the outputs of the completed nodes) and the execution's
status ``waiting`` (lease released, so no worker holds it); the engine is left through
Prefect's own ``Pause`` signal, as ``suspend_flow_run`` does. In that order, a reply that
comes at once finds the flow run Paused and resumes it. The pause has no Prefect timeout
(Prefect's pause-expiration service would fail the run): the wait's deadline is ours, and its
expiry resumes the run through the ``timeout`` port. A continuation resumes the same flow run
(Paused → Running) when it is still Paused; otherwise (Prefect was away when the run parked,
or the continuation's own worker died) it runs in a new flow run of the execution.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from socialflow.core.logging import get_logger
from socialflow.nodes import WaitRequest
from socialflow.orchestration._models import ExecutionStatus
from socialflow.orchestration._recorder import ExecutionRecorder
from socialflow.orchestration._waits import ResumeState, open_wait, resume_state

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

    from socialflow.orchestration._runner import RunMeta
    from socialflow.orchestration._runtime import EngineRuntime

__all__ = ["MAX_PARKED_BYTES", "load_resume", "park", "paused_flow_run", "wait_message"]

_log = get_logger(__name__)
#: the outputs a waiting run keeps for its continuation, at most (JSON characters)
MAX_PARKED_BYTES = 2_000_000


def wait_message(request: WaitRequest) -> str:
    """What a waiting run waits for, in words: the Prefect state message and node record."""
    window = (
        f"; Meta's messaging window closes at {request.window_expires_at:%Y-%m-%d %H:%M} UTC"
        if request.window_expires_at
        else ""
    )
    return (
        f"waiting for a reply ({request.expects}) from contact {request.contact_id} on account "
        f"{request.account_id} until {request.expires_at:%Y-%m-%d %H:%M} UTC{window}"
    )


async def load_resume(runtime: EngineRuntime, meta: RunMeta) -> ResumeState | None:
    """The wait a continuation resumes from; None for a run that does not resume."""
    if meta.resume_wait_id is None:
        return None
    async with runtime.db.sessionmaker() as session:
        state = await resume_state(session, meta.execution_id)
    if state is None or state.wait_id != meta.resume_wait_id:
        _log.warning(
            "the wait this run resumes from is gone; running from the start",
            execution_id=str(meta.execution_id),
        )
        return None
    return state


async def park(
    meta: RunMeta,
    recorder: ExecutionRecorder,
    waiting: Mapping[str, WaitRequest],
    outputs: Mapping[str, Any],
    flow_run_id: uuid.UUID | None,
) -> Any:
    """Record the run waiting, pause its Prefect flow run and leave the engine paused.

    Returns:
        A Failed state when the run cannot wait (two nodes wait at once, no workspace,
        outputs too large to keep); otherwise does not return: raises Prefect's ``Pause``.
    """
    from prefect.states import Failed

    # kept as JSON: what the continuation's nodes read is what a database round trip gives
    text = json.dumps(dict(outputs), default=str)
    problem = _why_not(meta, waiting, len(text))
    if problem is not None:
        node_id = next(iter(waiting))
        await recorder.finish(ExecutionStatus.FAILED, error=problem, error_node_id=node_id)
        return Failed(message=problem)
    [(node_id, request)] = waiting.items()
    wait_id = uuid.uuid4()
    workspace_id = meta.workspace_id
    assert workspace_id is not None  # _why_not refused a run without a workspace

    async def write_wait(session: Any) -> None:
        wait = await open_wait(
            session,
            execution_id=meta.execution_id,
            workspace_id=workspace_id,
            flow_id=meta.flow_id,
            node_id=node_id,
            request=request,
            outputs=json.loads(text),
        )
        wait.id = wait_id

    # Prefect first: once the row says "waiting" the reply may resume the run at once, and
    # the continuation goes on in this flow run only if it is Paused by then
    state = await _pause(flow_run_id, request, wait_id)
    await recorder.finish(ExecutionStatus.WAITING, also=write_wait)
    if state is None:
        return {"waiting": node_id}
    from prefect.exceptions import Pause

    raise Pause(state=state)


def _why_not(meta: RunMeta, waiting: Mapping[str, WaitRequest], size: int) -> str | None:
    if len(waiting) > 1:
        return (
            f"nodes {sorted(waiting)} wait for replies at once; a run waits for one answer at a "
            "time (put the questions one after another)"
        )
    if meta.workspace_id is None:
        return "only runs of a workspace flow can wait for a reply"
    if size > MAX_PARKED_BYTES:
        return (
            f"the outputs of the nodes before the question take {size} characters; a waiting "
            f"run keeps at most {MAX_PARKED_BYTES}"
        )
    return None


async def _pause(
    flow_run_id: uuid.UUID | None, request: WaitRequest, wait_id: uuid.UUID
) -> State[Any] | None:
    """Propose Paused for the flow run; None when Prefect did not take it (the run is parked
    in the database all the same, and its continuation gets a new flow run)."""
    if flow_run_id is None:
        return None
    from prefect.client.orchestration import get_client
    from prefect.states import Paused
    from prefect.utilities.engine import propose_state

    proposed: State[Any] = Paused(
        pause_key=f"wait-{wait_id}", reschedule=False, message=wait_message(request)
    )
    try:
        async with get_client() as client:
            state = await propose_state(client, proposed, flow_run_id=flow_run_id)
    except Exception as exc:
        _log.warning("Prefect did not take the pause; the run waits all the same", error=repr(exc))
        return None
    return state if state.is_paused() else None


async def paused_flow_run(flow_run_id: uuid.UUID) -> FlowRun | None:
    """The flow run, when it is still Paused (so it can go on); None otherwise."""
    from prefect.client.orchestration import get_client

    try:
        async with get_client() as client:
            flow_run = await client.read_flow_run(flow_run_id)
    except Exception as exc:
        _log.warning("could not read the paused flow run; resuming in a new one", error=repr(exc))
        return None
    if flow_run.state is None or not flow_run.state.is_paused():
        return None
    return flow_run
