"""Scheduled posts as Prefect runs: the ``publish-post`` deployment, one scheduled flow run per
attempt at the post's time, and the sweep that starts again what a dead worker left.

Socialflow creates the deployment itself (work pool ``socialflow-publishing``) the first time a
post is scheduled; every ``socialflow worker`` runs that pool's due runs in-process, like
prefect.yaml's static deployments, so the Prefect UI lists each scheduled post as a scheduled
run named after it. The run is only the clock: the post row and its lease decide, so a run
that finds the post rescheduled, cancelled, published or held elsewhere changes nothing.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from sqlalchemy import and_, or_, select

from socialflow.core.credentials import key_wrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.logging import get_logger
from socialflow.core.settings import get_settings
from socialflow.publishing._engine import Publisher, PublishingContext
from socialflow.publishing._models import Post, PostStatus

__all__ = [
    "DEPLOYMENT",
    "ENTRYPOINT",
    "cancel_run",
    "get_publishing_context",
    "publish_post",
    "publishing_pool",
    "schedule_run",
    "schedule_run_at",
    "set_publishing_context",
    "set_publishing_pool",
    "sweep_due_posts",
]

_log = get_logger(__name__)

DEPLOYMENT = "publish-post"
ENTRYPOINT = "socialflow/publishing/_flow.py:publish_post"
#: the work pool of publishing runs when set here (tests sharing a Prefect server); None: the
#: process's ``publishing.work_pool``
POOL: str | None = None
#: a due post whose run has not claimed it this long after its time is started again
GRACE = timedelta(seconds=60)

_context: PublishingContext | None = None
_deployments: dict[str, uuid.UUID] = {}


def publishing_pool() -> str:
    """The work pool whose due runs workers take for publishing."""
    return POOL or get_settings().publishing.work_pool


def set_publishing_pool(name: str | None) -> None:
    """Use another work pool for publishing runs (tests sharing one Prefect server)."""
    global POOL
    POOL = name


def set_publishing_context(context: PublishingContext | None) -> None:
    """Install the context publishing runs of this process use (the worker does it)."""
    global _context
    _context = context


def get_publishing_context() -> PublishingContext:
    """The installed context, or one built from the environment's settings."""
    global _context
    context = _context
    if context is None:
        settings = get_settings()
        context = PublishingContext(
            settings=settings, db=Database(settings.database_url), keys=key_wrapper(settings)
        )
        _context = context
    if context.retry_at is None:
        context.retry_at = functools.partial(schedule_run_at, context.db)
    return context


@flow(name="publish-post", persist_result=False)
async def publish_post(post_id: str) -> dict[str, Any]:
    """Publish one scheduled post (or resume the attempt a dead worker left).

    Args:
        post_id: The post.

    Returns:
        Where the post stands: status, media id, permalink, the reason it waits or failed.
    """
    outcome = await Publisher(get_publishing_context()).publish(uuid.UUID(post_id))
    _log.info("publishing attempt", post_id=post_id, status=outcome.status, reason=outcome.reason)
    return outcome.model_dump(mode="json")


async def ensure_pool_deployment(
    entry: Any, *, name: str, entrypoint: str, tags: list[str], description: str
) -> uuid.UUID:
    """The deployment ``name`` of the flow ``entry`` in this process's publishing pool (the
    pool and the deployment created the first time); the calendar's posts and broadcasts both
    run this way, so the workers that take the pool run them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.utilities.callables import parameter_schema

    pool = publishing_pool()
    key = f"{entry.name}:{pool}"
    if key in _deployments:
        return _deployments[key]
    async with get_client() as client:
        try:
            await client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            pass
        deployment_id: uuid.UUID = await client.create_deployment(
            flow_id=await client.create_flow_from_name(entry.name),
            name=name if pool == "socialflow-publishing" else f"{name}-{pool}",
            entrypoint=entrypoint,
            work_pool_name=pool,
            parameters={},
            parameter_openapi_schema=parameter_schema(entry).model_dump_for_openapi(),
            tags=tags,
            paused=False,
            description=description,
        )
    _deployments[key] = deployment_id
    return deployment_id


async def _deployment_id() -> uuid.UUID:
    """The ``publish-post`` deployment in this process's pool, created the first time."""
    return await ensure_pool_deployment(
        publish_post,
        name=DEPLOYMENT,
        entrypoint=ENTRYPOINT,
        tags=["socialflow", "publishing"],
        description="Publish one scheduled Instagram post (parameter post_id).",
    )


