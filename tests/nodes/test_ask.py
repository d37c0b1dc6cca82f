"""The ask node on its own: what it sends, what it waits for, and how each reply ends it.

Its Instagram service here records requests (the node's only way out); the real gateway, the
engine that parks and resumes it and the emulator are in tests/orchestration/test_waits.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialflow.instagram import ActionRequest, ActionResult
from socialflow.nodes import AwaitReply, NodeContext, Reply
from socialflow.nodes.builtins import InstagramAskNode
from tests.fixtures.context import make_context

NOW = datetime.now(UTC)
DM = {
    "kind": "dm",
    "account_id": "1784",
    "sender_id": "555",
    "text": "hi",
    "occurred_at": NOW.isoformat(),
    "message_id": "m1",
}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []

    async def perform(self, request: ActionRequest) -> ActionResult:
        self.requests.append(request)
        return ActionResult.model_construct(status="sent")


def context(service: Recorder, reply: Reply | None = None, **trigger: Any) -> NodeContext:
    ctx: NodeContext = make_context(trigger={**DM, **trigger}, node_id="ask")
    ctx.instagram = service
    ctx.reply = reply
    return ctx


def node(**config: Any) -> InstagramAskNode:
    return InstagramAskNode(
        InstagramAskNode.Config.model_validate(
            {"question": "Your email?", "expects": "email", "max_tries": 2, **config}
        )
    )


async def test_asks_once_then_waits_for_the_sender_until_the_timeout() -> None:
    service = Recorder()
    ask = node(timeout_minutes=90)
    before = datetime.now(UTC)
    with pytest.raises(AwaitReply) as waiting:
        await ask.run(context(service))
    request = waiting.value.request
    assert (request.account_id, request.contact_id, request.expects) == ("1784", "555", "email")
    assert request.state == {"tries": 0}
    # the deadline counts from when the node ran (not from when this module was imported)
    assert (
        timedelta(minutes=90)
        <= request.expires_at - before
        <= (datetime.now(UTC) - before + timedelta(minutes=90))
    )
    # the DM that started the run opened Meta's 24-hour window
    assert request.window_expires_at == datetime.fromisoformat(DM["occurred_at"]) + timedelta(
        hours=24
    )
    [sent] = service.requests
    assert (sent.action, sent.target, sent.text) == ("send_dm", "555", "Your email?")
    assert sent.occurrence.endswith(":ask")


async def test_an_invalid_reply_is_re_asked_and_a_valid_one_answers() -> None:
    service = Recorder()
    ask = node()
    nope = Reply(kind="message", text="nope", occurred_at=NOW, state={"tries": 0})
    with pytest.raises(AwaitReply) as again:
        await ask.run(context(service, nope))
    assert again.value.request.state == {"tries": 1}
    [retry] = service.requests
    assert retry.text == "Sorry, I didn't get that. that is not an email address. Your email?"
    assert retry.occurrence.endswith(":retry-1")
    good = Reply(kind="message", text="a@b.example", occurred_at=NOW, state={"tries": 1})
    answered = await ask.run(context(service, good))
    assert answered["answer"]["answer"] == "a@b.example"
    assert answered["answer"]["valid"] is True and answered["answer"]["attempts"] == 2
    assert len(service.requests) == 1  # answering sends nothing


async def test_the_last_invalid_reply_and_the_timeout_have_their_own_ports() -> None:
    service = Recorder()
    ask = node()
    last = Reply(kind="message", text="nope", state={"tries": 1})
    assert set(await ask.run(context(service, last))) == {"invalid"}
    timeout = Reply(kind="timeout", state={"tries": 1})
    timed_out = await ask.run(context(service, timeout))
    assert timed_out["timeout"] | {"question": None} == {
        "answer": None,
        "valid": False,
        "attempts": 1,
        "question": None,
        "contact_id": "555",
        "account_id": "1784",
    }
    assert service.requests == []


async def test_a_comment_is_asked_by_private_reply_and_a_button_tap_answers() -> None:
    service = Recorder()
    ask = node(
        expects="choice",
        choices=["YES", "NO"],
        buttons=[{"type": "postback", "title": "Yes", "payload": "YES"}],
        contact_id="{{ trigger.from_id }}",
        private_reply_to="{{ trigger.comment_id }}",
    )
    comment = {"kind": "comment", "comment_id": "c1", "from_id": "777", "sender_id": None}
    with pytest.raises(AwaitReply) as waiting:
        await ask.run(context(service, **comment))
    assert waiting.value.request.contact_id == "777"
    assert waiting.value.request.window_expires_at is None  # a comment opens no window
    [sent] = service.requests
    assert (sent.action, sent.target) == ("private_reply", "c1")
    assert sent.buttons == [{"type": "postback", "title": "Yes", "payload": "YES"}]
    tap = Reply(kind="postback", payload="YES", title="Yes", state={"tries": 0})
    assert (await ask.run(context(service, tap, **comment)))["answer"]["answer"] == "YES"


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"expects": "choice"}, "'choices' must list"),
        ({"timeout_minutes": 0}, "timeout_minutes"),
        ({"timeout_minutes": 30 * 24 * 60 + 1}, "timeout_minutes"),
        ({"max_tries": 11}, "max_tries"),
        ({"buttons": [{"type": "postback", "title": "x", "payload": "p"}] * 4}, "buttons"),
        (
            {
                "quick_replies": [{"title": "a", "payload": "a"}],
                "buttons": [{"type": "postback", "title": "b", "payload": "b"}],
            },
            "not both",
        ),
    ],
)
def test_bad_configs_are_refused(config: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        node(**config)
