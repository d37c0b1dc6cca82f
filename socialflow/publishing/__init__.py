"""Publishing: the content calendar's posts and media, the checks Meta's limits call for, and
the engine that publishes each post exactly once as a Prefect run at its time.

The ORM models (``Post``, ``PostMedia``) register their tables on import.
"""

from socialflow.publishing import _service as posts
from socialflow.publishing._checks import MediaFacts, caption_problems, inspect_media, post_problems
from socialflow.publishing._engine import POST_LEASES, Outcome, Publisher, PublishingContext
from socialflow.publishing._errors import Verdict, verdict_for
from socialflow.publishing._flow import (
    DEPLOYMENT,
    cancel_flow_run,
    cancel_run,
    ensure_pool_deployment,
    get_publishing_context,
    publish_post,
    publishing_pool,
    schedule_run_at,
    set_publishing_context,
    set_publishing_pool,
    sweep_due_posts,
)
from socialflow.publishing._gateway import (
    ACCOUNT_METRICS,
    MEDIA_METRICS,
    InsightsRequest,
    PublishingGateway,
    PublishRequest,
    PublishResult,
)
from socialflow.publishing._media_store import MEDIA_PATH, MediaStore, SignedUrlError
from socialflow.publishing._models import MediaKind, Post, PostMedia, PostStatus, PostType
from socialflow.publishing._schemas import PostFields

__all__ = [
    "ACCOUNT_METRICS",
    "DEPLOYMENT",
    "MEDIA_METRICS",
    "MEDIA_PATH",
    "POST_LEASES",
    "InsightsRequest",
    "MediaFacts",
    "MediaKind",
    "MediaStore",
    "Outcome",
    "Post",
    "PostFields",
    "PostMedia",
    "PostStatus",
    "PostType",
    "PublishRequest",
    "PublishResult",
    "Publisher",
    "PublishingContext",
    "PublishingGateway",
    "SignedUrlError",
    "Verdict",
    "cancel_flow_run",
    "cancel_run",
    "caption_problems",
    "ensure_pool_deployment",
    "get_publishing_context",
    "inspect_media",
    "post_problems",
    "posts",
    "publish_post",
    "publishing_pool",
    "schedule_run_at",
    "set_publishing_context",
    "set_publishing_pool",
    "sweep_due_posts",
    "verdict_for",
]
