"""One claimed execution, run in a process of its own (``socialflow worker --isolate``).

The parent worker claims the execution, holds and renews its lease, and starts this module
with ``python -m socialflow.orchestration._isolated EXECUTION_ID ATTEMPT [ABANDONED_RUN_ID]``.
Here the run is executed exactly as the in-process worker would (same flow run from the
flow's deployment, same recorder fenced by the attempt, live updates relayed through the
database). SIGUSR1 means "cancel on request" (Prefect's engine takes SIGTERM for itself): the
run stops, its unfinished nodes are recorded as cancelled and the Prefect flow run ends
Cancelled. The parent kills this process outright
when it lost the lease, since the new owner records the run.

Exit status: 0 when the run was executed (whatever its outcome, which is recorded), 1 when it
could not be started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from typing import TYPE_CHECKING

from socialflow.core.logging import configure_logging, get_logger

if TYPE_CHECKING:
    from socialflow.orchestration._worker import Claim, Worker

_log = get_logger(__name__)


async def run_isolated(execution_id: uuid.UUID, attempt: int, abandoned: uuid.UUID | None) -> None:
    """Run one claimed execution in this process, until it ends or SIGUSR1 cancels it."""
    from socialflow.core.settings import get_settings
    from socialflow.orchestration._relay import UpdateRelay
    from socialflow.orchestration._runtime import EngineRuntime, set_runtime
    from socialflow.orchestration._worker import Claim, Worker, prefect_client_limits

    settings = get_settings()
    runtime = EngineRuntime.from_settings(settings)
    set_runtime(runtime)
    worker = Worker(runtime, concurrency=1, dispatch=False, relay=False)
    relay_stop = asyncio.Event()
    relay = asyncio.create_task(UpdateRelay(runtime.db, runtime.events).run(relay_stop))
    try:
        # the same bounded waits on Prefect's API as the worker's own slots
        with prefect_client_limits(settings.engine):
            await _run_claim(worker, Claim(execution_id, attempt, abandoned))
    finally:
        relay_stop.set()  # after the run, so its last updates are relayed
        await asyncio.gather(relay, return_exceptions=True)
        await runtime.aclose()


async def _run_claim(worker: Worker, claim: Claim) -> None:
    from prefect.context import AsyncClientContext

    from socialflow.orchestration._worker import uncancel

    execution_id = claim.execution_id
    async with AsyncClientContext.get_or_create():
        run = asyncio.create_task(worker.slots.run(claim))

        def cancel() -> None:
            worker.runtime.cancel_requested.add(execution_id)
            run.cancel()

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, cancel)
        try:
            await run
        except asyncio.CancelledError:
            if execution_id not in worker.runtime.cancel_requested:
                raise
            uncancel()
            await worker.slots.after_cancel(execution_id)


def _die_with_parent() -> None:
    """Linux: end with the worker that started us. A run outliving its worker would race the
    worker that takes the execution over once the lease lapses."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    """Entry point: ``EXECUTION_ID ATTEMPT [ABANDONED_FLOW_RUN_ID]``."""
    from socialflow.core.settings import get_settings

    settings = get_settings()
    if settings.prefect.api_url:
        os.environ["PREFECT_API_URL"] = settings.prefect.api_url
    configure_logging(settings.logging.level, json_output=settings.logging.json_output)
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: python -m socialflow.orchestration._isolated ID ATTEMPT [RUN]\n")
        return 2
    _die_with_parent()
    execution_id, attempt = uuid.UUID(argv[0]), int(argv[1])
    abandoned = uuid.UUID(argv[2]) if len(argv) == 3 else None
    try:
        asyncio.run(run_isolated(execution_id, attempt, abandoned))
    except Exception:
        _log.exception("isolated run could not be executed", execution_id=str(execution_id))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
