"""What Meta would refuse, found before a post is scheduled: caption limits, and media read
with maintained libraries (Pillow for images, PyAV, FFmpeg's bindings, for videos).

Every check returns problems, ``{"field", "code", "message"}``, all of them at once, so a
post shows each thing to fix. Limits are Meta's (PUBLISHING_MESSAGING.md A2-A3): captions of
2,200 characters, 30 hashtags and 20 @ tags; JPEG images up to 8 MiB with an aspect ratio
from 4:5 to 1.91:1 on the feed; MP4 or MOV videos in H.264 or HEVC, 4:2:0, 23-60 frames a
second, at most 1920 pixels wide, AAC audio up to 48 kHz; reels 3 s-15 min and 300 MB,
stories 3-60 s and 100 MB; carousels of 2-10 items; at most 3 collaborators, none on stories;
alt text up to 1,000 characters on images only.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import IO, Any

from socialflow.publishing._models import MediaKind, PostType

__all__ = [
    "CAPTION_MAX",
    "HASHTAGS_MAX",
    "MENTIONS_MAX",
    "MediaFacts",
    "Problem",
    "caption_problems",
    "inspect_media",
    "post_problems",
]

CAPTION_MAX = 2200
HASHTAGS_MAX = 30
MENTIONS_MAX = 20
ALT_TEXT_MAX = 1000
COLLABORATORS_MAX = 3
#: aspect ratios (width / height) Meta accepts on the feed
FEED_MIN_RATIO, FEED_MAX_RATIO = 0.8, 1.91
#: the most pixels decoded from one image; more is a decompression bomb, not a photo
MAX_PIXELS = 40_000_000
VIDEO_CODECS = frozenset({"h264", "hevc"})
_HASHTAG = re.compile(r"(?<![\w#])#\w+")
_MENTION = re.compile(r"(?<![\w@])@[\w.]+")
_USERNAME = re.compile(r"^[A-Za-z0-9._]{1,30}$")

Problem = dict[str, str]


def _problem(field_name: str, code: str, message: str) -> Problem:
    return {"field": field_name, "code": code, "message": message}


@dataclass
class MediaFacts:
    """What an upload is, as the libraries read it, and what is wrong with it in itself."""

    kind: MediaKind
    content_type: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def caption_problems(caption: str, *, field_name: str = "caption") -> list[Problem]:
    """Meta's caption limits: 2,200 characters, 30 hashtags, 20 @ tags."""
    problems = []
    if len(caption) > CAPTION_MAX:
        problems.append(
            _problem(
                field_name,
                "caption_too_long",
                f"the caption is {len(caption)} characters; Instagram allows {CAPTION_MAX}",
            )
        )
    hashtags = len(_HASHTAG.findall(caption))
    if hashtags > HASHTAGS_MAX:
        problems.append(
            _problem(
                field_name,
                "too_many_hashtags",
                f"the caption has {hashtags} hashtags; Instagram allows {HASHTAGS_MAX}",
            )
        )
    mentions = len(_MENTION.findall(caption))
    if mentions > MENTIONS_MAX:
        problems.append(
            _problem(
                field_name,
                "too_many_mentions",
                f"the caption has {mentions} @ tags; Instagram allows {MENTIONS_MAX}",
            )
        )
    return problems


def inspect_media(source: IO[bytes], size: int, filename: str) -> MediaFacts:
    """Read an uploaded file: an image through Pillow, else a video through PyAV.

    Args:
        source: The file, at any position (read from the start).
        size: Its size in bytes.
        filename: The name it was uploaded under (only to report it).

    Returns:
        What it is and what Meta would refuse in it whatever the post; a file neither library
        reads is one problem, ``unsupported_media``.
    """
    source.seek(0)
    head = source.read(16)
    source.seek(0)
    if head.startswith(b"\xff\xd8\xff") or head.startswith(b"\x89PNG") or head[:4] == b"RIFF":
        return _inspect_image(source, size)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"):
        return _inspect_video(source, size)
    try:
        return _inspect_image(source, size, strict=True)
    except _NotAnImage:
        source.seek(0)
    message = (
        f"{filename!r} is neither a JPEG image nor an MP4/MOV video; Instagram publishes JPEG "
        "images and MP4 or MOV videos"
    )
    return MediaFacts(
        kind=MediaKind.IMAGE,
        content_type="application/octet-stream",
        problems=[_problem("file", "unsupported_media", message)],
    )


