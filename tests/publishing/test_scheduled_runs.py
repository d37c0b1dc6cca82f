"""Scheduled posts as Prefect runs: scheduled at the post's time, taken by a worker and
published; rescheduled and cancelled runs follow the post; a due post whose run went missing
is started again by the worker's sweep; the nodes publish and read insights in a flow run."""

from __future__ import annotations

import asyncio
import io
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import delete

from socialflow.core.db import utcnow
from socialflow.orchestration import (
    EngineRuntime,
    GraphSpec,
    RunMeta,
    Worker,
    get_execution,
    start_graph_run,
)
from socialflow.publishing import (
    MediaStore,
    Post,
    PostFields,
    PostStatus,
    PostType,
    posts,
    set_publishing_pool,
    sweep_due_posts,
)
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import connect_account, use_emulator
from tests.fixtures.media import jpeg


@pytest.fixture
def pool() -> Iterator[str]:
    """A publishing pool of this test's own: other tests' workers never take its runs."""
    name = f"socialflow-publishing-{uuid.uuid4().hex[:8]}"
    set_publishing_pool(name)
    try:
        yield name
    finally:
        set_publishing_pool(None)


class Scene:
    def __init__(self, runtime: EngineRuntime, emulator: GraphEmulator, account: Any) -> None:
        self.runtime, self.emulator, self.account = runtime, emulator, account
        self.ig_user_id = account.ig_user_id

    async def post(self, caption: str = "Scheduled") -> Post:
        async with self.runtime.db.sessionmaker() as session:
            media = await posts.upload_media(
                session,
                MediaStore(self.runtime.settings),
                self.account.workspace_id,
                io.BytesIO(jpeg()),
                filename="p.jpg",
                user_id=None,
            )
            fields = PostFields(
                account_id=self.account.id,
                type=PostType.IMAGE,
                caption=caption,
                media_ids=[media.id],
            )
            post, _ = await posts.create(session, self.account.workspace_id, fields, user_id=None)
            return post

    async def read(self, post_id: uuid.UUID) -> Post:
        async with self.runtime.db.sessionmaker() as session:
            post = await session.get(Post, post_id)
            assert post is not None
            return post

    def on_meta(self) -> list[dict[str, Any]]:
        published = self.emulator.state.publishing.media.values()
        return [m for m in published if m["account"] == self.ig_user_id]


@pytest.fixture
async def scene(runtime: EngineRuntime, tmp_path: Path, pool: str) -> AsyncIterator[Scene]:
    emulator = GraphEmulator().start()
    ig_user_id = str(17_841_480_000_000_000 + secrets.randbelow(10**9))
    token = "IGQ-scheduled-" + secrets.token_urlsafe(8)
    emulator.state.add_account(ig_user_id, "shop", token)
    emulator.state.publishing.fetch_media = False
    use_emulator(runtime, emulator)
    runtime.settings = runtime.settings.model_copy(
        update={
            "knowledge": runtime.settings.knowledge.model_copy(
                update={"storage_url": str(tmp_path / "storage")}
            )
        }
    )
    account = await connect_account(runtime, ig_user_id=ig_user_id, token=token)
    try:
        yield Scene(runtime, emulator, account)
    finally:
        emulator.stop()
        async with runtime.db.sessionmaker() as session:
            await session.execute(delete(Post).where(Post.workspace_id == account.workspace_id))
            await session.commit()


async def run_worker_until(runtime: EngineRuntime, done: Any, timeout: float = 180) -> None:
    worker = Worker(runtime, concurrency=2, poll_interval=0.05, schedule_poll=0.3)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await done():
            assert not task.done(), task.exception()
            assert asyncio.get_running_loop().time() < deadline, "the post was never published"
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def flow_run(run_id: uuid.UUID | None) -> Any:
    assert run_id is not None
    async with get_client() as client:
        return await client.read_flow_run(run_id)


async def test_a_post_is_a_prefect_run_at_its_time_and_a_worker_publishes_it(
    scene: Scene, pool: str
) -> None:
    post = await scene.post("At its time")
    at = utcnow() + timedelta(seconds=2)
    async with scene.runtime.db.sessionmaker() as session:
        row = await posts.get(session, post.workspace_id, post.id)
        row = await posts.schedule(session, scene.runtime.db, row, at)
    assert row.status == "scheduled" and row.prefect_flow_run_id is not None
    run = await flow_run(row.prefect_flow_run_id)
    assert run.state.is_scheduled()
    assert abs((run.next_scheduled_start_time - at).total_seconds()) < 1
    assert run.parameters == {"post_id": str(post.id)}
    assert f"workspace:{post.workspace_id}" in run.tags
    assert str(post.id)[:8] in run.name

    async def published_and_run_ended() -> bool:
        # the worker stops only once the run has ended: stopping it earlier would crash it
        row = await scene.read(post.id)
        if row.status != PostStatus.PUBLISHED:
            return False
        state = (await flow_run(row.prefect_flow_run_id)).state
        return state is not None and state.is_final()

    await run_worker_until(scene.runtime, published_and_run_ended)
    done = await scene.read(post.id)
    assert len(scene.on_meta()) == 1 and done.permalink == scene.on_meta()[0]["permalink"]
    assert done.published_at is not None and done.published_at >= at
    finished = await flow_run(done.prefect_flow_run_id)
    assert finished.state.is_completed(), finished.state


