"""Instagram actions: reply to a comment, private reply, send a DM, hide a comment.

Each goes through ``ctx.instagram``, which writes the send ledger before calling Meta, checks
Meta's messaging rules, paces the account and keeps sandboxed runs from sending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from socialflow.core.errors import UserError
from socialflow.instagram import ActionRequest, Button, Card
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template

__all__ = [
    "InstagramHideCommentNode",
    "InstagramPrivateReplyNode",
    "InstagramReplyCommentNode",
    "InstagramSendDMNode",
]

_ACCOUNT = Field(
    default="{{ trigger.account_id }}",
    max_length=200,
    description="Instagram account id (ig_user_id) that acts; empty: the workspace's only one.",
)
_COMMENT = Field(
    default="{{ trigger.comment_id }}",
    min_length=1,
    max_length=200,
    description="Id of the comment; templates allowed.",
)
#: inbound kinds that open the 24-hour messaging window
_WINDOW_KINDS = frozenset({"dm", "postback", "reaction", "referral"})
_OUT = (
    Port(name="result", type="instagram.action", description="Ledger entry and Meta's answer."),
)


class _InstagramAction(BaseNode):
    category = "action"
    icon = "instagram"
    outputs: ClassVar[tuple[Port, ...]] = _OUT
    action: ClassVar[str]

    async def _perform(self, ctx: NodeContext, **fields: Any) -> dict[str, Any]:
        if ctx.instagram is None:
            msg = f"node {ctx.node_id!r}: Instagram actions need a run of a workspace flow"
            raise UserError(msg, code="instagram_unavailable")
        account = ctx.render_text(self.config.account, field_name="account")  # type: ignore[attr-defined]
        request = ActionRequest(action=self.action, node_id=ctx.node_id, account=account, **fields)
        result = await ctx.instagram.perform(request)
        return {"result": result.model_dump(mode="json")}


def _time(ctx: NodeContext, template: str, field_name: str) -> datetime | None:
    value = ctx.render(template, field_name=field_name) if template else None
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        msg = f"node {ctx.node_id!r} field {field_name!r}: {value!r} is not an ISO date-time"
        raise UserError(msg, code="invalid_config") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class InstagramReplyCommentNode(_InstagramAction):
    """Replies publicly under a comment."""

    kind = "instagram.reply_comment"
    action = "reply_comment"
    title = "Reply to comment"
    description = "Posts a public reply under an Instagram comment, once per comment."
    example_config: ClassVar[dict[str, Any]] = {"message": "Thanks, {{ trigger.from_username }}!"}

    class Config(NodeConfig):
        account: Template = _ACCOUNT
        comment_id: Template = _COMMENT
        message: Template = Field(
            min_length=1,
            max_length=2200,
            description="Reply text (up to 2,200 characters); templates allowed.",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        return await self._perform(
            ctx,
            target=ctx.render_text(cfg.comment_id, field_name="comment_id"),
            text=ctx.render_text(cfg.message, field_name="message"),
        )


class InstagramPrivateReplyNode(_InstagramAction):
    """Sends the one private DM a commenter may receive."""

    kind = "instagram.private_reply"
    action = "private_reply"
    title = "Private reply"
    description = "Sends a DM to the author of a comment: one per comment, within 7 days of it."
    example_config: ClassVar[dict[str, Any]] = {"text": "Hi! Here is the link you asked for."}

    class Config(NodeConfig):
        account: Template = _ACCOUNT
        comment_id: Template = _COMMENT
        comment_time: Template = Field(
            default="{{ trigger.occurred_at }}",
            max_length=200,
            description="When the comment was made (ISO); checks the 7-day rule.",
        )
        text: Template = Field(
            min_length=1,
            max_length=1000,
            description="Message text (at most 1000 bytes of UTF-8); templates allowed.",
        )
        buttons: list[Button] = Field(
            default_factory=list,
            max_length=3,
            description="Up to 3 buttons under the text (web_url or postback; 640 characters "
            "of text at most with buttons).",
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        return await self._perform(
            ctx,
            target=ctx.render_text(cfg.comment_id, field_name="comment_id"),
            text=ctx.render_text(cfg.text, field_name="text"),
            comment_time=_time(ctx, cfg.comment_time, "comment_time"),
            buttons=[b.model_dump(exclude_none=True) for b in cfg.buttons],
        )


class QuickReply(BaseModel):
    """A quick-reply button under a DM."""

    title: str = Field(min_length=1, max_length=20, description="Button text (20 characters).")
    payload: str = Field(min_length=1, max_length=1000, description="Sent back when tapped.")


class InstagramSendDMNode(_InstagramAction):
    """Sends a direct message within Meta's messaging window."""

    kind = "instagram.send_dm"
    action = "send_dm"
    title = "Send DM"
    description = (
        "Sends a DM to a user: text with quick replies or buttons, cards, or an image or file."
    )
    example_config: ClassVar[dict[str, Any]] = {"text": "Thanks for your message!"}

    class Config(NodeConfig):
        account: Template = _ACCOUNT
        recipient_id: Template = Field(
            default="{{ trigger.sender_id }}",
            min_length=1,
            max_length=200,
            description="IGSID of the recipient; templates allowed.",
        )
        text: Template = Field(
            default="",
            max_length=1000,
            description="Message text (at most 1000 bytes of UTF-8); templates allowed.",
        )
        quick_replies: list[QuickReply] = Field(
            default_factory=list, max_length=13, description="Up to 13 quick replies."
        )
        buttons: list[Button] = Field(
            default_factory=list,
            max_length=3,
            description="Up to 3 buttons under the text (web_url opens a page, postback sends "
            "its payload back); text at most 640 characters with buttons.",
        )
        cards: list[Card] = Field(
            default_factory=list,
            max_length=10,
            description="A carousel of 1 to 10 cards (title, subtitle, image, up to 3 buttons) "
            "instead of text.",
        )
        attachment_type: Literal["none", "image", "file"] = Field(
            default="none", description="Send an image or file instead of text."
        )
        attachment_url: Template = Field(
            default="", max_length=4000, description="Public URL of the image or file."
        )
        last_message_at: Template = Field(
            default="",
            max_length=200,
            description=(
                "When the user last messaged the account (ISO); empty: taken from a DM trigger."
            ),
        )
        human_agent: bool = Field(
            default=False,
            description=(
                "Allow the HUMAN_AGENT tag: answer up to 7 days after the user's last message "
                "(only for replies written by a person)."
            ),
        )

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        recipient = ctx.render_text(cfg.recipient_id, field_name="recipient_id")
        last = _time(ctx, cfg.last_message_at, "last_message_at")
        trigger = ctx.trigger
        if last is None:
            last = _latest_inbound(ctx, recipient)
        attachment = None
        if cfg.attachment_type != "none":
            url = ctx.render_text(cfg.attachment_url, field_name="attachment_url")
            attachment = (cfg.attachment_type, url)
        text = ctx.render_text(cfg.text, field_name="text") if cfg.text else None
        if text is None and attachment is None and not cfg.cards:
            msg = f"node {ctx.node_id!r}: set 'text' or an attachment"
            raise UserError(msg, code="invalid_config")
        return await self._perform(
            ctx,
            target=recipient,
            text=text,
            attachment=attachment,
            quick_replies=[q.model_dump() for q in cfg.quick_replies],
            buttons=[b.model_dump(exclude_none=True) for b in cfg.buttons],
            cards=[c.model_dump(exclude_none=True) for c in cfg.cards],
            last_user_message_at=last,
            human_agent=cfg.human_agent,
            occurrence=str(trigger.get("message_id") or ctx.execution_id),
        )


