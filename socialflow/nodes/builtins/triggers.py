"""Trigger nodes: what starts a flow. Each passes the run's trigger payload on as ``event``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import Field, field_validator, model_validator

from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port

__all__ = ["ManualTriggerNode", "ScheduleTriggerNode", "WebhookTriggerNode"]


HttpMethod = Literal["POST", "PUT", "PATCH"]


def _post_only() -> list[HttpMethod]:
    return ["POST"]


class _TriggerNode(BaseNode):
    inputs: ClassVar[tuple[Port, ...]] = ()

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        return {"event": dict(ctx.trigger)}


class ManualTriggerNode(_TriggerNode):
    """Starts a flow when someone presses Run, with the payload they give."""

    kind = "trigger.manual"
    event_kinds = ("manual",)
    title = "Manual trigger"
    category = "trigger"
    icon = "play"
    outputs = (Port(name="event", type="json", description="The payload given at run time."),)

    class Config(NodeConfig):
        sample: dict[str, Any] = Field(
            default_factory=dict, description="Example payload shown in the editor's test run."
        )


class WebhookTriggerNode(_TriggerNode):
    """Starts a flow when an HTTP request reaches the flow's webhook URL."""

    kind = "trigger.webhook"
    event_kinds = ("webhook.request",)
    title = "Webhook"
    category = "trigger"
    icon = "webhook"
    outputs = (
        Port(
            name="event",
            type="webhook.request",
            description="The request: body, query and selected headers.",
        ),
    )

    class Config(NodeConfig):
        auth: Literal["header", "hmac_sha256"] = Field(
            default="header",
            description=(
                "How callers prove they may call: header, the secret in the "
                "X-Socialflow-Secret header; or hmac_sha256 (replay-safe), where each request "
                "carries X-Socialflow-Timestamp (Unix seconds, within 5 minutes), "
                "Idempotency-Key (the delivery's id) and X-Socialflow-Signature: "
                "sha256=<hex HMAC-SHA256 of '{timestamp}.{key}.{raw body}'>."
            ),
        )
        methods: list[HttpMethod] = Field(
            default_factory=_post_only, min_length=1, description="Accepted HTTP methods."
        )
        include_headers: list[str] = Field(
            default_factory=list,
            max_length=50,
            description="Request headers copied into the event (names, case-insensitive).",
        )


class ScheduleTriggerNode(_TriggerNode):
    """Starts a flow on a cron schedule or at a fixed interval."""

    kind = "trigger.schedule"
    event_kinds = ("schedule.tick",)
    example_config: ClassVar[dict[str, Any]] = {"interval_seconds": 3600}
    title = "Schedule"
    category = "trigger"
    icon = "clock"
    outputs = (Port(name="event", type="schedule.tick", description="When the run was due."),)

    class Config(NodeConfig):
        cron: str | None = Field(
            default=None, description="Cron expression, e.g. '0 9 * * 1-5' (weekdays at 9:00)."
        )
        interval_seconds: int | None = Field(
            default=None,
            ge=5,
            le=366 * 86400,
            description="Run every this many seconds (5 or more).",
        )
        timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin.")

        @field_validator("cron")
        @classmethod
        def _valid_cron(cls, value: str | None) -> str | None:
            if value is None:
                return value
            try:
                CronSim(value, datetime.now(UTC))
            except CronSimError as exc:
                msg = f"{value!r} is not a valid cron expression (five fields: m h dom mon dow)"
                raise ValueError(msg) from exc
            return value

        @field_validator("timezone")
        @classmethod
        def _valid_timezone(cls, value: str) -> str:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                msg = f"{value!r} is not an IANA time zone such as 'UTC' or 'Europe/Berlin'"
                raise ValueError(msg) from exc
            return value

        @model_validator(mode="after")
        def _exactly_one(self) -> ScheduleTriggerNode.Config:
            if (self.cron is None) == (self.interval_seconds is None):
                msg = "set exactly one of cron or interval_seconds"
                raise ValueError(msg)
            return self

        @property
        def interval(self) -> timedelta | None:
            """The interval as a timedelta, when this is an interval schedule."""
            return (
                None if self.interval_seconds is None else timedelta(seconds=self.interval_seconds)
            )
