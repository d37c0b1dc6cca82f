"""Prune Prefect's records of Socialflow's runs together with the executions' retention.

Prefect keeps every flow run with its task runs, states and logs (about 114 KB per 3-node run
on PostgreSQL, events included) until something deletes them. ``prune_prefect_runs`` deletes
the finished flow runs of Socialflow's graphs (tagged ``socialflow``) that ended before the
cut-off, through Prefect's API: deleting a flow run deletes its task runs and states with it.
Prefect's events have their own retention, ``PREFECT_SERVER_EVENTS_RETENTION_PERIOD``, which
``socialflow up`` sets to the same number of days (``stack.prefect_server``); other flows'
runs (knowledge ingestion, maintenance) are left to Prefect.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from socialflow.core.logging import get_logger

if TYPE_CHECKING:
    from prefect.client.orchestration import PrefectClient

__all__ = ["prune_prefect_runs"]

_log = get_logger(__name__)

#: flow runs read and deleted per page
_PAGE = 200


async def prune_prefect_runs(
    client: PrefectClient,
    *,
    ended_before: datetime,
    tags: tuple[str, ...] = ("socialflow",),
    limit: int = 100_000,
) -> int:
    """Delete the finished Socialflow flow runs that ended before ``ended_before``.

    Args:
        client: A Prefect client.
        ended_before: Flow runs that ended at or after this are kept.
        tags: Only flow runs with all these tags (every Socialflow graph run has the first).
        limit: Most flow runs deleted in one pass (the next pass goes on).

    Returns:
        How many flow runs were deleted.
    """
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterEndTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound

    finished = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]
    query = FlowRunFilter(
        tags=FlowRunFilterTags(all_=list(tags)),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=finished)),
        end_time=FlowRunFilterEndTime(before_=ended_before),
    )
    deleted = 0
    while deleted < limit:
        page = await client.read_flow_runs(flow_run_filter=query, limit=min(_PAGE, limit - deleted))
        if not page:
            break
        for run in page:
            try:
                await client.delete_flow_run(run.id)
            except ObjectNotFound:
                continue  # deleted meanwhile (another worker's pass)
            deleted += 1
    if deleted:
        _log.info("pruned Prefect flow runs", flow_runs=deleted, ended_before=str(ended_before))
    return deleted
