"""A publishing worker killed with SIGKILL between creating the container and publishing, and
again between publishing and recording it: the next attempt resumes from the record, and the
emulator holds exactly one post each time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from socialflow.publishing import PostType, Publisher
from tests.fixtures.media import jpeg
from tests.publishing.conftest import Env

ROOT = Path(__file__).resolve().parents[2]


def start_child(env: Env, post_id: uuid.UUID, log: Path) -> subprocess.Popen[bytes]:
    spec = {
        "secret_key": env.settings.secret_key,
        "data_dir": str(env.settings.data_dir),
        "database_url": env.db.url,
        "emulator_url": env.emulator.url,
        "storage_url": str(env.settings.knowledge.storage_url),
        "post_id": str(post_id),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.publishing._child", json.dumps(spec)],
            cwd=ROOT,
            env={**os.environ},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def kill_when(
    child: subprocess.Popen[bytes], log: Path, ready: Callable[[], Awaitable[bool]]
) -> None:
    """SIGKILL the child as soon as ``ready`` holds (it must still be running then)."""
    deadline = asyncio.get_running_loop().time() + 60
    try:
        while not await ready():
            assert child.poll() is None, f"the worker ended early: {log.read_text()[-3000:]}"
            assert asyncio.get_running_loop().time() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()


@pytest.mark.timeout(180)
async def test_killed_between_container_and_publish(env: Env, tmp_path: Path) -> None:
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())], caption="Killed once")
    # Meta is slow with this one: the worker polls the container while it is killed
    env.control("containers", ready_after=600, count=1)
    log = tmp_path / "worker.log"

    async def container_recorded() -> bool:
        return bool((await env.read(post_id)).containers)

    await kill_when(start_child(env, post_id, log), log, container_recorded)
    recorded = (await env.read(post_id)).containers
    assert env.media_on_meta() == [], "the kill must land before publishing"
    env.control("clock", advance=601)  # Meta finishes processing meanwhile
    await env.lapse(post_id)
    outcome = await Publisher(env.context).publish(post_id)
    assert outcome.status == "published", outcome
    assert len(env.media_on_meta()) == 1
    assert (await env.read(post_id)).containers == recorded, "the recorded container was used"
    assert len(env.containers_made()) == 1, "no second container was made"
    assert len(env.emulator.calls("media_publish")) == 1


@pytest.mark.timeout(180)
async def test_killed_between_publish_and_its_record(env: Env, tmp_path: Path) -> None:
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())], caption="Killed twice")
    # Meta publishes at once and answers 30 s later: the worker dies waiting for the answer
    env.control("fail", path_contains="media_publish", kind="slow", seconds=30)
    log = tmp_path / "worker.log"

    async def published_unrecorded() -> bool:
        post = await env.read(post_id)
        return bool(env.media_on_meta()) and post.publish_started_at is not None

    await kill_when(start_child(env, post_id, log), log, published_unrecorded)
    post = await env.read(post_id)
    assert post.status == "publishing" and post.ig_media_id is None
    await env.lapse(post_id)
    outcome = await Publisher(env.context).publish(post_id)
    on_meta = env.media_on_meta()
    assert outcome.status == "published", outcome
    assert len(on_meta) == 1, "published exactly once"
    assert outcome.ig_media_id == on_meta[0]["id"]
    assert outcome.permalink == on_meta[0]["permalink"]
    assert len(env.containers_made()) == 1