class _NotAnImage(Exception):
    pass


def _inspect_image(source: IO[bytes], size: int, *, strict: bool = False) -> MediaFacts:
    from PIL import Image, UnidentifiedImageError

    facts = MediaFacts(kind=MediaKind.IMAGE, content_type="image/jpeg")
    try:
        with warnings.catch_warnings():
            # Pillow warns past MAX_IMAGE_PIXELS and raises past twice that; both are refused
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    msg = f"{width}x{height} pixels"
                    raise Image.DecompressionBombError(msg)
                image_format = image.format or ""
                mode = image.mode
                image.load()  # decodes every pixel: a truncated or corrupt file fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        facts.problems.append(
            _problem(
                "file",
                "image_too_many_pixels",
                f"the image has too many pixels ({exc}); at most {MAX_PIXELS:,} are read "
                "(Instagram scales images to 1440 pixels wide)",
            )
        )
        return facts
    except UnidentifiedImageError as exc:
        if strict:
            raise _NotAnImage from exc
        facts.problems.append(_problem("file", "image_unreadable", "the image cannot be read"))
        return facts
    except Exception as exc:
        # Pillow's decoders raise OSError, SyntaxError, ValueError and more on bad input
        facts.problems.append(
            _problem("file", "image_unreadable", f"the image is damaged or truncated ({exc})")
        )
        return facts
    facts.width, facts.height = width, height
    facts.details = {"format": image_format, "mode": mode}
    if image_format != "JPEG":
        facts.content_type = f"image/{image_format.lower() or 'unknown'}"
        facts.problems.append(
            _problem(
                "file",
                "image_not_jpeg",
                f"the image is {image_format or 'of an unknown format'}; Instagram publishes "
                "JPEG images only (MPO and JPS are refused too): convert it to JPEG",
            )
        )
    if mode not in ("RGB", "L"):
        facts.problems.append(
            _problem(
                "file",
                "image_not_srgb",
                f"the image is in {mode} colours; Instagram expects sRGB: convert it to RGB",
            )
        )
    if size > 8 * 1024 * 1024:
        facts.problems.append(
            _problem(
                "file",
                "image_too_large",
                f"the image is {size:,} bytes; Instagram accepts at most 8 MiB (8,388,608 bytes)",
            )
        )
    return facts


