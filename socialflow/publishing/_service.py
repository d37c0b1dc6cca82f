"""The content calendar's operations: upload media, write posts, check, schedule, reschedule,
cancel, delete and list them. The API and the ``instagram.publish`` node both call these.

Hard bounds (sizes a request may have at all) are the schemas' business; Meta's limits
(caption, hashtags, mentions, media rules) are problems recorded on the post, so a draft may
be saved with them and shows each one, and scheduling refuses it while any remains.
"""

from __future__ import annotations

import asyncio
import hashlib
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.core.db import Database, utcnow
from socialflow.core.errors import ConflictError, NotFoundError, ValidationError
from socialflow.core.logging import get_logger
from socialflow.instagram import InstagramAccount
from socialflow.publishing._checks import inspect_media, post_problems
from socialflow.publishing._flow import cancel_run, schedule_run_at
from socialflow.publishing._media_store import MediaStore
from socialflow.publishing._models import Post, PostMedia, PostStatus, PostType
from socialflow.publishing._schemas import PostFields

__all__ = [
    "cancel",
    "check",
    "create",
    "delete",
    "get",
    "get_media",
    "list_posts",
    "schedule",
    "update",
    "upload_media",
]

_log = get_logger(__name__)

#: how far back a post may be scheduled (clocks differ; "now" is a fine time to publish)
PAST_TOLERANCE = timedelta(minutes=5)
#: the furthest ahead a post may be scheduled
HORIZON = timedelta(days=400)
_HASH_BLOCK = 1 << 20


async def get(session: AsyncSession, workspace_id: uuid.UUID, post_id: uuid.UUID) -> Post:
    """A post of the workspace.

    Raises:
        NotFoundError: No such post in this workspace (another workspace's is not found).
    """
    post = await session.scalar(
        select(Post).where(Post.id == post_id, Post.workspace_id == workspace_id)
    )
    if post is None:
        msg = f"post {post_id} not found"
        raise NotFoundError(msg, code="post_not_found")
    return post


async def get_media(
    session: AsyncSession, workspace_id: uuid.UUID, media_id: uuid.UUID
) -> PostMedia:
    """An uploaded file of the workspace.

    Raises:
        NotFoundError: No such media in this workspace.
    """
    media = await session.scalar(
        select(PostMedia).where(PostMedia.id == media_id, PostMedia.workspace_id == workspace_id)
    )
    if media is None:
        msg = f"media {media_id} not found"
        raise NotFoundError(msg, code="media_not_found")
    return media


def clean_filename(raw: str | None) -> str:
    """The last path component of an upload's name, printable, at most 255 characters."""
    name = PurePosixPath((raw or "").replace("\\", "/")).name
    name = "".join(ch for ch in unicodedata.normalize("NFC", name) if ch.isprintable()).strip()
    if not name or name in {".", ".."}:
        name = "upload"
    return name[-255:]


def _digest(source: IO[bytes]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    source.seek(0)
    while block := source.read(_HASH_BLOCK):
        size += len(block)
        digest.update(block)
    source.seek(0)
    return size, digest.hexdigest()


async def upload_media(
    session: AsyncSession,
    store: MediaStore,
    workspace_id: uuid.UUID,
    source: IO[bytes],
    *,
    filename: str | None,
    user_id: uuid.UUID | None,
) -> PostMedia:
    """Read, check and store an uploaded image or video.

    The file is read by Pillow or PyAV before it is stored; one neither reads is refused.
    What Meta would refuse in it (not JPEG, too large, wrong codec …) is kept as its problems.

    Raises:
        ValidationError: Not an image or video either library can read.
    """
    name = clean_filename(filename)
    size, sha256 = await asyncio.to_thread(_digest, source)
    facts = await asyncio.to_thread(inspect_media, source, size, name)
    unreadable = [p for p in facts.problems if p["code"] == "unsupported_media"]
    if unreadable:
        problem = {"field": "body.file", "message": unreadable[0]["message"], "type": "media"}
        msg = f"file: {unreadable[0]['message']}"
        raise ValidationError(msg, problems=[problem])
    stored_name = store.name_for(workspace_id, facts.content_type)
    url = await store.put(source, stored_name)
    media = PostMedia(
        workspace_id=workspace_id,
        kind=facts.kind,
        filename=name,
        stored_name=stored_name,
        storage_url=url,
        content_type=facts.content_type,
        size=size,
        sha256=sha256,
        width=facts.width,
        height=facts.height,
        duration_seconds=facts.duration_seconds,
        details=facts.details,
        problems=facts.problems,
        created_by=user_id,
    )
    session.add(media)
    try:
        await session.commit()
    except BaseException:
        await store.delete(url)
        raise
    return media


async def _account(
    session: AsyncSession, workspace_id: uuid.UUID, account_id: uuid.UUID
) -> InstagramAccount:
    account = await session.scalar(
        select(InstagramAccount).where(
            InstagramAccount.id == account_id, InstagramAccount.workspace_id == workspace_id
        )
    )
    if account is None:
        problem = {
            "field": "body.account_id",
            "message": "no Instagram account with this id is connected to the workspace",
            "type": "not_found",
        }
        msg = f"account_id: no Instagram account {account_id} in this workspace"
        raise ValidationError(msg, problems=[problem])
    return account


async def _media_rows(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID], field_name: str
) -> list[PostMedia]:
    found = {
        m.id: m
        for m in (
            await session.scalars(
                select(PostMedia).where(
                    PostMedia.id.in_(list(ids)), PostMedia.workspace_id == workspace_id
                )
            )
        ).all()
    }
    missing = [i for i in ids if i not in found]
    if missing:
        problems = [
            {
                "field": f"body.{field_name}",
                "message": f"media {i} is not an upload of this workspace",
                "type": "not_found",
            }
            for i in missing
        ]
        msg = f"{field_name}: {len(missing)} media not found in this workspace"
        raise ValidationError(msg, problems=problems)
    return [found[i] for i in ids]


