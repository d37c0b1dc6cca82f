"""Meta's limits found before scheduling: captions, images read by Pillow, videos read by PyAV,
the rules of each post type; and the 2207xxx table's decisions."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import pytest

from socialflow.publishing import (
    MediaKind,
    PostType,
    caption_problems,
    inspect_media,
    post_problems,
    verdict_for,
)
from tests.fixtures.media import jpeg, mp4, png


def facts(data: bytes, name: str = "upload") -> Any:
    return inspect_media(io.BytesIO(data), len(data), name)


def codes(problems: list[dict[str, str]]) -> list[str]:
    return [p["code"] for p in problems]


@dataclass
class Media:
    """A stored media row as the post rules read it."""

    kind: str
    width: int | None = 1080
    height: int | None = 1080
    duration_seconds: float | None = None
    size: int = 1000
    problems: list[dict[str, str]] = field(default_factory=list)


def test_caption_limits_count_characters_hashtags_and_mentions() -> None:
    assert caption_problems("A fine day #sun @friend") == []
    assert codes(caption_problems("x" * 2200)) == []
    assert codes(caption_problems("x" * 2201)) == ["caption_too_long"]
    thirty = " ".join(f"#t{n}" for n in range(30))
    assert caption_problems(thirty) == []
    assert codes(caption_problems(thirty + " #one_more")) == ["too_many_hashtags"]
    mentions = " ".join(f"@user{n}" for n in range(21))
    assert codes(caption_problems(mentions)) == ["too_many_mentions"]
    # an email address and a URL fragment are neither mentions nor hashtags
    assert caption_problems("write to me@shop.com or see page#top " * 30) == []


def test_images_are_read_by_pillow() -> None:
    good = facts(jpeg(1080, 1350))
    assert (good.kind, good.width, good.height, good.problems) == (MediaKind.IMAGE, 1080, 1350, [])
    assert codes(facts(png()).problems) == ["image_not_jpeg"]
    assert codes(facts(jpeg(600, 600, mode="CMYK")).problems) == ["image_not_srgb"]
    truncated = jpeg(800, 800)
    assert codes(facts(truncated[: len(truncated) // 2]).problems) == ["image_unreadable"]
    assert codes(facts(b"%PDF-1.7 not media at all" * 4, "a.pdf").problems) == ["unsupported_media"]


def png_claiming(width: int, height: int) -> bytes:
    """A one-pixel PNG whose header claims ``width`` x ``height`` pixels."""
    import struct
    import zlib

    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (1, 1)).save(out, "PNG")
    data = bytearray(out.getvalue())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    return bytes(data)


@pytest.mark.parametrize(
    "size",
    [
        (30_000, 30_000),  # past twice Pillow's own limit: it raises
        (9_600, 9_600),  # past Pillow's limit: it warns, which counts as refusal
        (7_000, 7_000),  # under Pillow's, over ours (40 MP)
    ],
)
def test_a_decompression_bomb_is_refused_unread(size: tuple[int, int]) -> None:
    bomb = png_claiming(*size)
    assert len(bomb) < 200
    assert codes(facts(bomb).problems) == ["image_too_many_pixels"]


def test_videos_are_read_by_pyav() -> None:
    reel = facts(mp4(3.5))
    assert reel.kind == MediaKind.VIDEO and reel.problems == []
    assert reel.details["video_codec"] == "h264" and reel.details["audio_codec"] == "aac"
    assert 3.4 < (reel.duration_seconds or 0) < 3.7
    old_codec = facts(mp4(1.0, codec="mpeg4", audio=False))
    assert codes(old_codec.problems) == ["video_codec"]
    slow = facts(mp4(1.0, fps=12, audio=False))
    assert "video_frame_rate" in codes(slow.problems)
    garbage = facts(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    assert codes(garbage.problems) == ["video_unreadable"]


def test_post_rules_per_type() -> None:
    image = Media(MediaKind.IMAGE)
    wide = Media(MediaKind.IMAGE, width=3000, height=1000)
    tall = Media(MediaKind.IMAGE, width=1080, height=1350)
    video = Media(MediaKind.VIDEO, width=1080, height=1920, duration_seconds=12.0)

    def check(post_type: PostType, media: list[Any], **extra: Any) -> list[str]:
        values: dict[str, Any] = {"caption": "", "alt_text": "", "collaborators": [], "cover": None}
        return codes(post_problems(post_type, media=media, **(values | extra)))

    assert check(PostType.IMAGE, [tall]) == []
    assert check(PostType.IMAGE, [wide]) == ["aspect_ratio"]
    problem = post_problems(
        PostType.IMAGE, caption="", alt_text="", collaborators=[], media=[wide], cover=None
    )[0]
    assert problem["field"] == "media_ids[0]" and "3000x1000" in problem["message"]
    assert check(PostType.CAROUSEL, [image]) == ["carousel_size"]
    assert check(PostType.CAROUSEL, [image] * 11) == ["carousel_size"]
    assert check(PostType.CAROUSEL, [image, tall, video]) == []
    assert check(PostType.REEL, [image]) == ["not_a_video"]
    assert check(PostType.REEL, [video], cover=image) == []
    assert check(PostType.IMAGE, [image], cover=image) == ["cover_not_reel"]
    short = Media(MediaKind.VIDEO, width=1080, height=1920, duration_seconds=2.0)
    assert check(PostType.REEL, [short]) == ["video_duration"]
    long_story = Media(MediaKind.VIDEO, width=1080, height=1920, duration_seconds=61.0)
    assert check(PostType.STORY, [long_story]) == ["video_duration"]
    assert check(PostType.STORY, [image], caption="hi", collaborators=["ann"]) == [
        "collaborators_story",
        "caption_story",
    ]
    assert check(PostType.IMAGE, [image], collaborators=["a", "b", "c", "d"]) == [
        "too_many_collaborators"
    ]
    assert check(PostType.IMAGE, [image], collaborators=["../etc", "<script>"]) == [
        "collaborator_invalid",
        "collaborator_invalid",
    ]
    assert check(PostType.IMAGE, [image], alt_text="x" * 1001) == ["alt_text_too_long"]
    assert check(PostType.REEL, [video], alt_text="a cat") == ["alt_text_not_allowed"]
    broken = Media(
        MediaKind.IMAGE, problems=[{"field": "file", "code": "image_not_jpeg", "message": "PNG"}]
    )
    assert post_problems(
        PostType.IMAGE, caption="", alt_text="", collaborators=[], media=[broken], cover=None
    ) == [{"field": "media_ids[0]", "code": "image_not_jpeg", "message": "PNG"}]


@pytest.mark.parametrize(
    ("code", "subcode", "decision"),
    [
        (24, 2207008, "retry_soon"),
        (9, 2207042, "quota"),
        (9, None, "quota"),
        (9007, 2207027, "not_ready"),
        (-2, 2207020, "recreate"),
        (9004, 2207052, "retry"),
        (25, 2207050, "fail"),
        (352, 2207026, "fail"),
        (36003, 2207009, "fail"),
        (-1, 2207001, "retry"),
        (100, 123, "fail"),
    ],
)
def test_meta_errors_map_to_a_decision_and_words(
    code: int, subcode: int | None, decision: str
) -> None:
    verdict = verdict_for(code, subcode, "Meta's message")
    assert verdict.decision == decision
    assert verdict.reason and verdict.code
    if decision == "retry_soon":
        assert 30 <= verdict.wait <= 120
