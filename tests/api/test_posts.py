"""The content calendar over HTTP: media uploads read by Pillow and PyAV, posts checked and
refused with the reason before scheduling, workspace isolation, signed media links, and (with
Prefect) scheduling, rescheduling and cancelling as Prefect runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from socialflow.api.app import create_app
from socialflow.api.auth.email import LogEmailSender
from socialflow.core.credentials import key_wrapper
from socialflow.publishing import MediaStore
from tests.api.conftest import Team, api_settings, make_team
from tests.fixtures.graph_emulator import connect_account
from tests.fixtures.media import jpeg, mp4, png


class Calendar:
    """The app, a team, an Instagram account in the team's workspace and one in another."""

    def __init__(self, client: httpx.AsyncClient, app: Any, team: Team) -> None:
        self.client, self.app, self.team = client, app, team
        self.base = f"/api/workspaces/{team.workspace_id}/posts"
        self.account_id = ""
        self.other_account_id = ""

    async def upload(
        self, data: bytes, filename: str = "photo.jpg", *, who: str = "editor"
    ) -> httpx.Response:
        return await self.client.post(
            f"{self.base}/media",
            files={"file": (filename, data, "application/octet-stream")},
            headers=self.team.by_role(who).headers,
        )

    async def media(self, data: bytes, filename: str = "photo.jpg") -> str:
        answer = await self.upload(data, filename)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def create(self, *, who: str = "editor", **body: Any) -> httpx.Response:
        body = {"account_id": self.account_id, "type": "image"} | body
        return await self.client.post(self.base, json=body, headers=self.team.by_role(who).headers)

    def headers(self, who: str = "editor") -> dict[str, str]:
        return self.team.by_role(who).headers


@pytest.fixture
async def calendar(db: Any, test_registry: Any, tmp_path: Path) -> AsyncIterator[Calendar]:
    settings = api_settings(
        db.url,
        data_dir=tmp_path,
        knowledge={"storage_url": str(tmp_path / "storage")},
        publishing={"max_video_bytes": 2_000_000},
    )
    app = create_app(settings, db=db, registry=test_registry, email=LogEmailSender())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            team = await make_team(client)
            cal = Calendar(client, app, team)
            runtime = SimpleNamespace(db=db, key_wrapper=lambda: key_wrapper(settings))
            ig = str(17_841_470_000_000_000 + int(uuid.uuid4().int % 10**9))
            account = await connect_account(
                runtime, ig_user_id=ig, workspace_id=uuid.UUID(team.workspace_id)
            )
            other = await connect_account(
                runtime, ig_user_id=ig, workspace_id=uuid.UUID(team.other_workspace_id)
            )
            cal.account_id, cal.other_account_id = str(account.id), str(other.id)
            yield cal


async def test_uploads_are_read_and_their_problems_listed(calendar: Calendar) -> None:
    good = await calendar.upload(jpeg(1080, 1350))
    assert good.status_code == 201, good.text
    body = good.json()
    assert (body["kind"], body["width"], body["height"], body["problems"]) == (
        "image",
        1080,
        1350,
        [],
    )
    as_png = (await calendar.upload(png(), "photo.png")).json()
    assert [p["code"] for p in as_png["problems"]] == ["image_not_jpeg"]
    video = (await calendar.upload(mp4(3.5), "clip.mp4")).json()
    assert video["kind"] == "video" and video["details"]["video_codec"] == "h264"
    assert 3.4 < video["duration_seconds"] < 3.7
    fetched = await calendar.client.get(
        f"{calendar.base}/media/{body['id']}", headers=calendar.headers("viewer")
    )
    assert fetched.status_code == 200 and fetched.json()["id"] == body["id"]