async def schedule_run(
    post_id: uuid.UUID, workspace_id: uuid.UUID, at: datetime, *, key: str
) -> uuid.UUID:
    """A scheduled flow run of ``publish-post`` for the post at ``at``.

    Args:
        post_id: The post.
        workspace_id: Its workspace (a tag of the run).
        at: When the run is due.
        key: Idempotency key: the same key answers the run made before.

    Returns:
        The flow run's id.
    """
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    deployment_id = await _deployment_id()
    async with get_client() as client:
        run = await client.create_flow_run_from_deployment(
            deployment_id,
            parameters={"post_id": str(post_id)},
            state=Scheduled(scheduled_time=at),
            name=f"post {str(post_id)[:8]} at {at:%Y-%m-%d %H:%M} UTC",
            tags=["socialflow", "publishing", f"workspace:{workspace_id}"],
            idempotency_key=key,
        )
    flow_run_id: uuid.UUID = run.id
    return flow_run_id


async def schedule_run_at(
    db: Database, post_id: uuid.UUID, workspace_id: uuid.UUID, at: datetime
) -> uuid.UUID:
    """Arrange an attempt of a post at ``at`` and record its run on the post.

    Returns:
        The flow run's id.
    """
    key = f"post:{post_id}:{at.isoformat()}:{uuid.uuid4().hex[:12]}"
    run_id = await schedule_run(post_id, workspace_id, at, key=key)
    async with db.sessionmaker() as session:
        post = await session.get(Post, post_id)
        if post is not None:
            post.prefect_flow_run_id = run_id
            await session.commit()
    return run_id


async def cancel_flow_run(
    flow_run_id: uuid.UUID | None, message: str, *, only_scheduled: bool = False
) -> None:
    """Cancel a flow run that has not ended (``only_scheduled``: only one still waiting for
    its time); one gone or finished is fine."""
    if flow_run_id is None:
        return
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Cancelled

    async with get_client() as client:
        try:
            run = await client.read_flow_run(flow_run_id)
            state = run.state
            if state is not None and (
                state.is_scheduled() if only_scheduled else not state.is_final()
            ):
                await client.set_flow_run_state(flow_run_id, Cancelled(message=message), force=True)
        except ObjectNotFound:
            pass


async def cancel_run(flow_run_id: uuid.UUID | None) -> None:
    """Cancel a post's scheduled run; one already gone or finished is fine."""
    await cancel_flow_run(flow_run_id, "the post was rescheduled or cancelled")


async def _run_is_waiting(run_id: uuid.UUID, now: datetime, lease_seconds: float) -> bool:
    """Whether a post's run still waits for a worker: scheduled, or pending (claimed) for less
    than a lease; a run that ended, runs without its post being held, or is gone, does not."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        async with get_client() as client:
            run = await client.read_flow_run(run_id)
    except ObjectNotFound:
        return False
    state = run.state
    if state is None:
        return False
    if state.is_scheduled():
        return True
    return state.is_pending() and state.timestamp > now - timedelta(seconds=lease_seconds)


async def sweep_due_posts(db: Database, *, lease_seconds: float, limit: int = 50) -> int:
    """Start a run now for every post its run did not take: due and still scheduled a minute
    after its time (the run was lost, or Prefect was away when it was scheduled), or
    publishing under a lapsed lease (its worker died).

    Returns:
        How many runs were started.
    """
    now = utcnow()
    due = now - GRACE
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Post.id, Post.workspace_id, Post.status, Post.prefect_flow_run_id)
                .where(
                    or_(
                        and_(
                            Post.status == PostStatus.SCHEDULED,
                            Post.scheduled_at <= due,
                            or_(Post.next_attempt_at.is_(None), Post.next_attempt_at <= due),
                        ),
                        and_(Post.status == PostStatus.PUBLISHING, Post.claimed_at < now),
                    )
                )
                .limit(limit)
            )
        ).all()
    started = 0
    for post_id, workspace_id, _status, run_id in rows:
        if run_id is not None and await _run_is_waiting(run_id, now, lease_seconds):
            continue  # its run is queued for a worker
        await schedule_run_at(db, post_id, workspace_id, now)
        started += 1
    return started
