"""Meta's messaging rules are refused before any call, with a reason, live and sandboxed."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from socialflow.core.db import utcnow
from socialflow.core.errors import UserError
from socialflow.instagram import ActionRequest, InstagramGateway, check_action
from socialflow.orchestration import EngineRuntime
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    connect_account,
    graph_emulator,
    ledger,
    use_emulator,
)

NOW = utcnow()


def test_private_reply_rules() -> None:
    ok = check_action("private_reply", now=NOW, text="hi", comment_time=NOW - timedelta(days=6))
    assert ok.allowed and ok.label == "allowed"
    late = check_action("private_reply", now=NOW, text="hi", comment_time=NOW - timedelta(days=8))
    assert not late.allowed and "8.0 days old" in (late.reason or "")
    assert "within 7 days" in (late.reason or "")
    again = check_action("private_reply", now=NOW, text="hi", prior_private_reply=True)
    assert not again.allowed and "only one per comment" in (again.reason or "")


def test_dm_window_and_human_agent() -> None:
    assert check_action("send_dm", now=NOW, text="hi", last_user_message_at=NOW).allowed
    unknown = check_action("send_dm", now=NOW, text="hi")
    assert not unknown.allowed and "24 hours" in (unknown.reason or "")
    day_old = NOW - timedelta(hours=30)
    refused = check_action("send_dm", now=NOW, text="hi", last_user_message_at=day_old)
    assert not refused.allowed and "outside Instagram's 24-hour" in (refused.reason or "")
    tagged = check_action(
        "send_dm", now=NOW, text="hi", last_user_message_at=day_old, human_agent=True
    )
    assert tagged.allowed and tagged.tag == "HUMAN_AGENT"
    week_old = NOW - timedelta(days=8)
    too_old = check_action(
        "send_dm", now=NOW, text="hi", last_user_message_at=week_old, human_agent=True
    )
    assert not too_old.allowed and "within 7 days" in (too_old.reason or "")


def test_text_limits() -> None:
    long = check_action("send_dm", now=NOW, text="ü" * 501, last_user_message_at=NOW)
    assert not long.allowed and "1002 bytes" in (long.reason or "")
    assert check_action("send_dm", now=NOW, text="a" * 1000, last_user_message_at=NOW).allowed
    many = check_action("send_dm", now=NOW, text="a", quick_replies=14, last_user_message_at=NOW)
    assert not many.allowed and "at most 13" in (many.reason or "")
    assert not check_action("reply_comment", now=NOW, text="x" * 2201).allowed


def gateway(runtime: EngineRuntime, account: Any, *, sandbox: bool = False) -> InstagramGateway:
    return InstagramGateway(
        runtime.db,
        runtime.key_wrapper(),
        runtime.settings.instagram,
        None,
        workspace_id=account.workspace_id,
        flow_id=uuid.uuid4(),
        flow_version_id=uuid.uuid4(),
        execution_id=uuid.uuid4(),
        sandbox=sandbox,
    )


@pytest.mark.parametrize("mode", ["live", "sandbox"])
async def test_refusals_in_live_and_sandbox_mode_alike(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
    mode: str,
) -> None:
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime, mode=mode)
    old = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 8 * 86400})
    fresh = graph_emulator.state.add_comment({"account": ACCOUNT})
    graph_emulator.state.add_message(ACCOUNT, "8880001", age_seconds=2 * 86400)

    async def attempt(**fields: Any) -> str:
        with pytest.raises(UserError) as refused:
            await gateway(runtime, account).perform(ActionRequest(node_id="n", **fields))
        assert refused.value.code == "instagram_policy_refused"
        return refused.value.message

    late = await attempt(
        action="private_reply", target=old["id"], text="hi", comment_time=NOW - timedelta(days=8)
    )
    assert "within 7 days of the comment" in late
    first = await gateway(runtime, account).perform(
        ActionRequest(node_id="n", action="private_reply", target=fresh["id"], text="hi")
    )
    assert first.status == ("sent" if mode == "live" else "sandboxed")
    # a second private reply from another node or flow is refused by the ledger's memory
    second = await attempt(action="private_reply", target=fresh["id"], text="again")
    assert "already got a private reply" in second
    window = await attempt(
        action="send_dm",
        target="8880001",
        text="hello",
        last_user_message_at=utcnow() - timedelta(days=2),
    )
    assert "24-hour" in window
    too_long = await attempt(
        action="send_dm", target="8880001", text="x" * 1001, last_user_message_at=utcnow()
    )
    assert "1001 bytes" in too_long
    # only the allowed private reply reached Meta, and only in live mode (where the comment's
    # age was read from Meta for both private replies to it, since they gave none)
    assert len(graph_emulator.calls("messages", method="POST")) == (1 if mode == "live" else 0)
    assert len(graph_emulator.calls(fresh["id"], method="GET")) == (2 if mode == "live" else 0)
    rows = await ledger(runtime, account_id=account.id)
    assert [r.policy_verdict for r in rows] == [
        "refused",
        "allowed",
        "refused",
        "refused",
        "refused",
    ]
    assert all(r.policy_reason for r in rows if r.policy_verdict == "refused")
    assert {r.status for r in rows if r.policy_verdict == "refused"} == {"refused"}


async def test_a_private_reply_without_a_comment_time_asks_meta_how_old_the_comment_is(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """When the flow does not give the comment's time, the 7-day rule still holds: the
    gateway reads the comment's timestamp from the Graph API before deciding."""
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime, mode="live")
    old = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 8 * 86400})
    fresh = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 3600})
    with pytest.raises(UserError) as refused:
        await gateway(runtime, account).perform(
            ActionRequest(node_id="n", action="private_reply", target=old["id"], text="hi")
        )
    assert refused.value.code == "instagram_policy_refused"
    assert "8.0 days old" in refused.value.message
    sent = await gateway(runtime, account).perform(
        ActionRequest(node_id="n", action="private_reply", target=fresh["id"], text="hi")
    )
    assert sent.status == "sent"
    posted = graph_emulator.calls("messages", method="POST")
    assert [c["body"]["recipient"]["comment_id"] for c in posted] == [fresh["id"]]
    rows = await ledger(runtime, account_id=account.id)
    assert rows[0].policy_reason is not None and "8.0 days old" in rows[0].policy_reason
    assert rows[1].policy_reason is None


