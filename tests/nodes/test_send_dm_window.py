"""Which message opens Meta's window for Send DM when the node is not told: the trigger's DM,
or the person's later message that a resumed run knows from their contact.

The node's Instagram service here records requests (its only way out); the policy that reads
``last_user_message_at`` is tested with the real gateway in tests/instagram/test_actions.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from socialflow.instagram import ActionRequest, ActionResult
from socialflow.nodes import NodeContext
from socialflow.nodes.builtins import InstagramSendDMNode
from tests.fixtures.context import make_context

NOW = datetime.now(UTC).replace(microsecond=0)
DM = {
    "kind": "dm",
    "account_id": "1784",
    "sender_id": "555",
    "text": "hi",
    "occurred_at": (NOW - timedelta(days=2)).isoformat(),
    "message_id": "m1",
}


class Recorder:
    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []

    async def perform(self, request: ActionRequest) -> ActionResult:
        self.requests.append(request)
        return ActionResult.model_construct(status="sent")


def context(contact: dict[str, Any] | None, **trigger: Any) -> tuple[NodeContext, Recorder]:
    ctx: NodeContext = make_context(trigger={**DM, **trigger}, node_id="dm")
    service = Recorder()
    ctx.instagram = service
    ctx.contact = contact
    return ctx, service


def send(**config: Any) -> InstagramSendDMNode:
    return InstagramSendDMNode(
        InstagramSendDMNode.Config.model_validate(
            {"recipient_id": "{{ trigger.sender_id }}", "text": "Thanks!", **config}
        )
    )


async def sent_window(ctx: NodeContext, service: Recorder, **config: Any) -> datetime | None:
    await send(**config).run(ctx)
    [request] = service.requests
    return request.last_user_message_at


async def test_a_later_answer_of_the_contact_opens_the_window_again() -> None:
    answered = NOW - timedelta(minutes=5)
    ctx, service = context({"igsid": "555", "last_inbound_at": answered.isoformat()})
    assert await sent_window(ctx, service) == answered


async def test_without_a_contact_the_trigger_dm_decides() -> None:
    ctx, service = context(None)
    assert await sent_window(ctx, service) == NOW - timedelta(days=2)


async def test_an_older_contact_time_never_moves_the_window_back() -> None:
    ctx, service = context(
        {"igsid": "555", "last_inbound_at": (NOW - timedelta(days=9)).isoformat()}
    )
    assert await sent_window(ctx, service) == NOW - timedelta(days=2)


async def test_another_persons_contact_is_not_read_for_this_recipient() -> None:
    ctx, service = context({"igsid": "999", "last_inbound_at": NOW.isoformat()})
    assert await sent_window(ctx, service) == NOW - timedelta(days=2)


async def test_a_malformed_contact_time_is_ignored_and_an_explicit_time_wins() -> None:
    ctx, service = context({"igsid": "555", "last_inbound_at": "not a time"})
    assert await sent_window(ctx, service) == NOW - timedelta(days=2)
    explicit = NOW - timedelta(hours=3)
    ctx, service = context({"igsid": "555", "last_inbound_at": NOW.isoformat()})
    assert await sent_window(ctx, service, last_message_at=explicit.isoformat()) == explicit
