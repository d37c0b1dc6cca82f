"""Meta's messaging rules, checked before a send so a refusal says why in our own words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from socialflow.core.errors import UserError
from socialflow.instagram.client import MAX_QUICK_REPLIES, MAX_REPLY_CHARS, check_text

__all__ = ["HUMAN_AGENT", "PRIVATE_REPLY_DAYS", "Verdict", "check_action"]

PRIVATE_REPLY_DAYS = 7
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT = "HUMAN_AGENT"


@dataclass(frozen=True)
class Verdict:
    """The outcome of a policy check.

    Attributes:
        allowed: Whether Meta is expected to accept the action.
        reason: Why it was refused, or a note on how it was allowed.
        tag: A message tag the send must carry (``HUMAN_AGENT``), if any.
    """

    allowed: bool
    reason: str | None = None
    tag: str | None = None

    @property
    def label(self) -> str:
        """``allowed`` or ``refused``, as the ledger stores it."""
        return "allowed" if self.allowed else "refused"


def _age(now: datetime, then: datetime) -> str:
    hours = (now - then).total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def check_action(
    action: str,
    *,
    now: datetime,
    text: str | None = None,
    quick_replies: int = 0,
    comment_time: datetime | None = None,
    comment_age_unknown: str | None = None,
    prior_private_reply: bool = False,
    last_user_message_at: datetime | None = None,
    human_agent: bool = False,
) -> Verdict:
    """Whether Meta would accept ``action``, and why not.

    Args:
        action: ``reply_comment``, ``private_reply``, ``send_dm`` or ``hide_comment``.
        now: The time of the send.
        text: The message text, if any.
        quick_replies: How many quick replies the DM carries.
        comment_time: When the comment was made (private replies).
        comment_age_unknown: Why ``comment_time`` is missing, when it is; the verdict says
            that the 7-day rule could not be checked.
        prior_private_reply: Whether the comment already got a private reply.
        last_user_message_at: When the recipient last messaged the account (DMs).
        human_agent: Whether the flow allows the HUMAN_AGENT tag (up to 7 days).

    Returns:
        The verdict.
    """
    try:
        if text is not None and action in ("private_reply", "send_dm"):
            check_text(text)
    except UserError as exc:
        return Verdict(False, exc.message)
    if quick_replies > MAX_QUICK_REPLIES:
        return Verdict(
            False, f"{quick_replies} quick replies; Instagram allows at most {MAX_QUICK_REPLIES}"
        )
    if action == "reply_comment" and text is not None and not 0 < len(text) <= MAX_REPLY_CHARS:
        return Verdict(False, f"a comment reply takes 1 to {MAX_REPLY_CHARS} characters")
    if action == "private_reply":
        if prior_private_reply:
            return Verdict(
                False,
                "this comment already got a private reply; Instagram allows only one per comment",
            )
        if comment_time is not None and now - comment_time > timedelta(days=PRIVATE_REPLY_DAYS):
            return Verdict(
                False,
                f"the comment is {_age(now, comment_time)} old; a private reply must be sent "
                f"within {PRIVATE_REPLY_DAYS} days of the comment",
            )
        if comment_time is None:
            why = comment_age_unknown or "no comment_time was given"
            return Verdict(
                True,
                f"the comment's age is unknown ({why}), so the {PRIVATE_REPLY_DAYS}-day rule "
                "was not checked here; Meta refuses a private reply to an older comment",
            )
    if action == "send_dm":
        return _window(now, last_user_message_at, human_agent)
    return Verdict(True)


def _window(now: datetime, last: datetime | None, human_agent: bool) -> Verdict:
    if last is None:
        return Verdict(
            False,
            "no message from this user is known; Instagram only lets the account message "
            "someone within 24 hours of their last message (use a private reply for commenters)",
        )
    age = now - last
    if age <= STANDARD_WINDOW:
        return Verdict(True)
    if human_agent and age <= HUMAN_AGENT_WINDOW:
        return Verdict(
            True, "sent with the HUMAN_AGENT tag (outside 24 h, within 7 days)", HUMAN_AGENT
        )
    if human_agent:
        return Verdict(
            False,
            f"the user's last message is {_age(now, last)} old; even with the HUMAN_AGENT "
            "tag a reply must be sent within 7 days",
        )
    return Verdict(
        False,
        f"the user's last message is {_age(now, last)} old, outside Instagram's 24-hour "
        "messaging window; enable the human agent option of the node to answer up to 7 days",
    )
