"""Publishing one post, exactly once: claim → quota → containers → wait → publish → record.

Each step is recorded before the next (``Post.containers`` as soon as Meta returns an id,
``publish_started_at`` just before ``media_publish``, then the media id), every write fenced by
the attempt's lease (``socialflow.core.lease``), so an attempt that died is taken up again
from the record by the next one and an attempt whose lease was taken over writes nothing and
publishes nothing. On resume after ``publish_started_at`` the container's status decides:
PUBLISHED means the post exists (its media id is found among the account's recent media),
FINISHED means the call never landed, EXPIRED or ERROR mean a new container. A post is never
left ``publishing``: a dead attempt's lease lapses and the post is taken again, at most
``publishing.max_attempts`` times before it is marked failed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import or_, select

from socialflow.core.credentials import Credential, open_credential
from socialflow.core.crypto import KeyWrapper
from socialflow.core.db import Database, utcnow
from socialflow.core.errors import TransientError, UserError
from socialflow.core.lease import Held, Leases, LeaseTable
from socialflow.core.logging import get_logger
from socialflow.core.settings import Settings
from socialflow.instagram import GraphError, InstagramAccount, TokenInvalidError
from socialflow.instagram.client import GraphClient
from socialflow.publishing._errors import Verdict, verdict_for
from socialflow.publishing._media_store import MediaStore
from socialflow.publishing._models import MediaKind, Post, PostMedia, PostStatus, PostType

__all__ = ["POST_LEASES", "Outcome", "Publisher", "PublishingContext"]

_log = get_logger(__name__)

POST_LEASES = LeaseTable(
    model=Post,
    id=Post.id,
    status=Post.status,
    attempts=Post.attempts,
    stamp=Post.claimed_at,
    waiting=PostStatus.SCHEDULED,
    held=PostStatus.PUBLISHING,
    exhausted=PostStatus.FAILED,
)
#: when nothing tells when the quota frees a post, look again after this long
QUOTA_RECHECK = timedelta(hours=1)
#: a container older than this is not worth publishing from: it expires at 24 hours
CONTAINER_TRUST = timedelta(hours=23)

#: arranges an attempt of a post (id, workspace) at a time; what it returns is not used
Scheduler = Callable[[uuid.UUID, uuid.UUID, datetime], Awaitable[object]]


@dataclass
class PublishingContext:
    """What publishing needs from its process.

    Attributes:
        settings: Settings (Instagram hosts, publishing limits, storage, secret key).
        db: The application database.
        keys: Master keys to open account tokens.
        http: A shared outbound client; each Graph client makes its own when None.
        retry_at: Arranges another attempt of a post at a time (a Prefect run); None: the
            worker's sweep finds the post when it is due.
        sleep: Waits between container polls (replaceable in tests).
    """

    settings: Settings
    db: Database
    keys: KeyWrapper
    http: httpx.AsyncClient | None = None
    retry_at: Scheduler | None = None
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep)


class Outcome(BaseModel):
    """Where a post stands after an attempt."""

    post_id: uuid.UUID
    status: str
    ig_media_id: str | None = None
    permalink: str | None = None
    reason: str | None = None


class _LeaseLost(Exception):
    """Another attempt holds the post now: this one stops and writes nothing."""


class _Again(Exception):
    """Give the post back for a later attempt (Meta busy, media still processing)."""

    def __init__(self, reason: str, wait: float, *, quota: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.wait, self.quota = reason, wait, quota


class _Failed(Exception):
    """The post cannot be published as it is; ``reason`` says what to change."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class Publisher:
    """Runs publishing attempts.

    Args:
        context: Settings, database, keys and hooks of this process.
    """

    def __init__(self, context: PublishingContext) -> None:
        self.context = context
        self.settings = context.settings.publishing
        self.leases = Leases(
            POST_LEASES,
            duration=timedelta(seconds=self.settings.lease_seconds),
            max_attempts=self.settings.max_attempts,
        )

    async def publish(self, post_id: uuid.UUID) -> Outcome:
        """Make one attempt at a post that is due, or resume one whose attempt died.

        Returns:
            Where the post stands: published, failed, scheduled (waiting, with the reason),
            or as it was when this attempt could not take it (not due, held elsewhere, done).
        """
        held = await self._claim(post_id)
        if held is None:
            return await self._outcome(post_id)
        try:
            await _Attempt(self, held).run()
        except _Done:
            pass
        except _LeaseLost:
            _log.warning("publishing lease taken over; this attempt stops", post_id=str(post_id))
        except _Again as again:
            await self._release(held, again)
        except _Failed as failed:
            await self._fail(held, failed.code, failed.reason)
        except TokenInvalidError as exc:
            await self._fail(held, "instagram_token_invalid", exc.message)
        except TransientError as exc:
            wait = exc.retry_after or 60.0
            await self._release(held, _Again(f"Instagram is busy, retried later: {exc}", wait))
        except UserError as exc:
            await self._fail(held, exc.code, exc.message)
        except Exception as exc:
            _log.exception("publishing attempt crashed", post_id=str(post_id))
            reason = f"the attempt crashed ({type(exc).__name__}: {exc}); retried in a minute"
            await self._release(held, _Again(reason, 60.0))
        return await self._outcome(post_id)

    async def _claim(self, post_id: uuid.UUID) -> Held | None:
        now = utcnow()
        async with self.context.db.sessionmaker() as session:
            result = await self.leases.claim(
                session,
                limit=1,
                where=[
                    Post.id == post_id,
                    Post.scheduled_at <= now,
                    or_(Post.next_attempt_at.is_(None), Post.next_attempt_at <= now),
                ],
                exhausted_values=lambda attempts: {
                    "error_code": "publishing_gave_up",
                    "error": (
                        f"gave up after {attempts} attempts; the last one stopped mid-way "
                        "(see the worker's log)"
                    ),
                    "claimed_at": None,
                    "waiting_reason": None,
                },
                now=now,
            )
            await session.commit()
        return result.claimed[0][0] if result.claimed else None

    async def write(self, held: Held, values: dict[str, Any]) -> None:
        """Record a step while this attempt still holds the post, and renew its lease.

        Raises:
            _LeaseLost: Another attempt took the post over.
        """
        values = {**values, "claimed_at": self.leases.stamp(utcnow())}
        async with self.context.db.sessionmaker() as session:
            kept = await self.leases.end(session, held, values)
            await session.commit()
        if not kept:
            raise _LeaseLost

    async def _release(self, held: Held, again: _Again) -> None:
        when = utcnow() + timedelta(seconds=max(again.wait, 1.0))
        values: dict[str, Any] = {
            "status": PostStatus.SCHEDULED,
            "claimed_at": None,
            "next_attempt_at": when,
            "waiting_reason": again.reason,
        }
        if again.quota:
            values["attempts"] = 0  # waiting for the quota is not a failed attempt
        async with self.context.db.sessionmaker() as session:
            kept = await self.leases.end(session, held, values)
            workspace_id = await session.scalar(select(Post.workspace_id).where(Post.id == held.id))
            await session.commit()
        if kept and self.context.retry_at is not None and workspace_id is not None:
            try:
                await self.context.retry_at(held.id, workspace_id, when)
            except Exception as exc:
                # the worker's sweep finds the post when it is due
                _log.warning("scheduling the next attempt failed", error=repr(exc))

    async def _fail(self, held: Held, code: str, reason: str) -> None:
        values = {
            "status": PostStatus.FAILED,
            "claimed_at": None,
            "next_attempt_at": None,
            "waiting_reason": None,
            "error_code": code[:60],
            "error": reason,
        }
        async with self.context.db.sessionmaker() as session:
            await self.leases.end(session, held, values)
            await session.commit()

    async def _outcome(self, post_id: uuid.UUID) -> Outcome:
        async with self.context.db.sessionmaker() as session:
            post = await session.get(Post, post_id)
        if post is None:
            return Outcome(post_id=post_id, status="missing", reason="no such post")
        return Outcome(
            post_id=post.id,
            status=post.status,
            ig_media_id=post.ig_media_id,
            permalink=post.permalink,
            reason=post.error or post.waiting_reason,
        )


