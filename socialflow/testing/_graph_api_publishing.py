"""Content publishing and insights of the Graph API emulator: containers, their status over
time, ``media_publish``, the publishing quota, published media and their insights.

Meta's behaviour as PUBLISHING_MESSAGING.md part A and B1-B2 describe it: a container is
``IN_PROGRESS`` for ``ready_after`` seconds, then ``FINISHED`` (or ``ERROR`` with a 2207xxx
subcode in ``status``), ``EXPIRED`` 24 hours after creation and ``PUBLISHED`` once published;
``media_publish`` refuses a container that is not ready (9007/2207027), expired
(-2/2207020), already published, or past the account's quota (9/2207042). Media URLs on
loopback are fetched, as Meta cURLs them: an unreachable or refused URL is 9004/2207052, a
file that is not a JPEG 36001/2207005, one over 8 MiB 36000/2207004. The clock can be moved
forward (``advance``) so tests age containers and quota windows without waiting.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

__all__ = ["ContainerPlan", "Publishing", "PublishingFault"]

DAY = 86_400.0
MAX_IMAGE_BYTES = 8 * 1024 * 1024
_HASHTAG = re.compile(r"(?<![\w#])#\w+")
_MENTION = re.compile(r"(?<![\w@])@[\w.]+")
#: metrics Meta removed (v22.0, April 21 2025) and those never offered on these objects
DEPRECATED_MEDIA_METRICS = frozenset(
    {"impressions", "plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count"}
)
DEPRECATED_ACCOUNT_METRICS = frozenset(
    {"impressions", "profile_views", "website_clicks", "email_contacts", "phone_call_clicks"}
)
#: current media metrics → the product types that have them (B1)
MEDIA_METRICS: dict[str, frozenset[str]] = {
    "comments": frozenset({"FEED", "REELS"}),
    "follows": frozenset({"FEED", "STORY"}),
    "ig_reels_avg_watch_time": frozenset({"REELS"}),
    "ig_reels_video_view_total_time": frozenset({"REELS"}),
    "likes": frozenset({"FEED", "REELS"}),
    "navigation": frozenset({"STORY"}),
    "profile_activity": frozenset({"FEED", "STORY"}),
    "profile_visits": frozenset({"FEED", "STORY"}),
    "reach": frozenset({"FEED", "REELS", "STORY"}),
    "replies": frozenset({"STORY"}),
    "reposts": frozenset({"FEED", "REELS", "STORY"}),
    "saved": frozenset({"FEED", "REELS"}),
    "shares": frozenset({"FEED", "REELS", "STORY"}),
    "total_interactions": frozenset({"FEED", "REELS", "STORY"}),
    "views": frozenset({"FEED", "REELS", "STORY"}),
}
#: current account metrics (B2), all ``total_value`` with period ``day``
ACCOUNT_METRICS = frozenset(
    {
        "accounts_engaged",
        "comments",
        "follows_and_unfollows",
        "likes",
        "profile_links_taps",
        "reach",
        "replies",
        "reposts",
        "saves",
        "shares",
        "total_interactions",
        "views",
    }
)


class PublishingFault(Exception):
    """A Meta error answer raised by the publishing endpoints (turned into ``GraphFault``)."""

    def __init__(self, code: int, message: str, subcode: int | None = None) -> None:
        super().__init__(message)
        self.code, self.subcode = code, subcode


@dataclass
class ContainerPlan:
    """How the next containers behave: seconds in progress, then finished or an error."""

    ready_after: float = 0.0
    outcome: str = "FINISHED"
    error_subcode: int = 2207053
    #: how many containers this plan applies to before the default comes back (None: all)
    count: int | None = None


@dataclass
class _Container:
    id: str
    account: str
    media_type: str
    params: dict[str, Any]
    created: float
    plan: ContainerPlan
    children: list[str] = field(default_factory=list)
    carousel_item: bool = False
    published_media: str | None = None


class Publishing:
    """The publishing side of one emulator: its own lock, clock and objects.

    Args:
        new_id: Makes Meta-style numeric ids (shared with the rest of the emulator).
    """

    def __init__(self, new_id: Any) -> None:
        self._new_id = new_id
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget every container, publication, quota setting and the clock offset."""
        with self.lock:
            self.offset = 0.0
            self.containers: dict[str, _Container] = {}
            self.media: dict[str, dict[str, Any]] = {}
            self.published: dict[str, list[float]] = {}
            self.quota_total = 100
            self.plans: list[ContainerPlan] = []
            self.default_plan = ContainerPlan()
            self.fetch_media = True
            self.fetched: list[str] = []
            self.insights: dict[str, dict[str, int]] = {}

    def now(self) -> float:
        """The emulator's clock: the real time plus what ``advance`` added."""
        return time.time() + self.offset

    # control

    def control(self, route: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """Answer a ``/_emulator/`` route of publishing, or None when it is not one."""
        with self.lock:
            if route == "clock":
                self.offset += float(body.get("advance", 0))
                return {"now": self.now()}
            if route == "containers":
                plan = ContainerPlan(
                    ready_after=float(body.get("ready_after", 0)),
                    outcome=str(body.get("outcome", "FINISHED")).upper(),
                    error_subcode=int(body.get("error_subcode", 2207053)),
                    count=int(body["count"]) if body.get("count") is not None else None,
                )
                if plan.count is None:
                    self.default_plan = plan
                else:
                    self.plans.append(plan)
                if "fetch_media" in body:
                    self.fetch_media = bool(body["fetch_media"])
                return {"success": True}
            if route == "quota":
                account = str(body["ig_user_id"])
                if "total" in body:
                    self.quota_total = int(body["total"])
                used = int(body.get("used", 0))
                stamps = self.published.setdefault(account, [])
                stamps.extend([self.now() - float(body.get("age_seconds", 0))] * used)
                return {"success": True}
            if route == "insights":
                self.insights.setdefault(str(body["id"]), {}).update(
                    {str(k): int(v) for k, v in (body.get("metrics") or {}).items()}
                )
                return {"success": True}
            if route == "published":
                return {"data": [dict(m) for m in self.media.values()]}
        return None

    # containers

    def _plan(self) -> ContainerPlan:
        if self.plans:
            plan = self.plans[0]
            assert plan.count is not None
            plan.count -= 1
            if plan.count <= 0:
                self.plans.pop(0)
            return plan
        return self.default_plan

    def create_container(self, account: str, args: dict[str, Any]) -> dict[str, Any]:
        """``POST /{ig-user-id}/media``: check the parameters as Meta does, fetch the media."""
        media_type = str(args.get("media_type") or "IMAGE").upper()
        carousel_item = str(args.get("is_carousel_item", "")).lower() == "true"
        if media_type not in ("IMAGE", "VIDEO", "REELS", "STORIES", "CAROUSEL"):
            raise PublishingFault(100, f"The media type {media_type} is not supported", 2207023)
        if media_type == "VIDEO" and not carousel_item:
            raise PublishingFault(
                100,
                "The VIDEO media type is no longer supported; use REELS to publish a video",
                2207023,
            )
        _check_caption(str(args.get("caption") or ""), carousel_item)
        collaborators = _list_param(args.get("collaborators"))
        if len(collaborators) > 3:
            raise PublishingFault(100, "(#100) A post can have at most 3 collaborators")
        if collaborators and media_type == "STORIES":
            raise PublishingFault(100, "(#100) Collaborators are not supported on stories")
        if len(str(args.get("alt_text") or "")) > 1000:
            raise PublishingFault(100, "(#100) alt_text must be at most 1000 characters")
        children: list[str] = []
        with self.lock:
            if media_type == "CAROUSEL":
                children = _list_param(args.get("children"))
                if not 2 <= len(children) <= 10:
                    raise PublishingFault(
                        100, "The carousel must have between 2 and 10 items", 2207028
                    )
                for child in children:
                    found = self.containers.get(child)
                    if found is None or found.account != account or not found.carousel_item:
                        raise PublishingFault(
                            100, f"Media with id {child} cannot be found", 2207006
                        )
                    if self._status(found)[0] != "FINISHED":
                        raise PublishingFault(
                            9007, "The media is not ready for publishing, please wait", 2207027
                        )
        url = args.get("image_url") or args.get("video_url")
        if media_type != "CAROUSEL":
            if not url:
                needed = "image_url" if media_type in ("IMAGE",) else "video_url"
                raise PublishingFault(100, f"(#100) The parameter {needed} is required.")
            self._fetch(str(url), image="image_url" in args)
        if args.get("cover_url"):
            self._fetch(str(args["cover_url"]), image=True)
        with self.lock:
            container = _Container(
                id=self._new_id(),
                account=account,
                media_type=media_type,
                params={k: v for k, v in args.items() if k != "access_token"},
                created=self.now(),
                plan=self._plan(),
                children=children,
                carousel_item=carousel_item,
            )
            self.containers[container.id] = container
            return {"id": container.id}

    def _fetch(self, url: str, *, image: bool) -> None:
        """Fetch a media URL as Meta does; only loopback URLs, so tests never leave the host."""
        parts = urlparse(url)
        if not url.isascii():
            raise PublishingFault(9004, "The media URL must be US-ASCII", 2207052)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PublishingFault(9004, "The media could not be fetched from this uri", 2207052)
        if not self.fetch_media or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            return
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                data = answer.read(MAX_IMAGE_BYTES + 1 if image else 400 * 1024 * 1024)
        except (urllib.error.URLError, OSError) as exc:
            raise PublishingFault(
                9004, f"The media could not be fetched from this uri: {url} ({exc})", 2207052
            ) from exc
        with self.lock:
            self.fetched.append(url)
        if image:
            if len(data) > MAX_IMAGE_BYTES:
                raise PublishingFault(36000, "The image size is too large", 2207004)
            if not data.startswith(b"\xff\xd8\xff"):
                raise PublishingFault(36001, "The image format is not supported", 2207005)

    def _status(self, container: _Container) -> tuple[str, str]:
        if container.published_media is not None:
            return "PUBLISHED", "Published"
        age = self.now() - container.created
        if age > DAY:
            return "EXPIRED", "Expired"
        if age < container.plan.ready_after:
            return "IN_PROGRESS", "In Progress"
        if container.plan.outcome == "ERROR":
            return "ERROR", f"Error: {container.plan.error_subcode}"
        return "FINISHED", "Finished"

    def container(self, account: str, container_id: str) -> dict[str, Any] | None:
        """``GET /{container-id}?fields=status_code,status``, or None for another object."""
        with self.lock:
            found = self.containers.get(container_id)
            if found is None or found.account != account:
                return None
            code, status = self._status(found)
            return {"id": found.id, "status_code": code, "status": status}

    # publishing

    def quota(self, account: str) -> dict[str, Any]:
        """``GET /{ig-user-id}/content_publishing_limit``: usage in the last 24 hours."""
        with self.lock:
            usage = len(self._recent(account))
            entry = {
                "quota_usage": usage,
                "config": {"quota_total": self.quota_total, "quota_duration": int(DAY)},
            }
            return {"data": [entry]}

    def _recent(self, account: str) -> list[float]:
        now = self.now()
        stamps = [t for t in self.published.get(account, []) if t > now - DAY]
        self.published[account] = stamps
        return stamps

    def publish(self, account: str, username: str, creation_id: str | None) -> dict[str, Any]:
        """``POST /{ig-user-id}/media_publish``: one post per ready container, within quota."""
        if not creation_id:
            raise PublishingFault(100, "(#100) The parameter creation_id is required.")
        with self.lock:
            found = self.containers.get(creation_id)
            if found is None or found.account != account:
                raise PublishingFault(24, f"Media with id {creation_id} cannot be found", 2207006)
            if found.carousel_item:
                raise PublishingFault(
                    100,
                    "A carousel item cannot be published on its own; publish the carousel",
                    2207089,
                )
            code, _status = self._status(found)
            if code == "PUBLISHED":
                raise PublishingFault(
                    100, f"The media {creation_id} has already been published", 2207006
                )
            if code == "EXPIRED":
                raise PublishingFault(-2, "The media has expired; create a new container", 2207020)
            if code == "IN_PROGRESS":
                raise PublishingFault(
                    9007, "The media is not ready for publishing, please wait", 2207027
                )
            if code == "ERROR":
                raise PublishingFault(-1, "Create media fail", 2207032)
            if len(self._recent(account)) >= self.quota_total:
                raise PublishingFault(
                    9,
                    "You reached maximum number of posts that is allowed to be published",
                    2207042,
                )
            media_id = self._new_id()
            found.published_media = media_id
            self.published.setdefault(account, []).append(self.now())
            product = {"REELS": "REELS", "STORIES": "STORY"}.get(found.media_type, "FEED")
            kind = {"CAROUSEL": "CAROUSEL_ALBUM", "REELS": "VIDEO"}.get(found.media_type, "IMAGE")
            if found.media_type == "STORIES" and found.params.get("video_url"):
                kind = "VIDEO"
            shortcode = hashlib.sha256(media_id.encode()).hexdigest()[:11]
            self.media[media_id] = {
                "id": media_id,
                "caption": found.params.get("caption", ""),
                "media_type": kind,
                "media_product_type": product,
                "permalink": f"https://www.instagram.com/p/{shortcode}/",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(self.now())),
                "owner": {"id": account},
                "username": username,
                "children": {"data": [{"id": c} for c in found.children]},
                "container_id": found.id,
                "account": account,
            }
            return {"id": media_id}

    def media_object(
        self, account: str, media_id: str, fields: str | None
    ) -> dict[str, Any] | None:
        """A published media object with the requested fields, or None."""
        with self.lock:
            found = self.media.get(media_id)
            if found is None or found["account"] != account:
                return None
            public = {k: v for k, v in found.items() if k not in ("container_id", "account")}
            if fields:
                wanted = {f.strip() for f in fields.split(",")} | {"id"}
                public = {k: v for k, v in public.items() if k in wanted}
            return public

    def media_list(self, account: str, fields: str | None, limit: int) -> dict[str, Any]:
        """``GET /{ig-user-id}/media``: the account's published media, newest first."""
        with self.lock:
            ids = [m["id"] for m in self.media.values() if m["account"] == account]
        items = [self.media_object(account, i, fields) for i in reversed(ids)][:limit]
        return {"data": [i for i in items if i is not None], "paging": {}}

    # insights

    def media_insights(self, account: str, media_id: str, metrics: list[str]) -> dict[str, Any]:
        """``GET /{media-id}/insights``: lifetime values of current metrics (B1)."""
        with self.lock:
            found = self.media.get(media_id)
            child = any(c.carousel_item and c.id == media_id for c in self.containers.values())
        if child:
            raise PublishingFault(10, "(#10) Insights are not available for carousel children")
        if found is None or found["account"] != account:
            raise PublishingFault(100, f"Object with ID '{media_id}' does not exist", 33)
        product = found["media_product_type"]
        data = []
        for metric in metrics:
            if metric in DEPRECATED_MEDIA_METRICS or metric == "video_views":
                raise PublishingFault(
                    100,
                    f"(#100) Starting from version v22.0 and above, the {metric} metric is no "
                    "longer supported; use views",
                )
            if metric not in MEDIA_METRICS:
                raise PublishingFault(100, f"(#100) metric[0] must be one of: {_names()}")
            if product not in MEDIA_METRICS[metric]:
                raise PublishingFault(
                    100,
                    f"(#100) The Media Insights API does not support the {metric} metric for "
                    f"this media product type ({product})",
                )
            value = self._value(media_id, metric)
            data.append(
                {
                    "name": metric,
                    "period": "lifetime",
                    "values": [{"value": value}],
                    "title": metric.replace("_", " ").capitalize(),
                    "id": f"{media_id}/insights/{metric}/lifetime",
                }
            )
        return {"data": data}

    def account_insights(
        self, account: str, metrics: list[str], params: dict[str, Any]
    ) -> dict[str, Any]:
        """``GET /{ig-user-id}/insights``: ``total_value`` per metric for a day (B2)."""
        period = params.get("period", "day")
        data = []
        for metric in metrics:
            if metric in DEPRECATED_ACCOUNT_METRICS:
                raise PublishingFault(
                    100,
                    f"(#100) Starting from version v22.0 and above, the {metric} metric is no "
                    "longer supported",
                )
            if metric not in ACCOUNT_METRICS:
                raise PublishingFault(
                    100, f"(#100) metric[0] must be one of: {', '.join(sorted(ACCOUNT_METRICS))}"
                )
            if period != "day":
                raise PublishingFault(100, f"(#100) The period {period} is not supported")
            value = self._value(account, metric)
            entry: dict[str, Any] = {
                "name": metric,
                "period": "day",
                "title": metric.replace("_", " ").capitalize(),
                "id": f"{account}/insights/{metric}/day",
            }
            if params.get("metric_type") == "time_series" and metric == "reach":
                entry["values"] = [{"value": value, "end_time": _iso(self.now())}]
            else:
                entry["total_value"] = {"value": value}
            data.append(entry)
        return {"data": data}

    def _value(self, target: str, metric: str) -> int:
        with self.lock:
            seeded = self.insights.get(target, {})
            if metric in seeded:
                return seeded[metric]
        digest = hashlib.sha256(f"{target}:{metric}".encode()).digest()
        return digest[0] % 50


def _names() -> str:
    return ", ".join(sorted(MEDIA_METRICS))


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


def _list_param(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        import json

        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_caption(caption: str, carousel_item: bool) -> None:
    if caption and carousel_item:
        raise PublishingFault(100, "(#100) caption is not supported on carousel items")
    if len(caption) > 2200:
        raise PublishingFault(36004, "The caption is too long (2,200 characters)", 2207010)
    if len(_HASHTAG.findall(caption)) > 30:
        raise PublishingFault(36004, "The caption has more than 30 hashtags", 2207010)
    if len(_MENTION.findall(caption)) > 20:
        raise PublishingFault(100, "The caption has more than 20 @ tags", 2207040)
