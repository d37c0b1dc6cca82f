"""Post endpoints: the calendar's posts and media library, and the signed media links.

Viewers list and read; editors upload media and write, schedule, reschedule and cancel
posts; admins delete them. Every post and media id is looked up within the workspace of the
path, so another workspace's answers 404. ``GET /api/publishing/media/{id}`` needs no
session: the link's signature and expiry are its authorisation (Meta fetches it).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse

from socialflow.api.deps import (
    AdminMember,
    DatabaseDep,
    EditorMember,
    SessionDep,
    SettingsDep,
    ViewerMember,
)
from socialflow.api.errors import ErrorBody
from socialflow.api.knowledge import documents
from socialflow.api.posts.schemas import (
    MediaRead,
    Moment,
    PostCreate,
    PostPage,
    PostRead,
    PostSchedule,
    PostUpdate,
)
from socialflow.core.errors import NotFoundError
from socialflow.publishing import (
    MediaStore,
    PostFields,
    PostMedia,
    PostStatus,
    SignedUrlError,
    posts,
)

__all__ = ["MEDIA_UPLOAD_PATH", "media_router", "router"]

router = APIRouter(prefix="/workspaces/{workspace_id}/posts", tags=["posts"])
media_router = APIRouter(prefix="/publishing", tags=["posts"])

#: the upload route, for the body-size limit of the middleware (a regular expression)
MEDIA_UPLOAD_PATH = r"^/api/workspaces/[^/]+/posts/media/?$"

PostId = Annotated[uuid.UUID, Path(description="Post id.")]
MediaId = Annotated[uuid.UUID, Path(description="Media id.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=2_147_483_647, description="Items to skip.")]

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "title": "Body_upload_post_media",
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "title": "File",
                            "type": "string",
                            "format": "binary",
                            "description": "A JPEG image or an MP4/MOV video; read by content.",
                        }
                    },
                }
            }
        },
    }
}


def _read(post: object) -> PostRead:
    return PostRead.model_validate(post, from_attributes=True)


@router.post(
    "/media",
    status_code=201,
    name="upload_post_media",
    responses={413: {"model": ErrorBody, "description": "Larger than the upload limit."}},
    openapi_extra=_UPLOAD_BODY,
)
async def upload_post_media(
    member: EditorMember, session: SessionDep, settings: SettingsDep, request: Request
) -> MediaRead:
    """Upload an image or video to the workspace's media library (editor).

    It is read by Pillow or PyAV; what Instagram would refuse in it is listed in
    ``problems``. The body is read no further than ``publishing.max_video_bytes``.
    """
    file = await documents.receive_file(request, settings.publishing.max_video_bytes)
    try:
        media = await posts.upload_media(
            session,
            MediaStore(settings),
            member.workspace_id,
            file.file,
            filename=file.filename,
            user_id=member.user.id,
        )
    finally:
        await file.close()
    return MediaRead.model_validate(media, from_attributes=True)


@router.get("/media/{media_id}", name="get_post_media")
async def get_post_media(member: ViewerMember, media_id: MediaId, session: SessionDep) -> MediaRead:
    """One uploaded file with what was read from it and its problems."""
    media = await posts.get_media(session, member.workspace_id, media_id)
    return MediaRead.model_validate(media, from_attributes=True)


@router.get("", name="list_posts")
async def list_posts(
    member: ViewerMember,
    session: SessionDep,
    start: Annotated[
        Moment | None, Query(description="Scheduled at or after (ISO, with a time zone).")
    ] = None,
    end: Annotated[Moment | None, Query(description="Scheduled before (ISO).")] = None,
    account_id: Annotated[uuid.UUID | None, Query(description="Only this account.")] = None,
    status: Annotated[PostStatus | None, Query(description="Only this status.")] = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> PostPage:
    """The calendar: posts scheduled in a range (all posts, drafts too, without one)."""
    rows, total = await posts.list_posts(
        session,
        member.workspace_id,
        start=start,
        end=end,
        account_id=account_id,
        status=status,
        limit=limit,
        offset=offset,
    )
    return PostPage(items=[_read(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post("", status_code=201, name="create_post")
async def create_post(
    body: PostCreate, member: EditorMember, session: SessionDep, database: DatabaseDep
) -> PostRead:
    """Write a post (editor): a draft, scheduled at once when ``scheduled_at`` is given and
    nothing in it would be refused; otherwise a draft listing its problems."""
    fields = PostFields.model_validate(body.model_dump(exclude={"scheduled_at"}))
    post, _created = await posts.create(
        session, member.workspace_id, fields, user_id=member.user.id
    )
    if body.scheduled_at is not None and not post.problems:
        post = await posts.schedule(session, database, post, body.scheduled_at)
    return _read(post)


@router.get("/{post_id}", name="get_post")
async def get_post(member: ViewerMember, post_id: PostId, session: SessionDep) -> PostRead:
    """A post: its content, problems, status, Meta's reason when it failed, its permalink."""
    return _read(await posts.get(session, member.workspace_id, post_id))


