"""The due runs of prefect.yaml's static deployments (token refresh, pruning, ingestion by
hand), run in the worker's process so the embedded stack needs no Prefect worker."""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

from socialflow.core.db import utcnow
from socialflow.core.logging import get_logger
from socialflow.orchestration._worker._prefect import claim_scheduled

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun

__all__ = ["STATIC_POOLS", "load_entrypoint", "start_due_static_runs"]

_log = get_logger(__name__)

#: work pools of prefect.yaml's static deployments, run in-process by every worker
STATIC_POOLS = ("socialflow-maintenance", "socialflow-knowledge")


async def start_due_static_runs(running: set[asyncio.Task[None]]) -> None:
    """Claim the due runs of every static pool and start each in a task of ``running`` (a
    task leaves the set when it ends)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from socialflow.publishing import publishing_pool

    # scheduled posts: their deployment is created by Socialflow when a post is scheduled
    for pool in (*STATIC_POOLS, publishing_pool()):
        try:
            async with get_client() as client:
                due = await client.get_scheduled_flow_runs_for_work_pool(
                    pool, scheduled_before=utcnow()
                )
                for response in due:
                    flow_run = response.flow_run
                    if flow_run.deployment_id is None:
                        continue
                    deployment = await client.read_deployment(flow_run.deployment_id)
                    if not await claim_scheduled(client, flow_run):
                        continue
                    flow = load_entrypoint(deployment.entrypoint or "")
                    task = asyncio.create_task(run_static(flow, flow_run))
                    running.add(task)
                    task.add_done_callback(running.discard)
        except ObjectNotFound:
            pass  # nothing was deployed to this pool
        except Exception as exc:
            _log.warning("polling maintenance runs failed", pool=pool, error=repr(exc))


def load_entrypoint(entrypoint: str) -> Flow[..., Any]:
    """The flow named by a deployment entrypoint (``socialflow/pkg/_mod.py:name``), imported
    as a module of the installed package rather than from a file path.

    Raises:
        ValueError: The entrypoint names no Socialflow flow.
    """
    path, _, name = entrypoint.partition(":")
    if not path.startswith("socialflow/") or not path.endswith(".py") or not name:
        msg = f"entrypoint {entrypoint!r} is not a Socialflow flow (socialflow/...py:name)"
        raise ValueError(msg)
    module = importlib.import_module(path[:-3].replace("/", "."))
    flow: Flow[..., Any] = getattr(module, name)
    return flow


async def run_static(flow: Flow[..., Any], flow_run: FlowRun) -> None:
    """Run a claimed static run to its end; a failure is logged, Prefect records it."""
    from prefect.flow_engine import run_flow_async, run_flow_sync

    try:
        if flow.isasync:
            await run_flow_async(
                flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
            )
        else:
            await asyncio.to_thread(
                run_flow_sync,
                flow,
                flow_run=flow_run,
                parameters=flow_run.parameters,
                return_type="state",
            )
    except Exception as exc:
        _log.warning("maintenance run failed", flow_run_id=str(flow_run.id), error=repr(exc))
