"""Publishing test fixtures: a workspace with a live account on the Graph API emulator."""

from __future__ import annotations

import asyncio
import io
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update

from socialflow.core.credentials import key_wrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.settings import Settings
from socialflow.publishing import (
    MediaStore,
    Post,
    PostFields,
    PostStatus,
    PostType,
    PublishingContext,
    posts,
)
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import connect_account, emulator_settings


@dataclass
class Env:
    """A workspace with a live account on the emulator, and a publishing context."""

    db: Database
    settings: Settings
    emulator: GraphEmulator
    context: PublishingContext
    workspace_id: uuid.UUID
    account_id: uuid.UUID
    ig_user_id: str

    def control(self, route: str, **body: Any) -> dict[str, Any]:
        answer = httpx.post(f"{self.emulator.url}/_emulator/{route}", json=body, trust_env=False)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def containers_made(self) -> list[dict[str, Any]]:
        """Bodies of the containers Meta accepted (``POST /{ig-user-id}/media``)."""
        made = self.emulator.calls(method="POST")
        return [c["body"] for c in made if c["path"].endswith("/media")]

    def media_on_meta(self) -> list[dict[str, Any]]:
        published = self.emulator.state.publishing.media.values()
        return [m for m in published if m["account"] == self.ig_user_id]

    async def upload(self, data: bytes, name: str = "photo.jpg") -> uuid.UUID:
        async with self.db.sessionmaker() as session:
            media = await posts.upload_media(
                session,
                MediaStore(self.settings),
                self.workspace_id,
                io.BytesIO(data),
                filename=name,
                user_id=None,
            )
            return media.id

    async def post(
        self, post_type: PostType, media: list[uuid.UUID], caption: str = "Hello"
    ) -> uuid.UUID:
        """A post scheduled for now, without a Prefect run (these tests call the engine)."""
        fields = PostFields(
            account_id=self.account_id, type=post_type, caption=caption, media_ids=media
        )
        async with self.db.sessionmaker() as session:
            post, _ = await posts.create(session, self.workspace_id, fields, user_id=None)
            assert post.problems == [], post.problems
            post.status = PostStatus.SCHEDULED
            post.scheduled_at = utcnow()
            await session.commit()
            return post.id

    async def read(self, post_id: uuid.UUID) -> Post:
        async with self.db.sessionmaker() as session:
            post = await session.get(Post, post_id)
            assert post is not None
            return post

    async def lapse(self, post_id: uuid.UUID) -> None:
        """Time passes: the attempt's lease on the post runs out."""
        async with self.db.sessionmaker() as session:
            await session.execute(
                update(Post)
                .where(Post.id == post_id)
                .values(claimed_at=utcnow() - timedelta(seconds=1))
            )
            await session.commit()


def emulator_clock(emulator: GraphEmulator) -> Any:
    """A sleep that moves the emulator's clock instead of waiting: containers age at once."""

    async def sleep(seconds: float) -> None:
        with emulator.state.publishing.lock:
            emulator.state.publishing.offset += seconds
        await asyncio.sleep(0)

    return sleep


def env_settings(db: Database, emulator: GraphEmulator, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        environment="test",
        secret_key="publishing-tests-" + secrets.token_urlsafe(24),
        data_dir=tmp_path,
        database={"url": db.url},
        instagram=emulator_settings(emulator),
        knowledge={"storage_url": str(tmp_path / "storage")},
        **extra,
    )


@pytest.fixture
async def env(db: Database, tmp_path: Path) -> AsyncIterator[Env]:
    emulator = GraphEmulator().start()
    ig_user_id = str(17_841_460_000_000_000 + secrets.randbelow(10**9))
    token = "IGQ-publishing-" + secrets.token_urlsafe(8)
    emulator.state.add_account(ig_user_id, "shop", token)
    settings = env_settings(db, emulator, tmp_path)
    keys = key_wrapper(settings)
    runtime = SimpleNamespace(db=db, key_wrapper=lambda: keys)
    account = await connect_account(runtime, ig_user_id=ig_user_id, token=token)
    context = PublishingContext(settings=settings, db=db, keys=keys, sleep=emulator_clock(emulator))
    environment = Env(db, settings, emulator, context, account.workspace_id, account.id, ig_user_id)
    # these tests check the engine; the test with the app served lets Meta fetch for real
    environment.control("containers", fetch_media=False)
    try:
        yield environment
    finally:
        emulator.stop()
        # a worker's sweep in a later test must not find this test's posts due
        async with db.sessionmaker() as session:
            await session.execute(delete(Post).where(Post.workspace_id == account.workspace_id))
            await session.commit()
