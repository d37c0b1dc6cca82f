"""Running a claim in a child process (``socialflow worker --isolate``), from the parent's side.

The child is ``python -m socialflow.orchestration._isolated``; the parent keeps the claim, the
lease and the cancellation: SIGUSR1 asks the child to cancel the run on request, SIGKILL ends
it when the lease was lost (the new holder records the run).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

from socialflow.core.logging import get_logger
from socialflow.orchestration._worker._inflight import Claim

__all__ = ["run_in_child"]

_log = get_logger(__name__)

#: how long a signalled child may take to end before it is killed (seconds)
CHILD_STOP_SECONDS = 30


async def run_in_child(
    claim: Claim,
    children: dict[uuid.UUID, asyncio.subprocess.Process],
    cancel_requested: set[uuid.UUID],
) -> int:
    """Run the claim in a child process and wait for it.

    Args:
        claim: The claim to run.
        children: The worker's children by execution id; the child is listed while it runs.
        cancel_requested: Executions whose cancellation was requested: a cancelled wait
            tells such a child to cancel its run, and kills any other.

    Returns:
        The child's exit status.
    """
    args = [str(claim.execution_id), str(claim.attempt)]
    if claim.abandoned_flow_run_id is not None:
        args.append(str(claim.abandoned_flow_run_id))
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "socialflow.orchestration._isolated", *args
    )
    children[claim.execution_id] = child
    _log.info(
        "running execution in its own process",
        execution_id=str(claim.execution_id),
        pid=child.pid,
    )
    try:
        return await child.wait()
    except asyncio.CancelledError:
        cancelled = claim.execution_id in cancel_requested
        # on request the child stops the run and records it cancelled; when the lease
        # was lost, the new owner records the run, so this one just ends
        child.send_signal(signal.SIGUSR1 if cancelled else signal.SIGKILL)
        try:
            await asyncio.shield(asyncio.wait_for(child.wait(), CHILD_STOP_SECONDS))
        except TimeoutError:
            child.kill()
        raise
    finally:
        children.pop(claim.execution_id, None)