class _Attempt:
    """One attempt at one claimed post."""

    def __init__(self, publisher: Publisher, held: Held) -> None:
        self.publisher = publisher
        self.context = publisher.context
        self.held = held
        self.media = MediaStore(self.context.settings)

    async def run(self) -> None:
        post, account, media, cover = await self._load()
        self.post = post
        client = await self._client(account)
        try:
            await self._publish(client, post, media, cover)
        finally:
            await client.aclose()

    async def _load(self) -> tuple[Post, InstagramAccount, list[PostMedia], PostMedia | None]:
        async with self.context.db.sessionmaker() as session:
            post = await session.get(Post, self.held.id)
            if post is None:
                raise _LeaseLost
            account = await session.get(InstagramAccount, post.account_id)
            ids = [uuid.UUID(str(i)) for i in post.media_ids]
            rows = {
                m.id: m
                for m in (
                    await session.scalars(select(PostMedia).where(PostMedia.id.in_(ids)))
                ).all()
            }
            cover = (
                await session.get(PostMedia, post.cover_media_id) if post.cover_media_id else None
            )
            credential = (
                await session.get(Credential, account.credential_id)
                if account is not None and account.credential_id
                else None
            )
        if account is None:
            msg = "instagram_account_missing"
            raise _Failed(msg, "the Instagram account was disconnected")
        if account.mode != "live":
            msg = "account_sandboxed"
            raise _Failed(
                msg,
                f"@{account.username} is in sandbox mode, which never posts; switch it to live",
            )
        if credential is None:
            msg = "instagram_token_missing"
            raise _Failed(msg, f"@{account.username} has no stored token; reconnect it")
        missing = [str(i) for i in ids if i not in rows]
        if missing:
            msg = "media_missing"
            raise _Failed(msg, f"media {', '.join(missing)} were deleted")
        self.token = str(open_credential(credential, self.context.keys)["access_token"])
        return post, account, [rows[i] for i in ids], cover

    async def _client(self, account: InstagramAccount) -> GraphClient:
        return GraphClient(
            self.token,
            self.context.settings.instagram,
            ig_user_id=account.ig_user_id,
            login_kind=account.login_kind,
            http=self.context.http,
        )

    async def _publish(
        self, client: GraphClient, post: Post, media: list[PostMedia], cover: PostMedia | None
    ) -> None:
        containers = list(post.containers or [])
        if post.publish_started_at is not None:
            containers = await self._resume_after_publish_call(client, post, containers)
        if containers and post.containers_created_at is not None:
            if utcnow() - post.containers_created_at > CONTAINER_TRUST:
                containers = []  # about to expire: make new ones rather than race the expiry
        await self._check_quota(client, post)
        final = await self._containers(client, post, media, cover, containers)
        await self._wait_ready(client, final)
        await self.publisher.write(self.held, {"publish_started_at": utcnow()})
        media_id = await self._media_publish(client, final)
        await self._published(client, media_id)

    async def _resume_after_publish_call(
        self, client: GraphClient, post: Post, containers: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The last attempt called ``media_publish`` and stopped before recording the answer:
        Meta's view of the container says whether the post exists."""
        final = _final(containers)
        status = (await self._status(client, final))[0] if final else "EXPIRED"
        if status == "PUBLISHED":
            found = await self._find_media(client, post)
            await self._published(client, found, note=None if found else _UNKNOWN_ID)
            raise _Done
        values: dict[str, Any] = {"publish_started_at": None}
        if status != "FINISHED":
            containers = []
            values["containers"] = []
        await self.publisher.write(self.held, values)
        return containers

    async def _find_media(self, client: GraphClient, post: Post) -> str | None:
        """The media a publish call made, among the account's recent media: same caption,
        published no earlier than the call."""
        answer = await client.request(
            "GET",
            f"{client.ig_user_id}/media",
            params={"fields": "id,caption,timestamp", "limit": "25"},
            call="list recent media",
        )
        since = (post.publish_started_at or utcnow()) - timedelta(minutes=10)
        for item in answer.get("data") or []:
            when = _parse_time(item.get("timestamp"))
            if (item.get("caption") or "") == (post.caption or "") and when and when >= since:
                return str(item["id"])
        return None

    async def _check_quota(self, client: GraphClient, post: Post) -> None:
        answer = await client.request(
            "GET",
            f"{client.ig_user_id}/content_publishing_limit",
            params={"fields": "quota_usage,config"},
            call="read the publishing limit",
        )
        entry = (answer.get("data") or [{}])[0]
        usage = int(entry.get("quota_usage") or 0)
        total = int((entry.get("config") or {}).get("quota_total") or 0)
        if total and usage >= total:
            raise await self._quota_wait(post, usage, total)

    async def _quota_wait(self, post: Post, usage: int, total: int) -> _Again:
        """How long the quota keeps this post waiting: until the oldest post this app
        published in the window is 24 hours old, else an hour (Meta's count includes posts
        made elsewhere)."""
        now = utcnow()
        async with self.context.db.sessionmaker() as session:
            oldest = await session.scalar(
                select(Post.published_at)
                .where(
                    Post.account_id == post.account_id,
                    Post.published_at >= now - timedelta(days=1),
                )
                .order_by(Post.published_at)
                .limit(1)
            )
        when = oldest + timedelta(days=1, minutes=1) if oldest else now + QUOTA_RECHECK
        when = max(when, now + timedelta(minutes=1))
        count = f" ({usage} of {total} posts in the last 24 hours)" if total else ""
        reason = (
            f"Instagram's publishing limit is reached{count}; the post waits and tries again "
            f"at {when:%Y-%m-%d %H:%M} UTC"
        )
        return _Again(reason, (when - now).total_seconds(), quota=True)

    async def _containers(
        self,
        client: GraphClient,
        post: Post,
        media: list[PostMedia],
        cover: PostMedia | None,
        containers: list[dict[str, Any]],
    ) -> str:
        """Create the containers not yet recorded, recording each at once; the one to
        publish (the carousel or the single container)."""
        post_type = PostType(post.type)
        if post_type != PostType.CAROUSEL:
            found = _final(containers)
            if found:
                return found
            single = self._single_body(post, post_type, media[0], cover)
            return await self._create(client, containers, "single", 0, single)
        children: list[str] = []
        for index, item in enumerate(media):
            known = next(
                (c["id"] for c in containers if c["role"] == "child" and c["index"] == index), None
            )
            if known is None:
                known = await self._create(client, containers, "child", index, self._child(item))
            children.append(known)
        parent = next((c["id"] for c in containers if c["role"] == "parent"), None)
        if parent is not None:
            return str(parent)
        for child in children:
            await self._wait_ready(client, child)
        body: dict[str, Any] = {"media_type": "CAROUSEL", "children": ",".join(children)}
        body |= self._caption_fields(post)
        return await self._create(client, containers, "parent", 0, body)

    def _url(self, item: PostMedia) -> str:
        return self.media.public_url(item.id, item.storage_url)

    def _caption_fields(self, post: Post) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if post.caption:
            body["caption"] = post.caption
        if post.collaborators:
            body["collaborators"] = [c.removeprefix("@") for c in post.collaborators]
        return body

    def _child(self, item: PostMedia) -> dict[str, Any]:
        if item.kind == MediaKind.VIDEO:
            return {"media_type": "VIDEO", "video_url": self._url(item), "is_carousel_item": True}
        body: dict[str, Any] = {"image_url": self._url(item), "is_carousel_item": True}
        return body

    def _single_body(
        self, post: Post, post_type: PostType, item: PostMedia, cover: PostMedia | None
    ) -> dict[str, Any]:
        if post_type == PostType.STORY:
            key = "video_url" if item.kind == MediaKind.VIDEO else "image_url"
            return {"media_type": "STORIES", key: self._url(item)}
        if post_type == PostType.REEL:
            body: dict[str, Any] = {
                "media_type": "REELS",
                "video_url": self._url(item),
                "share_to_feed": True,
            }
            if cover is not None:
                body["cover_url"] = self._url(cover)
            return body | self._caption_fields(post)
        body = {"image_url": self._url(item)} | self._caption_fields(post)
        if post.alt_text:
            body["alt_text"] = post.alt_text
        return body

    async def _create(
        self,
        client: GraphClient,
        containers: list[dict[str, Any]],
        role: str,
        index: int,
        body: dict[str, Any],
    ) -> str:
        try:
            answer = await client.request(
                "POST", f"{client.ig_user_id}/media", json=body, call=f"create a {role} container"
            )
        except GraphError as exc:
            verdict = verdict_for(exc.graph_code, exc.subcode, exc.message)
            raise _refusal(verdict, "creating the media container") from exc
        container_id = str(answer["id"])
        containers.append({"role": role, "index": index, "id": container_id})
        values: dict[str, Any] = {"containers": list(containers)}
        if len(containers) == 1:
            values["containers_created_at"] = utcnow()
        await self.publisher.write(self.held, values)
        return container_id

    async def _status(self, client: GraphClient, container_id: str) -> tuple[str, str]:
        answer = await client.request(
            "GET",
            container_id,
            params={"fields": "status_code,status"},
            call=f"read the status of container {container_id}",
        )
        return str(answer.get("status_code") or ""), str(answer.get("status") or "")

    async def _wait_ready(self, client: GraphClient, container_id: str) -> None:
        """Poll a container until FINISHED, backing off from 1 s to 60 s (Meta's guide: once a
        minute; its sample: every 3 s), for at most ``publishing.poll_seconds``."""
        deadline = asyncio.get_running_loop().time() + self.publisher.settings.poll_seconds
        delay = 1.0
        while True:
            code, status = await self._status(client, container_id)
            if code == "FINISHED":
                return
            if code == "PUBLISHED":
                found = await self._find_media(client, self.post)
                await self._published(client, found, note=None if found else _UNKNOWN_ID)
                raise _Done
            if code in ("ERROR", "EXPIRED"):
                await self.publisher.write(
                    self.held, {"containers": [], "containers_created_at": None}
                )
                subcode = _subcode(status)
                verdict = verdict_for(None, subcode, status)
                if code == "EXPIRED" or verdict.decision in ("recreate", "retry", "retry_soon"):
                    msg = f"the media container {code.lower()}: {verdict.reason}"
                    raise _Again(msg, 5)
                raise _Failed(
                    verdict.code, f"Instagram could not process the media: {verdict.reason}"
                )
            if asyncio.get_running_loop().time() + delay > deadline:
                msg = "Instagram is still processing the media; checked again shortly"
                raise _Again(msg, 60)
            await self.publisher.write(self.held, {})  # renews the lease while waiting
            await self.context.sleep(delay)
            delay = min(delay * 2, 60.0)

    async def _media_publish(self, client: GraphClient, creation_id: str) -> str:
        """``media_publish``, with Meta's advice for 2207008 (again within 2 minutes)."""
        for attempt in range(3):
            try:
                answer = await client.request(
                    "POST",
                    f"{client.ig_user_id}/media_publish",
                    json={"creation_id": creation_id},
                    call="publish the post",
                )
                return str(answer["id"])
            except GraphError as exc:
                verdict = verdict_for(exc.graph_code, exc.subcode, exc.message)
                # refused: nothing was published, so the next attempt may call again
                await self.publisher.write(self.held, {"publish_started_at": None})
                if verdict.decision == "retry_soon" and attempt < 2:
                    await self.context.sleep(verdict.wait)
                    await self.publisher.write(self.held, {"publish_started_at": utcnow()})
                    continue
                if verdict.decision == "not_ready":
                    raise _Again(verdict.reason, verdict.wait) from exc
                if verdict.decision in ("recreate", "retry_soon"):
                    await self.publisher.write(self.held, {"containers": []})
                    msg = f"{verdict.reason}; a new container is made"
                    raise _Again(msg, 5) from exc
                if verdict.decision == "quota":
                    raise await self._quota_wait(self.post, 0, 0) from exc
                raise _refusal(verdict, "publishing") from exc
        msg = "unreachable"
        raise AssertionError(msg)

    async def _published(
        self, client: GraphClient, media_id: str | None, *, note: str | None = None
    ) -> None:
        now = utcnow()
        await self.publisher.write(
            self.held,
            {
                "status": PostStatus.PUBLISHED,
                "ig_media_id": media_id,
                "published_at": now,
                "waiting_reason": None,
                "next_attempt_at": None,
                "error_code": None,
                "error": note,
            },
        )
        permalink = None
        if media_id is not None:
            try:
                answer = await client.request(
                    "GET", media_id, params={"fields": "permalink"}, call="read the permalink"
                )
                permalink = answer.get("permalink")
            except Exception as exc:
                # the post exists; a missing link never fails it
                _log.warning("reading the permalink failed", media_id=media_id, error=repr(exc))
        async with self.context.db.sessionmaker() as session:
            post = await session.get(Post, self.held.id)
            if post is not None:
                post.permalink = permalink
                post.claimed_at = None
                await session.commit()


class _Done(Exception):
    """The post turned out to be published already; nothing more to do."""


_UNKNOWN_ID = (
    "published, but the attempt stopped before Meta's answer was recorded and the media was "
    "not found among the account's recent media, so its id and link are unknown"
)


def _refusal(verdict: Verdict, step: str) -> Exception:
    if verdict.decision == "fail":
        return _Failed(verdict.code, f"{step}: {verdict.reason}")
    return _Again(f"{step}: {verdict.reason}", verdict.wait or 30.0)


def _final(containers: list[dict[str, Any]]) -> str | None:
    for container in containers:
        if container["role"] in ("single", "parent"):
            return str(container["id"])
    return None


def _subcode(status: str) -> int | None:
    digits = "".join(ch for ch in status if ch.isdigit())
    return int(digits) if digits else None


def _parse_time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("+0000", "+00:00"))
    except ValueError:
        return None