async def check(session: AsyncSession, post: Post) -> list[dict[str, str]]:
    """Every problem Meta would have with the post as it stands; recorded on the post."""
    ids = [uuid.UUID(str(i)) for i in post.media_ids]
    media = await _media_rows(session, post.workspace_id, ids, "media_ids")
    cover = (
        (await _media_rows(session, post.workspace_id, [post.cover_media_id], "cover_media_id"))[0]
        if post.cover_media_id
        else None
    )
    problems = post_problems(
        PostType(post.type),
        caption=post.caption,
        alt_text=post.alt_text,
        collaborators=post.collaborators,
        media=media,
        cover=cover,
    )
    account = await session.get(InstagramAccount, post.account_id)
    if account is not None and account.mode != "live":
        problems.append(
            {
                "field": "account_id",
                "code": "account_sandboxed",
                "message": f"@{account.username} is in sandbox mode, which never posts; "
                "switch it to live under Instagram accounts",
            }
        )
    post.problems = problems
    return problems


async def create(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    fields: PostFields,
    *,
    user_id: uuid.UUID | None,
    idempotency_key: str | None = None,
) -> tuple[Post, bool]:
    """Write a draft post and check it; a post made before under ``idempotency_key`` is
    answered instead of a second one.

    Returns:
        The post, and whether it was created now.

    Raises:
        ValidationError: The account or a media id is not the workspace's.
    """
    if idempotency_key is not None:
        existing = await session.scalar(select(Post).where(Post.idempotency_key == idempotency_key))
        if existing is not None and existing.workspace_id == workspace_id:
            return existing, False
    await _account(session, workspace_id, fields.account_id)
    post = Post(
        workspace_id=workspace_id,
        account_id=fields.account_id,
        type=fields.type,
        caption=fields.caption,
        alt_text=fields.alt_text,
        collaborators=list(fields.collaborators),
        media_ids=[str(i) for i in fields.media_ids],
        cover_media_id=fields.cover_media_id,
        status=PostStatus.DRAFT,
        idempotency_key=idempotency_key,
        created_by=user_id,
    )
    session.add(post)
    await check(session, post)
    await session.commit()
    return post, True


async def update(session: AsyncSession, post: Post, changes: dict[str, Any]) -> Post:
    """Change a draft or scheduled post and check it again; a scheduled post that now has
    problems goes back to draft (its run is cancelled).

    Raises:
        ConflictError: The post is publishing or already published.
        ValidationError: The account or a media id is not the workspace's.
    """
    if post.status in (PostStatus.PUBLISHING, PostStatus.PUBLISHED):
        msg = f"post {post.id} is {post.status}; it can no longer be changed"
        raise ConflictError(msg, code="post_not_editable")
    if "account_id" in changes:
        await _account(session, post.workspace_id, changes["account_id"])
    for name, value in changes.items():
        if name == "media_ids":
            value = [str(i) for i in value]
        setattr(post, name, value)
    problems = await check(session, post)
    if post.status == PostStatus.FAILED:
        post.status = PostStatus.DRAFT
    if problems and post.status == PostStatus.SCHEDULED:
        post.status = PostStatus.DRAFT
        await _cancel_run(post)
    await session.commit()
    return post


