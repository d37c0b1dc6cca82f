"""Settling the Prefect flow runs that attempts of an execution left unfinished."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from socialflow.core.db import Database
from socialflow.core.logging import get_logger
from socialflow.orchestration._reconcile import reconcile_flow_runs
from socialflow.orchestration._runner import attempt_run_name

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State

__all__ = ["QUICK_CALL_SECONDS", "crash_attempts", "reconcile_forever"]

_log = get_logger(__name__)

#: a clean-up call to Prefect between two tries of a start waits no longer than this
QUICK_CALL_SECONDS = 5.0


async def crash_attempts(
    execution_id: uuid.UUID,
    attempts: int,
    known: uuid.UUID | None,
    *,
    reason: str | None = None,
    quick: bool = False,
) -> None:
    """Mark Crashed every unfinished Prefect flow run of an execution's first ``attempts``
    attempts: the one its row recorded (``known``) and those found by their attempt names,
    which also catches a flow run created just before its worker died, unrecorded. With
    ``reason``, they are marked Failed with it (the run could not start). ``quick``: only the
    last attempt's, waiting at most ``QUICK_CALL_SECONDS``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Crashed, Failed

    names = [
        attempt_run_name(execution_id, n) for n in range(attempts if quick else 1, attempts + 1)
    ]
    try:
        async with asyncio.timeout(QUICK_CALL_SECONDS if quick else None), get_client() as client:
            runs = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=names))
            )
            if known is not None and all(run.id != known for run in runs):
                with contextlib.suppress(ObjectNotFound):
                    runs.append(await client.read_flow_run(known))
            for run in runs:
                if run.state is not None and run.state.is_final():
                    continue
                state: State[Any] = (
                    Crashed(message="the worker running it stopped")
                    if reason is None
                    else Failed(message=reason)
                )
                await client.set_flow_run_state(run.id, state, force=True)
    except Exception as exc:
        _log.warning("could not mark abandoned flow runs crashed", error=repr(exc))


async def reconcile_forever(
    db: Database, *, grace: timedelta, interval: float, stop: asyncio.Event
) -> None:
    """Every ``interval`` seconds until ``stop``, settle the Prefect flow runs a stopped worker
    left unfinished (see ``_reconcile``): an execution that ended is never shown running."""
    from prefect.client.orchestration import get_client

    while not stop.is_set():
        try:
            async with get_client() as client:
                await reconcile_flow_runs(client, db, grace=grace)
        except Exception as exc:
            _log.warning("settling abandoned flow runs failed", error=repr(exc))
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
