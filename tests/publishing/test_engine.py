"""The publishing engine against the Graph API emulator, on SQLite and PostgreSQL: containers
recorded before publishing, polling, the quota read live and never exceeded, Meta's refusals
in words, and resuming what an attempt left without a second post."""

from __future__ import annotations

from sqlalchemy import update

from socialflow.core.db import Database, utcnow
from socialflow.publishing import Post, PostStatus, PostType, Publisher, PublishingContext
from tests.fixtures.media import jpeg, mp4
from tests.publishing.conftest import Env


async def test_a_carousel_is_published_once_with_its_containers_recorded(env: Env) -> None:
    media = [await env.upload(jpeg(1080, 1080 + n * 100)) for n in range(3)]
    post_id = await env.post(PostType.CAROUSEL, media, caption="Three #new")
    env.control("containers", ready_after=2)
    outcome = await Publisher(env.context).publish(post_id)
    assert outcome.status == "published", outcome
    post = await env.read(post_id)
    on_meta = env.media_on_meta()
    assert len(on_meta) == 1
    assert post.ig_media_id == on_meta[0]["id"] and post.permalink == on_meta[0]["permalink"]
    assert [c["role"] for c in post.containers] == ["child", "child", "child", "parent"]
    assert on_meta[0]["container_id"] == post.containers[-1]["id"]
    assert on_meta[0]["caption"] == "Three #new"
    assert post.published_at is not None and post.claimed_at is None
    # the quota was read before anything was created
    calls = [c["path"].split("/")[-1] for c in env.emulator.calls()]
    assert calls.index("content_publishing_limit") < calls.index("media")
    # a second attempt finds it published and calls nothing
    before = len(env.emulator.calls())
    again = await Publisher(env.context).publish(post_id)
    assert again.status == "published" and len(env.emulator.calls()) == before


async def test_a_reel_and_a_story(env: Env) -> None:
    video = await env.upload(mp4(3.5), "clip.mp4")
    reel = await env.post(PostType.REEL, [video], caption="Reel")
    story = await env.post(PostType.STORY, [await env.upload(jpeg(1080, 1920))], caption="")
    assert (await Publisher(env.context).publish(reel)).status == "published"
    assert (await Publisher(env.context).publish(story)).status == "published"
    kinds = sorted((m["media_type"], m["media_product_type"]) for m in env.media_on_meta())
    assert kinds == [("IMAGE", "STORY"), ("VIDEO", "REELS")]
    created = env.containers_made()
    assert {c.get("media_type") for c in created} == {"REELS", "STORIES"}


async def test_the_quota_is_read_live_and_a_full_one_makes_the_post_wait(env: Env) -> None:
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())])
    env.control("quota", ig_user_id=env.ig_user_id, total=3, used=3)
    outcome = await Publisher(env.context).publish(post_id)
    post = await env.read(post_id)
    assert outcome.status == "scheduled"
    assert post.waiting_reason and "publishing limit is reached (3 of 3" in post.waiting_reason
    assert post.next_attempt_at is not None and post.next_attempt_at > utcnow()
    assert post.attempts == 0, "waiting for the quota is not a failed attempt"
    assert env.media_on_meta() == [] and env.containers_made() == []
    # not retried before its time: a run now finds nothing to do
    assert (await Publisher(env.context).publish(post_id)).status == "scheduled"
    assert len(env.emulator.calls("content_publishing_limit")) == 1


async def test_meta_refusals_are_kept_in_words(env: Env) -> None:
    post_id = await env.post(PostType.REEL, [await env.upload(mp4(3.5), "clip.mp4")])
    env.control("containers", ready_after=0, outcome="ERROR", error_subcode=2207026)
    outcome = await Publisher(env.context).publish(post_id)
    post = await env.read(post_id)
    assert outcome.status == "failed"
    assert post.error_code == "video_format"
    assert post.error and "MP4 or MOV" in post.error
    assert env.media_on_meta() == []


