"""What the ``instagram.publish`` and ``instagram.insights`` nodes reach through
``NodeContext.publishing``: the same publishing engine as the calendar, and Meta's insights.

A node's post is a post of the calendar made once per run and node (its idempotency key),
so a retried node publishes nothing twice: it finds its post and resumes it. Editor test
runs and sandbox accounts publish nothing and say what would be published.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field
from sqlalchemy import select

from socialflow.core.credentials import Credential, open_credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.errors import TransientError, UserError
from socialflow.core.settings import Settings
from socialflow.instagram import InstagramAccount
from socialflow.instagram.client import GraphClient
from socialflow.publishing import _service
from socialflow.publishing._engine import Publisher, PublishingContext
from socialflow.publishing._models import PostStatus, PostType
from socialflow.publishing._schemas import PostFields

__all__ = [
    "ACCOUNT_METRICS",
    "MEDIA_METRICS",
    "InsightsRequest",
    "PublishRequest",
    "PublishResult",
    "PublishingGateway",
]

#: metrics Meta offers now (v22.0 and later), none of the deprecated ones
MEDIA_METRICS = (
    "views",
    "reach",
    "likes",
    "comments",
    "saved",
    "shares",
    "total_interactions",
    "follows",
    "profile_visits",
    "reposts",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "replies",
    "navigation",
)
ACCOUNT_METRICS = (
    "views",
    "reach",
    "likes",
    "comments",
    "saves",
    "shares",
    "total_interactions",
    "accounts_engaged",
    "replies",
    "reposts",
    "follows_and_unfollows",
    "profile_links_taps",
)


class PublishRequest(BaseModel):
    """A post a node wants published now."""

    node_id: str
    account: str = Field(default="", description="ig_user_id; empty: the workspace's only one.")
    type: PostType
    caption: str = ""
    alt_text: str = ""
    collaborators: list[str] = Field(default_factory=list)
    media_ids: list[uuid.UUID]
    cover_media_id: uuid.UUID | None = None


class PublishResult(BaseModel):
    """What became of a node's post."""

    post_id: uuid.UUID | None
    status: str
    ig_media_id: str | None = None
    permalink: str | None = None
    sandboxed: bool = False
    problems: list[dict[str, str]] = Field(default_factory=list)


class InsightsRequest(BaseModel):
    """Metrics a node reads."""

    account: str = ""
    target: Literal["media", "account"]
    media_id: str = ""
    metrics: list[str]


