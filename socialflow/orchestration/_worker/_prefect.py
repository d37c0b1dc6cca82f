"""Prefect's client as the worker uses it: bounded waits, and claiming a scheduled run."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from socialflow.core.settings import EngineSettings

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.objects import FlowRun
    from prefect.client.schemas.responses import OrchestrationResult

__all__ = ["claim_scheduled", "prefect_client_limits", "prefect_clients"]


@contextlib.contextmanager
def prefect_client_limits(engine: EngineSettings) -> Iterator[None]:
    """Within: Prefect's client waits at most ``engine.prefect_request_timeout_seconds`` for an
    answer and retries ``engine.prefect_client_retries`` times. Its defaults (60 s, 5 retries
    doubling from 2 s) held a worker's slots for minutes after the API had come back."""
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_REQUEST_TIMEOUT: engine.prefect_request_timeout_seconds,
            PREFECT_CLIENT_MAX_RETRIES: engine.prefect_client_retries,
        }
    ):
        yield


@contextlib.asynccontextmanager
async def prefect_clients(engine: EngineSettings) -> AsyncIterator[None]:
    """Within: one Prefect API client of each kind (sync and async) for the process, built
    under ``prefect_client_limits``. A client reads its request timeout once, when it is
    built, so clients made before the limits are entered keep Prefect's 60 s: a request the
    server lost then held a slot a minute after the API had come back."""
    from prefect.context import AsyncClientContext, SyncClientContext

    with prefect_client_limits(engine), SyncClientContext.get_or_create():
        async with AsyncClientContext.get_or_create():
            yield


async def claim_scheduled(client: PrefectClient, flow_run: FlowRun) -> bool:
    """Propose Pending for a scheduled run; Prefect refuses a second claimant."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    try:
        result: OrchestrationResult[Any] = await client.set_flow_run_state(flow_run.id, Pending())
    except Exception:
        return False
    return bool(result.status == SetStateStatus.ACCEPT)
