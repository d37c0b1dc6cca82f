"""Conversation nodes: ask the contact a question and wait for the answer.

``instagram.ask`` sends its question through ``ctx.instagram`` (ledger, Meta's policy, pacing,
sandbox), then raises ``AwaitReply``: the engine parks the run without holding a worker and
calls the node again with ``ctx.reply`` when the same contact answers on the same account, or
when the wait times out. A valid answer fires ``answer``; an invalid one sends the retry prompt
and waits again, up to ``max_tries`` answers, then fires ``invalid``; no answer in time fires
``timeout``. Each port's value carries ``answer``, ``valid`` and ``attempts``.

With ``save_to_field``, a valid answer is also stored in that custom field of the run's contact
through ``ctx.contacts`` (the same service, checks and sandbox rules as ``contact.set_field``);
the flow's checks make sure the field exists and takes what the node expects.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field, model_validator

from socialflow.core.errors import UserError
from socialflow.instagram import ActionRequest, Button
from socialflow.nodes._base import BaseNode, NodeConfig, NodeContext, Port
from socialflow.nodes._template import Template
from socialflow.nodes._wait import AwaitReply, WaitRequest
from socialflow.nodes.builtins._answers import Expects, check_answer
from socialflow.nodes.builtins.instagram_actions import QuickReply, _time

__all__ = ["SAVE_TO_FIELD", "InstagramAskNode"]

#: the config field naming the contact field a valid answer is saved to
SAVE_TO_FIELD = "save_to_field"

#: inbound kinds that open the 24-hour messaging window
_WINDOW_KINDS = frozenset({"dm", "postback", "reaction", "referral"})
_WINDOW = timedelta(hours=24)
#: a timeout of one minute to thirty days
_MAX_TIMEOUT_MINUTES = 30 * 24 * 60
_ANSWER = "instagram.answer"


class InstagramAskNode(BaseNode):
    """Asks the contact a question in a DM and waits for the reply."""

    kind = "instagram.ask"
    title = "Ask and wait"
    category = "action"
    icon = "message-circle-question"
    description = (
        "Sends a question (with quick replies or buttons), waits for the same person's next "
        "reply on the same account, checks it, and re-asks on an invalid answer."
    )
    outputs: ClassVar[tuple[Port, ...]] = (
        Port(name="answer", type=_ANSWER, description="A valid answer: answer, valid, attempts."),
        Port(name="invalid", type=_ANSWER, description="max_tries answers, none valid."),
        Port(name="timeout", type=_ANSWER, description="No reply before the timeout."),
    )
    example_config: ClassVar[dict[str, Any]] = {
        "question": "What is your email?",
        "expects": "email",
    }

    class Config(NodeConfig):
        account: Template = Field(
            default="{{ trigger.account_id }}",
            max_length=200,
            description="Instagram account id (ig_user_id) that asks; empty: the only one.",
        )
        contact_id: Template = Field(
            default="{{ trigger.sender_id }}",
            min_length=1,
            max_length=200,
            description="IGSID of the person asked (for a comment: {{ trigger.from_id }}).",
        )
        question: Template = Field(
            min_length=1, max_length=1000, description="The question; templates allowed."
        )
        expects: Expects = Field(
            default="text",
            description="What a valid answer is: text, number, email, phone, url, date, choice.",
        )
        choices: list[str] = Field(
            default_factory=list,
            max_length=13,
            description="Accepted answers for 'choice' (also matched by quick-reply or button "
            "payload and title).",
        )
        quick_replies: list[QuickReply] = Field(
            default_factory=list, max_length=13, description="Up to 13 quick replies."
        )
        buttons: list[Button] = Field(
            default_factory=list,
            max_length=3,
            description="Up to 3 buttons under the question (postback taps answer it).",
        )
        retry_prompt: Template = Field(
            default="Sorry, I didn't get that. {{ input.reason }}. {{ input.question }}",
            min_length=1,
            max_length=1000,
            description="Sent after an invalid answer; input.reason and input.question "
            "are available.",
        )
        max_tries: int = Field(
            default=3, ge=1, le=10, description="Answers accepted before the 'invalid' port."
        )
        timeout_minutes: int = Field(
            default=24 * 60,
            ge=1,
            le=_MAX_TIMEOUT_MINUTES,
            description="How long to wait for each answer (1 minute to 30 days).",
        )
        private_reply_to: Template = Field(
            default="",
            max_length=200,
            description="A comment id: ask as the comment's private reply (no window needed); "
            "re-asks go as DMs.",
        )
        last_message_at: Template = Field(
            default="",
            max_length=200,
            description="When the person last messaged the account (ISO); empty: taken from "
            "a DM trigger.",
        )
        save_to_field: str = Field(
            default="",
            pattern=r"^([a-z][a-z0-9_]{0,39})?$",
            description="Key of a contact field the valid answer is saved to (the person "
            "whose event started the run); empty: not saved.",
        )

        @model_validator(mode="after")
        def _choices(self) -> InstagramAskNode.Config:
            if self.expects == "choice" and not self.choices:
                msg = "'choices' must list the accepted answers when 'expects' is 'choice'"
                raise ValueError(msg)
            if self.quick_replies and self.buttons:
                msg = "use 'quick_replies' or 'buttons', not both"
                raise ValueError(msg)
            return self

    config: Config

    async def run(self, ctx: NodeContext, *args: Any, **inputs: Any) -> dict[str, Any]:
        cfg = self.config
        account = ctx.render_text(cfg.account, field_name="account")
        contact = ctx.render_text(cfg.contact_id, field_name="contact_id")
        question = ctx.render_text(cfg.question, field_name="question")
        reply = ctx.reply
        if reply is None:
            last = self._last_message(ctx, contact)
            comment = (
                ctx.render_text(cfg.private_reply_to, field_name="private_reply_to")
                if cfg.private_reply_to
                else ""
            )
            await self._send(ctx, account, contact, question, last, step="ask", comment=comment)
            raise AwaitReply(self._request(account, contact, question, last, tries=0))
        tries = int(reply.state.get("tries", 0))
        base = {"question": question, "contact_id": contact, "account_id": account}
        if reply.kind == "timeout":
            return {"timeout": {**base, "answer": None, "valid": False, "attempts": tries}}
        tries += 1
        checked = check_answer(
            cfg.expects,
            reply.text if reply.text is not None else reply.title,
            payload=reply.payload,
            choices=cfg.choices,
        )
        found = {
            **base,
            "text": reply.text,
            "payload": reply.payload,
            "attempts": tries,
            "answered_at": reply.occurred_at.isoformat() if reply.occurred_at else None,
        }
        if checked.valid:
            answer: dict[str, Any] = {**found, "answer": checked.value, "valid": True}
            if cfg.save_to_field:
                answer["saved"] = {cfg.save_to_field: await self._save(ctx, checked.value)}
            return {"answer": answer}
        if tries >= cfg.max_tries:
            return {"invalid": {**found, "answer": None, "valid": False, "reason": checked.reason}}
        retry_ctx = _with_inputs(ctx, {"reason": checked.reason, "question": question})
        prompt = retry_ctx.render_text(cfg.retry_prompt, field_name="retry_prompt")
        last = reply.occurred_at or datetime.now(UTC)
        await self._send(ctx, account, contact, prompt, last, step=f"retry-{tries}")
        raise AwaitReply(self._request(account, contact, question, last, tries=tries))

    async def _save(self, ctx: NodeContext, value: Any) -> Any:
        key = self.config.save_to_field
        where = f"node {ctx.node_id!r} ({ctx.node_kind}) field '{SAVE_TO_FIELD}'"
        if ctx.contacts is None:
            msg = (
                f"{where}: this run has no contact to save the answer to; saving needs a run "
                "started by an Instagram event from a person (comment, DM, postback…)"
            )
            raise UserError(msg, code="contact_missing")
        try:
            # an upsert: a continuation run again after a crash stores the same value once
            return await ctx.contacts.set_field(key, value)
        except UserError as exc:
            msg = f"{where}: {exc.message}"
            raise UserError(msg, code=exc.code) from exc

    def _last_message(self, ctx: NodeContext, contact: str) -> datetime | None:
        last = _time(ctx, self.config.last_message_at, "last_message_at")
        trigger = ctx.trigger
        if (
            last is None
            and trigger.get("kind") in _WINDOW_KINDS
            and str(trigger.get("sender_id")) == contact
        ):
            last = _time(ctx, "{{ trigger.occurred_at }}", "last_message_at")
        return last

    def _request(
        self, account: str, contact: str, question: str, last: datetime | None, *, tries: int
    ) -> WaitRequest:
        if not account:
            msg = "field 'account': the ask node needs the account id to wait on"
            raise UserError(msg, code="invalid_config")
        now = datetime.now(UTC)
        return WaitRequest(
            account_id=account,
            contact_id=contact,
            expires_at=now + timedelta(minutes=self.config.timeout_minutes),
            window_expires_at=last + _WINDOW if last else None,
            expects=self.config.expects,
            question=question[:2000],
            state={"tries": tries},
        )

    async def _send(
        self,
        ctx: NodeContext,
        account: str,
        contact: str,
        text: str,
        last: datetime | None,
        *,
        step: str,
        comment: str = "",
    ) -> None:
        if ctx.instagram is None:
            msg = f"node {ctx.node_id!r}: asking needs a run of a workspace flow"
            raise UserError(msg, code="instagram_unavailable")
        cfg = self.config
        request = ActionRequest(
            action="private_reply" if comment else "send_dm",
            node_id=ctx.node_id,
            account=account,
            target=comment or contact,
            text=text,
            quick_replies=[] if comment else [q.model_dump() for q in cfg.quick_replies],
            buttons=[b.model_dump(exclude_none=True) for b in cfg.buttons],
            last_user_message_at=last,
            # one ledger key per question of this run: a resumed run never asks twice
            occurrence=f"{ctx.execution_id}:{step}",
        )
        await ctx.instagram.perform(request)


def _with_inputs(ctx: NodeContext, inputs: dict[str, Any]) -> NodeContext:
    return replace(ctx, inputs={**ctx.inputs, **inputs})