async def test_a_private_reply_whose_age_cannot_be_known_says_so_in_the_ledger(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """Sandboxed runs never ask Meta, and Meta may not show the comment: the reply is then
    left to Meta's own 7-day check, and the ledger says the rule was not checked and why."""
    use_emulator(runtime, graph_emulator)
    sandboxed = await connect_account(runtime, mode="sandbox")
    comment = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 3600})
    result = await gateway(runtime, sandboxed).perform(
        ActionRequest(node_id="n", action="private_reply", target=comment["id"], text="hi")
    )
    assert result.status == "sandboxed" and result.policy_verdict == "allowed"
    assert result.policy_reason is not None
    assert "age is unknown" in result.policy_reason
    assert "sandboxed run does not ask Meta" in result.policy_reason
    assert graph_emulator.calls() == []

    live = await connect_account(runtime, mode="live")
    hidden = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 3600})
    graph_emulator.state.add_fault({"path_contains": hidden["id"], "code": 100, "subcode": 33})
    unseen = await gateway(runtime, live).perform(
        ActionRequest(node_id="n", action="private_reply", target=hidden["id"], text="hi")
    )
    assert unseen.status == "sent"
    assert unseen.policy_reason is not None and "age is unknown" in unseen.policy_reason
    assert "Meta did not show the comment" in unseen.policy_reason
    assert graph_emulator.state.faults == []  # the comment was asked for


async def test_a_claimed_private_reply_is_not_dated_again(
    runtime: EngineRuntime,
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    """A retry of a step whose private reply is already in the ledger reads nothing from Meta."""
    use_emulator(runtime, graph_emulator)
    account = await connect_account(runtime, mode="live")
    comment = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 3600})
    same_step = gateway(runtime, account)
    request = ActionRequest(node_id="n", action="private_reply", target=comment["id"], text="hi")
    assert (await same_step.perform(request)).status == "sent"
    again = await same_step.perform(request)
    assert again.duplicate and again.status == "sent"
    assert len(graph_emulator.calls(comment["id"], method="GET")) == 1
    assert len(graph_emulator.calls("messages", method="POST")) == 1