async def test_upload_abuse(calendar: Calendar, tmp_path: Path) -> None:
    # not an image or a video at all
    text = await calendar.upload(b"#!/bin/sh\nrm -rf /\n" * 20, "run.jpg")
    assert text.status_code == 422 and "neither a JPEG image nor an MP4" in text.text
    # a path in the name never reaches the storage path
    sneaky = await calendar.upload(jpeg(), "../../../etc/passwd.jpg")
    assert sneaky.status_code == 201, sneaky.text
    assert sneaky.json()["filename"] == "passwd.jpg"
    stored = [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    assert stored and all(p.resolve().is_relative_to(tmp_path / "storage") for p in stored)
    assert not (tmp_path / "etc").exists()
    # a decompression bomb: its header alone is refused, nothing decoded
    from tests.publishing.test_checks import png_claiming

    bomb = await calendar.upload(png_claiming(30_000, 30_000), "bomb.png")
    assert bomb.status_code == 201
    assert [p["code"] for p in bomb.json()["problems"]] == ["image_too_many_pixels"]
    # larger than the upload limit (2 MB here): refused, announced or not
    huge = await calendar.upload(b"\xff\xd8\xff" + b"0" * 2_100_000, "huge.jpg")
    assert huge.status_code == 413, huge.text
    # not multipart
    raw = await calendar.client.post(
        f"{calendar.base}/media", content=jpeg(), headers=calendar.headers()
    )
    assert raw.status_code == 422
    # viewers cannot upload
    assert (await calendar.upload(jpeg(), who="viewer")).status_code == 403


async def test_a_wide_image_is_refused_before_scheduling_with_the_reason(
    calendar: Calendar,
) -> None:
    wide = await calendar.media(jpeg(3000, 1000))
    created = await calendar.create(media_ids=[wide], caption="Too wide")
    assert created.status_code == 201, created.text
    post = created.json()
    assert post["status"] == "draft"
    assert [(p["field"], p["code"]) for p in post["problems"]] == [("media_ids[0]", "aspect_ratio")]
    refused = await calendar.client.post(
        f"{calendar.base}/{post['id']}/schedule",
        json={"scheduled_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        headers=calendar.headers(),
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()
    assert "4:5" in error["message"] and "1.91:1" in error["message"]
    assert error["details"]["problems"][0]["field"] == "media_ids[0]"
    # created with a time, it stays a draft that lists why
    at_once = await calendar.create(
        media_ids=[wide], scheduled_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    assert at_once.json()["status"] == "draft" and at_once.json()["problems"]


async def test_posts_are_written_checked_listed_and_deleted(calendar: Calendar) -> None:
    photo = await calendar.media(jpeg())
    created = await calendar.create(media_ids=[photo], caption="Hi", collaborators=["ann"])
    assert created.status_code == 201, created.text
    post_id = created.json()["id"]
    url = f"{calendar.base}/{post_id}"
    tags = " ".join(f"#t{n}" for n in range(31))
    patched = await calendar.client.patch(url, json={"caption": tags}, headers=calendar.headers())
    assert patched.status_code == 200, patched.text
    assert [p["code"] for p in patched.json()["problems"]] == ["too_many_hashtags"]
    listed = await calendar.client.get(calendar.base, headers=calendar.headers("viewer"))
    assert [p["id"] for p in listed.json()["items"]] == [post_id]
    carousel = await calendar.create(type="carousel", media_ids=[photo])
    assert [p["code"] for p in carousel.json()["problems"]] == ["carousel_size"]
    # bounds on the request itself answer 422 naming the field
    too_big = await calendar.create(media_ids=[photo], caption="x" * 10_001)
    assert too_big.status_code == 422 and "caption" in too_big.text
    unknown = await calendar.create(media_ids=[photo], kind="reel")
    assert unknown.status_code == 422
    naive = await calendar.client.post(
        f"{url}/schedule", json={"scheduled_at": "2030-01-01T09:00:00"}, headers=calendar.headers()
    )
    assert naive.status_code == 422 and "time zone" in naive.text
    # editors may not delete; admins may
    assert (await calendar.client.delete(url, headers=calendar.headers())).status_code == 403
    assert (await calendar.client.delete(url, headers=calendar.headers("admin"))).status_code == 204
    assert (await calendar.client.get(url, headers=calendar.headers())).status_code == 404


async def test_another_workspaces_ids_are_not_found(calendar: Calendar) -> None:
    photo = await calendar.media(jpeg())
    post_id = (await calendar.create(media_ids=[photo])).json()["id"]
    outsider = calendar.team.outsider.headers
    theirs = f"/api/workspaces/{calendar.team.other_workspace_id}/posts"
    # the outsider reaches this workspace's post through their own workspace: not found
    for method, path in (
        ("GET", f"{theirs}/{post_id}"),
        ("PATCH", f"{theirs}/{post_id}"),
        ("POST", f"{theirs}/{post_id}/cancel"),
        ("DELETE", f"{theirs}/{post_id}"),
        ("GET", f"{theirs}/media/{photo}"),
    ):
        answer = await calendar.client.request(
            method, path, json={} if method == "PATCH" else None, headers=outsider
        )
        assert answer.status_code == 404, f"{method} {path}: {answer.text}"
    # their own workspace cannot use this workspace's media, nor this one their account
    stolen = await calendar.client.post(
        theirs,
        json={"account_id": calendar.other_account_id, "type": "image", "media_ids": [photo]},
        headers=outsider,
    )
    assert stolen.status_code == 422 and "media_ids" in stolen.text
    foreign = await calendar.create(account_id=calendar.other_account_id, media_ids=[photo])
    assert foreign.status_code == 422 and "account_id" in foreign.text


async def test_signed_media_links(calendar: Calendar) -> None:
    image = jpeg(1080, 1350)
    media_id = uuid.UUID(await calendar.media(image))
    store = MediaStore(calendar.app.state.settings)
    url = store.public_url(media_id, "unused")
    path = url.split("://", 1)[1].split("/", 1)[1]
    fetched = await calendar.client.get(f"/{path}")  # no session: the signature is the key
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == image and fetched.headers["content-type"] == "image/jpeg"
    base = f"/api/publishing/media/{media_id}"
    expires = int(time.time()) + 600
    good_sig = store.signature(media_id, expires)
    assert (
        await calendar.client.get(f"{base}?expires={expires}&sig={good_sig}")
    ).status_code == 200
    tampered = good_sig[:-1] + ("0" if good_sig[-1] != "0" else "1")
    for query in (
        f"expires={expires}&sig={tampered}",  # tampered signature
        f"expires={expires + 1}&sig={good_sig}",  # tampered expiry
        f"expires={int(time.time()) - 5}&sig={store.signature(media_id, int(time.time()) - 5)}",
        f"expires={expires + 86_400 * 30}&sig={store.signature(media_id, expires + 86_400 * 30)}",
    ):
        answer = await calendar.client.get(f"{base}?{query}")
        assert answer.status_code == 404, query
        assert answer.json()["code"] == "media_link_invalid"
    other = uuid.uuid4()
    forged = await calendar.client.get(
        f"/api/publishing/media/{other}?expires={expires}&sig={good_sig}"
    )
    assert forged.status_code == 404
    missing = await calendar.client.get(f"{base}?expires={expires}")
    assert missing.status_code == 422
