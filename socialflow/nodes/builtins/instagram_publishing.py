"""Instagram publishing nodes: publish a post (the calendar's engine) and read insights.

Both go through ``ctx.publishing``. A published post's media id and permalink are the
node's output, so later nodes' templates read ``{{ nodes.<id>.post.permalink }}``.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import Field

from socialflow.core.errors import UserError
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port, PublishingService
from socialflow.nodes._template import Template

__all__ = ["InstagramInsightsNode", "InstagramPublishNode"]

_ACCOUNT = Field(
    default="",
    max_length=200,
    description="Instagram account id (ig_user_id) that posts; empty: the workspace's only one.",
)
MediaMetric = Literal[
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
]
AccountMetric = Literal[
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
]


def _default_media_metrics() -> list[MediaMetric]:
    return ["views", "reach", "likes", "comments", "saved", "shares"]


def _default_account_metrics() -> list[AccountMetric]:
    return ["views", "reach", "total_interactions"]


def _service(ctx: NodeContext) -> PublishingService:
    if ctx.publishing is None:
        msg = f"node {ctx.node_id!r}: publishing needs a run of a workspace flow"
        raise UserError(msg, code="publishing_unavailable")
    return ctx.publishing


class InstagramPublishNode(BaseNode):
    """Publishes a post to Instagram now, exactly once per run."""

    kind = "instagram.publish"
    title = "Publish to Instagram"
    description = (
        "Publishes an image, carousel, reel or story from the media library, with a caption "
        "(templates allowed, e.g. an LLM node's answer). Once per run: a retry resumes the "
        "same post. Outputs the media id and permalink."
    )
    category = "action"
    icon = "instagram"
    inputs: ClassVar[tuple[Port, ...]] = (Port(name="in"),)
    outputs: ClassVar[tuple[Port, ...]] = (
        Port(
            name="post",
            type="instagram.post",
            description="post_id, status, ig_media_id, permalink (sandboxed runs: problems).",
        ),
    )
    example_config: ClassVar[dict[str, Any]] = {
        "type": "image",
        "media_ids": ["00000000-0000-0000-0000-000000000000"],
        "caption": "{{ nodes.llm.text }}",
    }

    class Config(NodeConfig):
        account: Template = _ACCOUNT
        type: Literal["image", "carousel", "reel", "story"] = Field(
            default="image", description="image, carousel (2-10 items), reel or story."
        )
        media_ids: list[Template] = Field(
            min_length=1,
            max_length=10,
            description="Ids of uploaded media (the calendar's library), in order; templates "
            "allowed.",
        )
        cover_media_id: Template = Field(
            default="", max_length=200, description="A reel's cover image id (optional)."
        )
        caption: Template = Field(
            default="",
            max_length=10_000,
            description="Caption (Instagram: 2,200 characters, 30 hashtags, 20 @ tags); "
            "templates allowed.",
        )
        alt_text: Template = Field(
            default="", max_length=5_000, description="Alt text of an image (1,000 characters)."
        )
        collaborators: list[str] = Field(
            default_factory=list, max_length=3, description="Collaborator usernames (up to 3)."
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        from socialflow.publishing import PublishRequest

        cfg = self.config
        media: list[uuid.UUID] = []
        for n, template in enumerate(cfg.media_ids):
            media.append(_uuid(ctx, ctx.render_text(template, field_name=f"media_ids[{n}]"), n))
        cover_text = ctx.render_text(cfg.cover_media_id, field_name="cover_media_id")
        request = PublishRequest(
            node_id=ctx.node_id,
            account=ctx.render_text(cfg.account, field_name="account"),
            type=cfg.type,
            caption=ctx.render_text(cfg.caption, field_name="caption"),
            alt_text=ctx.render_text(cfg.alt_text, field_name="alt_text"),
            collaborators=list(cfg.collaborators),
            media_ids=media,
            cover_media_id=_uuid(ctx, cover_text, None) if cover_text else None,
        )
        result = await _service(ctx).publish(request)
        return {"post": result.model_dump(mode="json")}


def _uuid(ctx: NodeContext, value: str, index: int | None) -> uuid.UUID:
    where = "cover_media_id" if index is None else f"media_ids[{index}]"
    try:
        return uuid.UUID(value.strip())
    except ValueError as exc:
        msg = f"node {ctx.node_id!r} field {where!r}: {value[:60]!r} is not a media id"
        raise UserError(msg, code="invalid_config") from exc


class InstagramInsightsNode(BaseNode):
    """Reads Instagram insights of a published media or of the account."""

    kind = "instagram.insights"
    title = "Get insights"
    description = (
        "Reads the metrics Meta offers now (views, reach, likes, comments, saved, shares, "
        "total interactions, follows …) of a published media, or of the account for the day."
    )
    # an action: it needs Instagram, like the kinds that send
    category = "action"
    icon = "instagram"
    outputs: ClassVar[tuple[Port, ...]] = (
        Port(name="insights", type="instagram.insights", description="values: {metric: n}."),
    )
    example_config: ClassVar[dict[str, Any]] = {
        "target": "media",
        "media_id": "{{ nodes.publish.post.ig_media_id }}",
        "media_metrics": ["views", "reach"],
    }

    class Config(NodeConfig):
        account: Template = _ACCOUNT
        target: Literal["media", "account"] = Field(
            default="media", description="A published media's metrics, or the account's."
        )
        media_id: Template = Field(
            default="", max_length=200, description="The media id (target media)."
        )
        media_metrics: list[MediaMetric] = Field(
            default_factory=_default_media_metrics,
            max_length=14,
            description="Metrics of a media (Meta's current ones; impressions and plays are gone).",
        )
        account_metrics: list[AccountMetric] = Field(
            default_factory=_default_account_metrics,
            max_length=12,
            description="Metrics of the account for the last day.",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        from socialflow.publishing import InsightsRequest

        cfg = self.config
        metrics = list(cfg.media_metrics if cfg.target == "media" else cfg.account_metrics)
        request = InsightsRequest(
            account=ctx.render_text(cfg.account, field_name="account"),
            target=cfg.target,
            media_id=ctx.render_text(cfg.media_id, field_name="media_id").strip(),
            metrics=metrics,
        )
        return {"insights": await _service(ctx).insights(request)}