async def test_media_publish_quota_race_and_2207008_retries(env: Env) -> None:
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())])
    # Meta's 2207008 twice, then the call goes through: retried as Meta advises
    env.control(
        "fail", path_contains="media_publish", code=24, subcode=2207008, status=400, count=2
    )
    outcome = await Publisher(env.context).publish(post_id)
    assert outcome.status == "published", outcome
    assert len(env.media_on_meta()) == 1
    # the quota filled between the check and the call: the post waits, nothing is repeated
    second = await env.post(PostType.IMAGE, [await env.upload(jpeg())])
    env.control("fail", path_contains="media_publish", code=9, subcode=2207042, status=400)
    waiting = await Publisher(env.context).publish(second)
    post = await env.read(second)
    assert waiting.status == "scheduled" and post.publish_started_at is None
    assert post.waiting_reason and "publishing limit" in post.waiting_reason
    assert len(env.media_on_meta()) == 1


async def test_resume_after_publish_without_record_finds_the_post(env: Env) -> None:
    """An attempt that died after Meta published and before recording it: the next one sees
    the container PUBLISHED and records the media it made, publishing nothing."""
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())], caption="Once")
    first = Publisher(env.context)
    held = await first._claim(post_id)
    assert held is not None
    # play the dead attempt's steps by hand up to the publish call
    from socialflow.publishing._engine import _Attempt

    attempt = _Attempt(first, held)
    post, account, media, cover = await attempt._load()
    attempt.post = post
    client = await attempt._client(account)
    container = await attempt._containers(client, post, media, cover, [])
    await first.write(held, {"publish_started_at": utcnow()})
    await client.request(
        "POST", f"{env.ig_user_id}/media_publish", json={"creation_id": container}, call="x"
    )
    await client.aclose()
    await env.lapse(post_id)
    outcome = await Publisher(env.context).publish(post_id)
    assert outcome.status == "published"
    on_meta = env.media_on_meta()
    assert len(on_meta) == 1 and outcome.ig_media_id == on_meta[0]["id"]
    assert outcome.permalink == on_meta[0]["permalink"]
    assert len(env.emulator.calls("media_publish")) == 1


async def test_an_attempt_never_takes_a_post_held_by_another(env: Env) -> None:
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())])
    first = Publisher(env.context)
    assert await first._claim(post_id) is not None
    outcome = await Publisher(env.context).publish(post_id)
    assert outcome.status == "publishing"
    assert env.emulator.calls() == []


async def test_given_up_after_max_attempts(db: Database, env: Env) -> None:
    post_id = await env.post(PostType.IMAGE, [await env.upload(jpeg())])
    limit = env.settings.publishing.max_attempts
    async with db.sessionmaker() as session:
        await session.execute(
            update(Post)
            .where(Post.id == post_id)
            .values(status=PostStatus.PUBLISHING, attempts=limit, claimed_at=utcnow())
        )
        await session.commit()
    await env.lapse(post_id)
    outcome = await Publisher(env.context).publish(post_id)
    assert outcome.status == "failed" and outcome.reason and "gave up" in outcome.reason


async def test_meta_fetches_the_media_by_its_signed_link(env: Env) -> None:
    """The app serves the file at a signed, expiring link and the emulator, like Meta, fetches
    it while creating the container."""
    from socialflow.api.app import create_app
    from tests.fixtures.asgi_server import serve_app

    env.control("containers", fetch_media=True)
    image = jpeg(1080, 1350)
    post_id = await env.post(PostType.IMAGE, [await env.upload(image)])
    with serve_app(create_app(env.settings)) as server:
        settings = env.settings.model_copy(
            update={
                "publishing": env.settings.publishing.model_copy(
                    update={"media_base_url": server.url}
                )
            }
        )
        context = PublishingContext(
            settings=settings, db=env.db, keys=env.context.keys, sleep=env.context.sleep
        )
        outcome = await Publisher(context).publish(post_id)
    assert outcome.status == "published", outcome
    fetched = env.emulator.state.publishing.fetched
    assert len(fetched) == 1 and fetched[0].startswith(f"{server.url}/api/publishing/media/")
    assert "sig=" in fetched[0] and "expires=" in fetched[0]