def _inspect_video(source: IO[bytes], size: int) -> MediaFacts:
    import av

    facts = MediaFacts(kind=MediaKind.VIDEO, content_type="video/mp4")
    try:
        with av.open(source, mode="r") as container:
            format_name = container.format.name
            duration = (container.duration or 0) / 1_000_000 if container.duration else None
            videos = list(container.streams.video)
            audios = list(container.streams.audio)
            video = videos[0] if videos else None
            details: dict[str, Any] = {"container": format_name, "size": size}
            if video is not None:
                rate = video.average_rate or video.guessed_rate
                details |= {
                    "video_codec": video.codec_context.name,
                    "pixel_format": video.codec_context.pix_fmt,
                    "fps": float(Fraction(rate)) if rate else None,
                }
                facts.width = video.codec_context.width
                facts.height = video.codec_context.height
                if duration is None and video.duration and video.time_base:
                    duration = float(video.duration * video.time_base)
            if audios:
                audio = audios[0].codec_context
                details |= {
                    "audio_codec": audio.name,
                    "sample_rate": audio.sample_rate,
                    "channels": audio.channels,
                }
    except Exception as exc:  # FFmpeg's errors, and what a malformed header makes PyAV raise
        facts.problems.append(
            _problem("file", "video_unreadable", f"the video cannot be read ({exc})")
        )
        return facts
    facts.duration_seconds = duration
    facts.details = details
    problems = facts.problems
    if "mp4" not in format_name and "mov" not in format_name:
        problems.append(
            _problem("file", "video_container", f"the video is {format_name}; use MP4 or MOV")
        )
    if video is None:
        problems.append(_problem("file", "video_missing", "the file has no video stream"))
        return facts
    codec = details.get("video_codec")
    if codec not in VIDEO_CODECS:
        problems.append(
            _problem(
                "file", "video_codec", f"the video codec is {codec}; Instagram takes H.264 or HEVC"
            )
        )
    if details.get("pixel_format") not in ("yuv420p", "yuvj420p", None):
        problems.append(
            _problem(
                "file",
                "video_chroma",
                f"the pixel format is {details.get('pixel_format')}; Instagram takes 4:2:0 "
                "(yuv420p)",
            )
        )
    fps = details.get("fps")
    if fps is not None and not 23 <= fps <= 60.5:
        problems.append(
            _problem(
                "file", "video_frame_rate", f"the video runs at {fps:g} fps; Instagram takes 23-60"
            )
        )
    if facts.width and facts.width > 1920:
        problems.append(
            _problem(
                "file",
                "video_too_wide",
                f"the video is {facts.width} pixels wide; Instagram takes at most 1920",
            )
        )
    if "audio_codec" in details:
        if details["audio_codec"] != "aac":
            problems.append(
                _problem(
                    "file",
                    "audio_codec",
                    f"the audio codec is {details['audio_codec']}; Instagram takes AAC",
                )
            )
        if (details.get("sample_rate") or 0) > 48_000:
            problems.append(
                _problem(
                    "file",
                    "audio_sample_rate",
                    f"the audio is sampled at {details['sample_rate']} Hz; at most 48 kHz",
                )
            )
        if (details.get("channels") or 0) > 2:
            problems.append(_problem("file", "audio_channels", "the audio must be mono or stereo"))
    return facts


def _ratio_text(width: int, height: int) -> str:
    return f"{width}x{height} ({width / height:.2f}:1)"


def _media_rules(
    post_type: PostType, index: int, media: Any, *, carousel_item: bool
) -> list[Problem]:
    """What a post of ``post_type`` refuses in one of its media (a ``PostMedia`` row)."""
    where = f"media_ids[{index}]"
    problems: list[Problem] = [{**p, "field": where} for p in (media.problems or [])]
    kind, width, height = media.kind, media.width, media.height
    duration = media.duration_seconds
    if post_type == PostType.IMAGE and kind != MediaKind.IMAGE:
        problems.append(_problem(where, "not_an_image", "an image post takes one JPEG image"))
    if post_type == PostType.REEL and kind != MediaKind.VIDEO:
        problems.append(_problem(where, "not_a_video", "a reel takes one MP4 or MOV video"))
    feed_image = kind == MediaKind.IMAGE and (post_type == PostType.IMAGE or carousel_item)
    if feed_image and width and height:
        ratio = width / height
        if not FEED_MIN_RATIO - 0.005 <= ratio <= FEED_MAX_RATIO + 0.005:
            problems.append(
                _problem(
                    where,
                    "aspect_ratio",
                    f"the image is {_ratio_text(width, height)}; Instagram's feed takes aspect "
                    "ratios from 4:5 (0.8:1) to 1.91:1: crop it",
                )
            )
    if kind == MediaKind.VIDEO:
        limits = {
            PostType.REEL: (3.0, 900.0, 300 * 1024 * 1024, 0.01),
            PostType.STORY: (3.0, 60.0, 100 * 1024 * 1024, 0.1),
            PostType.CAROUSEL: (3.0, 900.0, 300 * 1024 * 1024, 0.01),
        }.get(post_type)
        if limits is not None:
            shortest, longest, largest, min_ratio = limits
            if duration is not None and not shortest <= duration <= longest:
                problems.append(
                    _problem(
                        where,
                        "video_duration",
                        f"the video lasts {duration:.1f} s; a {post_type.value} takes "
                        f"{shortest:g} s to {longest:g} s",
                    )
                )
            if media.size > largest:
                problems.append(
                    _problem(
                        where,
                        "video_too_large",
                        f"the video is {media.size:,} bytes; a {post_type.value} takes at most "
                        f"{largest:,}",
                    )
                )
            if width and height and not min_ratio <= width / height <= 10:
                problems.append(
                    _problem(
                        where,
                        "aspect_ratio",
                        f"the video is {_ratio_text(width, height)}; Instagram takes "
                        f"{min_ratio:g}:1 to 10:1",
                    )
                )
    return problems