async def test_reschedule_and_cancel_move_the_prefect_run(scene: Scene, pool: str) -> None:
    post = await scene.post()
    first_at = utcnow() + timedelta(hours=2)
    async with scene.runtime.db.sessionmaker() as session:
        row = await posts.get(session, post.workspace_id, post.id)
        row = await posts.schedule(session, scene.runtime.db, row, first_at)
        first_run = row.prefect_flow_run_id
        later = utcnow() + timedelta(days=3)
        row = await posts.schedule(session, scene.runtime.db, row, later)
        second_run = row.prefect_flow_run_id
        assert second_run != first_run
        assert (await flow_run(first_run)).state.is_cancelled()
        moved = await flow_run(second_run)
        assert abs((moved.next_scheduled_start_time - later).total_seconds()) < 1
        in_range, total = await posts.list_posts(
            session,
            post.workspace_id,
            start=later - timedelta(hours=1),
            end=later + timedelta(hours=1),
            account_id=None,
            status=None,
            limit=10,
            offset=0,
        )
        assert [p.id for p in in_range] == [post.id] and total == 1
        before, _ = await posts.list_posts(
            session,
            post.workspace_id,
            start=None,
            end=later - timedelta(hours=1),
            account_id=None,
            status=None,
            limit=10,
            offset=0,
        )
        assert before == []
        row = await posts.cancel(session, row)
    assert row.status == "draft"
    assert (await flow_run(second_run)).state.is_cancelled()


async def test_a_due_post_without_a_run_is_started_by_the_sweep(scene: Scene, pool: str) -> None:
    post = await scene.post("Lost run")
    async with scene.runtime.db.sessionmaker() as session:
        row = await session.get(Post, post.id)
        assert row is not None
        # scheduled while Prefect was away: no run, and due for two minutes
        row.status = PostStatus.SCHEDULED
        row.scheduled_at = utcnow() - timedelta(minutes=2)
        await session.commit()
    started = await sweep_due_posts(scene.runtime.db, lease_seconds=300)
    assert started == 1
    assert (await scene.read(post.id)).prefect_flow_run_id is not None
    # a second sweep sees the run waiting for a worker and starts nothing
    assert await sweep_due_posts(scene.runtime.db, lease_seconds=300) == 0

    async def published() -> bool:
        return (await scene.read(post.id)).status == PostStatus.PUBLISHED

    await run_worker_until(scene.runtime, published)
    assert len(scene.on_meta()) == 1


def publish_graph(media_id: uuid.UUID) -> GraphSpec:
    return GraphSpec.model_validate(
        {
            "nodes": [
                {"id": "t", "kind": "trigger.manual", "label": "Start"},
                {
                    "id": "pub",
                    "kind": "instagram.publish",
                    "label": "Publish",
                    "config": {
                        "type": "image",
                        "media_ids": [str(media_id)],
                        "caption": "From a flow: {{ trigger.text }}",
                    },
                },
                {
                    "id": "stats",
                    "kind": "instagram.insights",
                    "label": "Insights",
                    "config": {
                        "target": "media",
                        "media_id": "{{ nodes.pub.post.ig_media_id }}",
                        "media_metrics": ["views", "reach"],
                    },
                },
            ],
            "edges": [
                {"source": "t", "source_port": "event", "target": "pub"},
                {"source": "pub", "source_port": "post", "target": "stats"},
            ],
        }
    )


async def test_nodes_publish_once_and_read_insights(scene: Scene) -> None:
    post = await scene.post()
    media_id = uuid.UUID(str(post.media_ids[0]))
    spec = publish_graph(media_id)
    meta = RunMeta(flow_name="publish-node", workspace_id=scene.account.workspace_id)
    await start_graph_run(spec, {"text": "hello"}, meta)
    async with scene.runtime.db.session() as session:
        execution = await get_execution(session, meta.execution_id)
    assert execution.status == "completed", execution
    nodes = {n.node_id: n for n in execution.node_runs}
    out = nodes["pub"].output["post"]
    on_meta = scene.on_meta()
    assert len(on_meta) == 1 and out["ig_media_id"] == on_meta[0]["id"]
    assert out["permalink"] == on_meta[0]["permalink"]
    assert on_meta[0]["caption"] == "From a flow: hello"
    values = nodes["stats"].output["insights"]["values"]
    assert set(values) == {"views", "reach"} and all(isinstance(v, int) for v in values.values())
    # an editor's test run publishes nothing and says what it would publish
    sandboxed = RunMeta(
        flow_name="publish-node", workspace_id=scene.account.workspace_id, sandbox=True
    )
    await start_graph_run(publish_graph(media_id), {"text": "test"}, sandboxed)
    async with scene.runtime.db.session() as session:
        test_run = await get_execution(session, sandboxed.execution_id)
    test_nodes = {n.node_id: n for n in test_run.node_runs}
    assert test_nodes["pub"].output["post"]["status"] == "sandboxed"
    assert len(scene.on_meta()) == 1