async def schedule(session: AsyncSession, db: Database, post: Post, at: datetime) -> Post:
    """Schedule (or reschedule) a post: checked first, then a Prefect run at ``at``.

    Raises:
        ConflictError: The post is publishing or published.
        ValidationError: ``at`` is too far in the past or future, or the post has problems
            (each listed).
    """
    if post.status in (PostStatus.PUBLISHING, PostStatus.PUBLISHED):
        msg = f"post {post.id} is {post.status}; it can no longer be scheduled"
        raise ConflictError(msg, code="post_not_schedulable")
    now = utcnow()
    if at < now - PAST_TOLERANCE or at > now + HORIZON:
        problem = {
            "field": "body.scheduled_at",
            "message": "must be between now and 400 days ahead",
            "type": "value_error",
        }
        msg = f"scheduled_at: {at.isoformat()} is not between now and 400 days ahead"
        raise ValidationError(msg, problems=[problem])
    problems = await check(session, post)
    if problems:
        await session.commit()
        listed = [
            {"field": p["field"], "message": p["message"], "type": p["code"]} for p in problems
        ]
        msg = "the post cannot be scheduled: " + "; ".join(p["message"] for p in problems)
        raise ValidationError(msg, problems=listed)
    old_run = post.prefect_flow_run_id
    post.scheduled_at = at
    post.status = PostStatus.SCHEDULED
    post.next_attempt_at = None
    post.waiting_reason = None
    post.error = None
    post.error_code = None
    post.attempts = 0
    await session.commit()
    await _cancel_run_id(old_run)
    try:
        await schedule_run_at(db, post.id, post.workspace_id, at)
    except Exception as exc:
        # the post is scheduled all the same: a worker's sweep starts its run when it is due
        _log.warning(
            "creating the post's Prefect run failed", post_id=str(post.id), error=repr(exc)
        )
    await session.refresh(post)
    return post


async def cancel(session: AsyncSession, post: Post) -> Post:
    """Take a scheduled (or failed) post back to draft and cancel its run.

    Raises:
        ConflictError: The post is publishing or published.
    """
    if post.status in (PostStatus.PUBLISHING, PostStatus.PUBLISHED):
        msg = f"post {post.id} is {post.status}; it can no longer be cancelled"
        raise ConflictError(msg, code="post_not_cancellable")
    post.status = PostStatus.DRAFT
    post.next_attempt_at = None
    post.waiting_reason = None
    await session.commit()
    await _cancel_run(post)
    return post


async def delete(session: AsyncSession, post: Post) -> None:
    """Delete a post that is not being published (its media stay in the library).

    Raises:
        ConflictError: The post is publishing right now.
    """
    if post.status == PostStatus.PUBLISHING:
        msg = f"post {post.id} is publishing; wait until it is published or failed"
        raise ConflictError(msg, code="post_publishing")
    run = post.prefect_flow_run_id
    await session.delete(post)
    await session.commit()
    await _cancel_run_id(run)


async def list_posts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    start: datetime | None,
    end: datetime | None,
    account_id: uuid.UUID | None,
    status: PostStatus | None,
    limit: int,
    offset: int,
) -> tuple[list[Post], int]:
    """The workspace's posts in a date range (by scheduled time; drafts without one are
    listed when no range is given), oldest first."""
    where = [Post.workspace_id == workspace_id]
    if start is not None:
        where.append(Post.scheduled_at >= start)
    if end is not None:
        where.append(Post.scheduled_at < end)
    if account_id is not None:
        where.append(Post.account_id == account_id)
    if status is not None:
        where.append(Post.status == status)
    total = await session.scalar(select(func.count()).select_from(Post).where(*where))
    rows = (
        await session.scalars(
            select(Post)
            .where(*where)
            .order_by(Post.scheduled_at.is_(None), Post.scheduled_at, Post.created_at, Post.id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return list(rows), int(total or 0)


async def _cancel_run(post: Post) -> None:
    await _cancel_run_id(post.prefect_flow_run_id)


async def _cancel_run_id(run_id: uuid.UUID | None) -> None:
    try:
        await cancel_run(run_id)
    except Exception as exc:
        # a stale run finds the post unclaimable and does nothing
        _log.warning("cancelling a post's Prefect run failed", error=repr(exc))