def _latest_inbound(ctx: NodeContext, recipient: str) -> datetime | None:
    """When ``recipient`` last wrote to the account, as far as the run knows: the trigger (a DM
    of theirs) or, later, their contact's last inbound message (an answer to a question that
    resumed the run opens the window anew)."""
    times: list[datetime] = []
    trigger = ctx.trigger
    if trigger.get("kind") in _WINDOW_KINDS and str(trigger.get("sender_id")) == recipient:
        occurred = _time(ctx, "{{ trigger.occurred_at }}", "last_message_at")
        if occurred is not None:
            times.append(occurred)
    contact = ctx.contact
    if contact is not None and str(contact.get("igsid")) == recipient:
        inbound = contact.get("last_inbound_at")
        if isinstance(inbound, str) and inbound:
            try:
                seen = datetime.fromisoformat(inbound)
            except ValueError:
                seen = None
            if seen is not None:
                times.append(seen if seen.tzinfo else seen.replace(tzinfo=UTC))
    return max(times) if times else None


class InstagramHideCommentNode(_InstagramAction):
    """Hides (or unhides) a comment."""

    kind = "instagram.hide_comment"
    action = "hide_comment"
    title = "Hide comment"
    description = "Hides an Instagram comment from everyone but its author, or shows it again."
    example_config: ClassVar[dict[str, Any]] = {}

    class Config(NodeConfig):
        account: Template = _ACCOUNT
        comment_id: Template = _COMMENT
        hide: bool = Field(default=True, description="Hide (true) or unhide (false).")

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        return await self._perform(
            ctx, target=ctx.render_text(cfg.comment_id, field_name="comment_id"), hide=cfg.hide
        )