class PublishingGateway:
    """The publishing service of one run.

    Args:
        db: The application database.
        keys: Master keys to open account tokens.
        settings: The process's settings.
        http: The shared outbound client.
        workspace_id: The run's workspace.
        execution_id: The run.
        sandbox: Whether the run is an editor test run (publishes nothing).
    """

    def __init__(
        self,
        db: Database,
        keys: KeyWrapper,
        settings: Settings,
        http: httpx.AsyncClient | None,
        *,
        workspace_id: uuid.UUID,
        execution_id: uuid.UUID,
        sandbox: bool,
    ) -> None:
        self.db, self.keys, self.settings, self.http = db, keys, settings, http
        self.workspace_id, self.execution_id, self.sandbox = workspace_id, execution_id, sandbox

    async def _account(self, ig_user_id: str) -> InstagramAccount:
        async with self.db.sessionmaker() as session:
            query = select(InstagramAccount).where(
                InstagramAccount.workspace_id == self.workspace_id
            )
            if ig_user_id:
                query = query.where(InstagramAccount.ig_user_id == ig_user_id)
            rows = list((await session.scalars(query.limit(2))).all())
        if len(rows) == 1:
            return rows[0]
        which = f"account {ig_user_id!r}" if ig_user_id else "an account (field 'account' is empty)"
        msg = (
            f"no Instagram {which} is connected to this workspace"
            if not rows
            else "several Instagram accounts are connected; set the field 'account'"
        )
        raise UserError(msg, code="instagram_account_missing")

    async def publish(self, request: PublishRequest) -> PublishResult:
        """Publish a post now through the calendar's engine, once per run and node.

        Raises:
            UserError: The post has problems, or Meta refused it (the reason in words).
            TransientError: The post waits (quota, Meta processing); ``retry_after`` says
                when the node should look again.
        """
        account = await self._account(request.account)
        fields = PostFields(
            account_id=account.id,
            type=request.type,
            caption=request.caption,
            alt_text=request.alt_text,
            collaborators=request.collaborators,
            media_ids=request.media_ids,
            cover_media_id=request.cover_media_id,
        )
        sandbox = self.sandbox or account.mode != "live"
        key_source = f"{self.execution_id}:{request.node_id}:{'sandbox' if sandbox else 'live'}"
        key = hashlib.sha256(key_source.encode()).hexdigest()
        async with self.db.sessionmaker() as session:
            post, _created = await _service.create(
                session, self.workspace_id, fields, user_id=None, idempotency_key=key
            )
            problems = list(post.problems or [])
            if sandbox:
                problems = [p for p in problems if p.get("code") != "account_sandboxed"]
                return PublishResult(
                    post_id=post.id, status="sandboxed", sandboxed=True, problems=problems
                )
            if post.status == PostStatus.DRAFT:
                if problems:
                    listed = "; ".join(p["message"] for p in problems)
                    msg = f"the post cannot be published: {listed}"
                    raise UserError(msg, code="post_has_problems", details={"problems": problems})
                post.status = PostStatus.SCHEDULED
                post.scheduled_at = utcnow()
                await session.commit()
            post_id = post.id
        context = PublishingContext(
            settings=self.settings, db=self.db, keys=self.keys, http=self.http
        )
        outcome = await Publisher(context).publish(post_id)
        if outcome.status == PostStatus.PUBLISHED:
            return PublishResult(
                post_id=post_id,
                status=outcome.status,
                ig_media_id=outcome.ig_media_id,
                permalink=outcome.permalink,
            )
        if outcome.status == PostStatus.FAILED:
            msg = f"Instagram did not publish the post: {outcome.reason}"
            raise UserError(msg, code="post_failed", details={"post_id": str(post_id)})
        async with self.db.sessionmaker() as session:
            post = await _service.get(session, self.workspace_id, post_id)
            wait = (
                (post.next_attempt_at - utcnow()).total_seconds() if post.next_attempt_at else 30.0
            )
        msg = f"the post waits: {outcome.reason or outcome.status}"
        raise TransientError(msg, retry_after=max(wait, 1.0), code="post_waiting")

    async def insights(self, request: InsightsRequest) -> dict[str, Any]:
        """Read media or account metrics; ``{metric: value}`` plus Meta's entries.

        Raises:
            UserError: Unknown metric, or Meta refused (deprecated metric, no such media).
        """
        allowed = MEDIA_METRICS if request.target == "media" else ACCOUNT_METRICS
        unknown = [m for m in request.metrics if m not in allowed]
        if unknown or not request.metrics:
            msg = (
                f"field 'metrics': {unknown or 'none given'}; {request.target} metrics Meta "
                f"offers now: {', '.join(allowed)}"
            )
            raise UserError(msg, code="invalid_config")
        account = await self._account(request.account)
        async with self.db.sessionmaker() as session:
            credential = (
                await session.get(Credential, account.credential_id)
                if account.credential_id
                else None
            )
        if credential is None:
            msg = f"Instagram account @{account.username} has no stored token; reconnect it"
            raise UserError(msg, code="instagram_token_missing")
        client = GraphClient(
            str(open_credential(credential, self.keys)["access_token"]),
            self.settings.instagram,
            ig_user_id=account.ig_user_id,
            login_kind=account.login_kind,
            http=self.http,
        )
        try:
            if request.target == "media":
                if not request.media_id:
                    msg = "field 'media_id': give the published media's id"
                    raise UserError(msg, code="invalid_config")
                answer = await client.request(
                    "GET",
                    f"{request.media_id}/insights",
                    params={"metric": ",".join(request.metrics)},
                    call=f"read insights of media {request.media_id}",
                )
            else:
                answer = await client.request(
                    "GET",
                    f"{account.ig_user_id}/insights",
                    params={
                        "metric": ",".join(request.metrics),
                        "period": "day",
                        "metric_type": "total_value",
                    },
                    call="read account insights",
                )
        finally:
            await client.aclose()
        values: dict[str, Any] = {}
        for entry in answer.get("data") or []:
            if "total_value" in entry:
                values[entry["name"]] = (entry["total_value"] or {}).get("value")
            else:
                series = entry.get("values") or [{}]
                values[entry["name"]] = series[-1].get("value")
        return {"values": values, "data": answer.get("data") or []}
