"""Meta's publishing errors (2207xxx), each mapped to a reason in words and a decision.

The table is Meta's error-code page as PUBLISHING_MESSAGING.md A8 quotes it. Decisions:

- ``retry``: passing on Meta's side; try the same step again after ``wait`` seconds.
- ``retry_soon``: 2207008, where Meta asks to "try again 1-2 times in the next 30 seconds to
  2 minutes" before creating a new container.
- ``recreate``: the container is gone or broken (expired, not found, failed upload); a new
  one is created. Safe: a container that was never published cannot make a second post.
- ``not_ready``: keep polling the container until it is FINISHED.
- ``quota``: the account reached its publishing limit; wait until the window frees a post,
  never retried before.
- ``fail``: the post or the account must be changed by a person; the reason says how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Decision", "Verdict", "verdict_for"]

Decision = Literal["retry", "retry_soon", "recreate", "not_ready", "quota", "fail"]


@dataclass(frozen=True)
class Verdict:
    """What to do about one refusal, and why, in words."""

    decision: Decision
    code: str
    reason: str
    wait: float = 0.0


_TABLE: dict[int, Verdict] = {
    2207001: Verdict("retry", "instagram_server_error", "Instagram had a server error", 60),
    2207003: Verdict(
        "retry", "media_download_timeout", "Instagram timed out downloading the media", 60
    ),
    2207004: Verdict(
        "fail", "image_too_large", "the image is larger than 8 MiB; upload a smaller JPEG"
    ),
    2207005: Verdict(
        "fail", "image_format", "Instagram does not support the image format; use a JPEG"
    ),
    2207006: Verdict(
        "recreate",
        "media_not_found",
        "Instagram cannot find the media container (expired, or the token lost permission)",
    ),
    2207008: Verdict(
        "retry_soon",
        "media_builder_expired",
        "Instagram's media builder does not exist yet or expired; retried within 2 minutes",
        30,
    ),
    2207009: Verdict(
        "fail",
        "aspect_ratio",
        "the aspect ratio is outside what Instagram accepts (4:5 to 1.91:1); crop the image",
    ),
    2207010: Verdict(
        "fail",
        "caption_limits",
        "the caption is too long (2,200 characters, 30 hashtags, 20 @ tags at most)",
    ),
    2207020: Verdict(
        "recreate", "media_expired", "the media container expired (24 hours); a new one is made"
    ),
    2207023: Verdict("fail", "media_type", "Instagram does not know this media type"),
    2207026: Verdict(
        "fail",
        "video_format",
        "Instagram does not support the video format; use MP4 or MOV with H.264 or HEVC",
    ),
    2207027: Verdict(
        "not_ready", "media_not_ready", "the media is not ready for publishing yet", 5
    ),
    2207028: Verdict("fail", "carousel_size", "a carousel takes 2 to 10 items"),
    2207032: Verdict("recreate", "create_media_failed", "Instagram failed to create the media"),
    2207040: Verdict("fail", "too_many_mentions", "the caption has more than 20 @ tags"),
    2207042: Verdict(
        "quota",
        "publishing_limit",
        "the account reached Instagram's limit of posts published through the API in 24 hours",
    ),
    2207050: Verdict(
        "fail",
        "account_restricted",
        "the Instagram account is inactive, checkpointed or restricted: open the Instagram app, "
        "resolve what it asks, then reschedule",
    ),
    2207051: Verdict(
        "fail",
        "suspected_spam",
        "Instagram restricted this activity as suspected spam; wait before posting again",
    ),
    2207052: Verdict(
        "retry",
        "media_not_fetched",
        "Instagram could not fetch the media from its URL: the media URL (publishing."
        "media_base_url or S3) must be reachable from the internet",
        120,
    ),
    2207053: Verdict(
        "recreate", "upload_failed", "an unknown error happened while uploading the video"
    ),
    2207057: Verdict("fail", "thumb_offset", "the thumbnail offset is outside the video"),
    2207089: Verdict(
        "fail", "carousel_item_alone", "a carousel item cannot be published on its own"
    ),
}
_BY_CODE: dict[int, Verdict] = {
    9: _TABLE[2207042],
    9004: _TABLE[2207052],
    9007: _TABLE[2207027],
}


def verdict_for(graph_code: int | None, subcode: int | None, message: str) -> Verdict:
    """The decision about a refusal of Meta, by subcode, else code.

    Args:
        graph_code: Meta's ``error.code``.
        subcode: Meta's ``error_subcode`` (or a container's ``status`` subcode).
        message: Meta's message, kept in the reason of unknown refusals.
    """
    if subcode is not None and subcode in _TABLE:
        return _TABLE[subcode]
    if graph_code is not None and graph_code in _BY_CODE:
        return _BY_CODE[graph_code]
    if graph_code in (-1, -2):
        return Verdict("retry", "instagram_error", f"Instagram failed: {message}", 60)
    return Verdict("fail", "instagram_refused", f"Instagram refused the post: {message}")