def post_problems(
    post_type: PostType,
    *,
    caption: str,
    alt_text: str,
    collaborators: Sequence[str],
    media: Sequence[Any],
    cover: Any | None,
) -> list[Problem]:
    """Everything Meta would refuse in a post, each problem with its field.

    Args:
        post_type: image, carousel, reel or story.
        caption: The caption.
        alt_text: Alt text (image posts only).
        collaborators: Usernames invited as collaborators.
        media: Its ``PostMedia`` rows in order.
        cover: The reel's cover image, if any.
    """
    problems = caption_problems(caption)
    count = len(media)
    if post_type == PostType.CAROUSEL:
        if not 2 <= count <= 10:
            problems.append(
                _problem(
                    "media_ids", "carousel_size", f"a carousel takes 2 to 10 items; it has {count}"
                )
            )
    elif count != 1:
        problems.append(
            _problem(
                "media_ids",
                "media_count",
                f"a{'n' if post_type == PostType.IMAGE else ''} {post_type.value} takes exactly "
                f"one file; it has {count}",
            )
        )
    for index, item in enumerate(media):
        problems += _media_rules(
            post_type, index, item, carousel_item=post_type == PostType.CAROUSEL
        )
    if cover is not None:
        if post_type != PostType.REEL:
            problems.append(_problem("cover_media_id", "cover_not_reel", "only reels take a cover"))
        elif cover.kind != MediaKind.IMAGE or (cover.problems or []):
            problems.append(
                _problem(
                    "cover_media_id",
                    "cover_invalid",
                    "the cover must be a JPEG image of at most 8 MiB",
                )
            )
    if alt_text:
        if len(alt_text) > ALT_TEXT_MAX:
            problems.append(
                _problem(
                    "alt_text",
                    "alt_text_too_long",
                    f"alt text is {len(alt_text)} characters; Instagram allows {ALT_TEXT_MAX}",
                )
            )
        if post_type in (PostType.REEL, PostType.STORY):
            problems.append(
                _problem("alt_text", "alt_text_not_allowed", "reels and stories take no alt text")
            )
    if collaborators:
        if post_type == PostType.STORY:
            problems.append(
                _problem("collaborators", "collaborators_story", "stories take no collaborators")
            )
        if len(collaborators) > COLLABORATORS_MAX:
            problems.append(
                _problem(
                    "collaborators",
                    "too_many_collaborators",
                    f"{len(collaborators)} collaborators; Instagram allows {COLLABORATORS_MAX}",
                )
            )
        for name in collaborators:
            if not _USERNAME.match(name.removeprefix("@")):
                problems.append(
                    _problem(
                        "collaborators",
                        "collaborator_invalid",
                        f"{name[:40]!r} is not an Instagram username (letters, digits, . and _)",
                    )
                )
    if post_type == PostType.STORY and caption:
        problems.append(_problem("caption", "caption_story", "stories take no caption"))
    return problems