@router.patch("/{post_id}", name="update_post")
async def update_post(
    body: PostUpdate, member: EditorMember, post_id: PostId, session: SessionDep
) -> PostRead:
    """Change a draft or scheduled post (editor); it is checked again."""
    post = await posts.get(session, member.workspace_id, post_id)
    # null means "unchanged" for every field but the cover, which null removes
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True).items()
        if v is not None or k == "cover_media_id"
    }
    return _read(await posts.update(session, post, changes))


@router.post("/{post_id}/schedule", name="schedule_post")
async def schedule_post(
    body: PostSchedule,
    member: EditorMember,
    post_id: PostId,
    session: SessionDep,
    database: DatabaseDep,
) -> PostRead:
    """Schedule or reschedule a post (editor); refused with every problem listed (422)."""
    post = await posts.get(session, member.workspace_id, post_id)
    return _read(await posts.schedule(session, database, post, body.scheduled_at))


@router.post("/{post_id}/cancel", name="cancel_post")
async def cancel_post(member: EditorMember, post_id: PostId, session: SessionDep) -> PostRead:
    """Take a scheduled post back to draft (editor); its Prefect run is cancelled."""
    post = await posts.get(session, member.workspace_id, post_id)
    return _read(await posts.cancel(session, post))


@router.delete("/{post_id}", status_code=204, name="delete_post")
async def delete_post(member: AdminMember, post_id: PostId, session: SessionDep) -> Response:
    """Delete a post that is not publishing right now (admin)."""
    post = await posts.get(session, member.workspace_id, post_id)
    await posts.delete(session, post)
    return Response(status_code=204)


@media_router.get("/media/{media_id}", name="fetch_signed_media", include_in_schema=True)
async def fetch_signed_media(
    media_id: MediaId,
    settings: SettingsDep,
    session: SessionDep,
    expires: Annotated[int, Query(ge=0, le=2**40, description="Unix time the link expires.")],
    sig: Annotated[str, Query(pattern="^[0-9a-f]{64}$", description="The link's HMAC (hex).")],
) -> FileResponse:
    """A post's file for Meta to fetch, by a signed link that expires (no session needed).

    A tampered, expired or unknown link answers 404, the same for all three.
    """
    store = MediaStore(settings)
    try:
        store.verify(media_id, expires, sig)
    except SignedUrlError as exc:
        msg = f"media link not valid: {exc}"
        raise NotFoundError(msg, code="media_link_invalid") from exc
    media = await session.get(PostMedia, media_id)
    path = store.local_path(media.storage_url) if media is not None else None
    if media is None or path is None or not path.is_file():
        msg = "media link not valid: no such file"
        raise NotFoundError(msg, code="media_link_invalid")
    return FileResponse(path, media_type=media.content_type)
