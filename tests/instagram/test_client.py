"""The Graph API client against the emulator over real HTTP: every call, every error class."""

from __future__ import annotations

import json
from typing import Any

import pytest

from socialflow.core.errors import TransientError, UserError
from socialflow.instagram._errors import GraphError, TokenInvalidError, backoff_seconds
from socialflow.instagram.client import GraphClient
from socialflow.testing.graph_api_emulator import GraphEmulator
from tests.fixtures.graph_emulator import (  # noqa: F401 - fixture
    ACCOUNT,
    TOKEN,
    emulator_settings,
    graph_emulator,
)


def client(emulator: GraphEmulator, **kwargs: Any) -> GraphClient:
    return GraphClient(TOKEN, emulator_settings(emulator), ig_user_id=ACCOUNT, **kwargs)


async def test_comment_calls(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    comment = graph_emulator.state.add_comment({"text": "price?", "account": ACCOUNT})["id"]
    graph = client(graph_emulator)
    reply = await graph.reply_to_comment(comment, "DM sent!")
    assert reply["id"] and reply["id"] != comment
    fetched = await graph.get_comment(comment)
    assert fetched["text"] == "price?" and fetched["hidden"] is False
    assert await graph.hide_comment(comment) == {"success": True}
    assert (await graph.get_comment(comment))["hidden"] is True
    assert await graph.hide_comment(comment, hide=False) == {"success": True}
    assert (await graph.get_media("17950000"))["id"] == "17950000"
    assert await graph.delete_comment(reply["id"]) == {"success": True}
    calls = graph_emulator.calls()
    assert [c["method"] for c in calls] == ["POST", "GET", "POST", "GET", "POST", "GET", "DELETE"]
    assert calls[0]["path"] == f"{comment}/replies" and calls[0]["body"] == {"message": "DM sent!"}
    assert calls[2]["params"] == {"hide": "true"}
    await graph.aclose()


async def test_messaging_calls(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    graph_emulator.state.add_message(ACCOUNT, "5550001")
    comment = graph_emulator.state.add_comment({"from_id": "5550002", "account": ACCOUNT})["id"]
    graph = client(graph_emulator)
    private = await graph.private_reply(comment, "Here is the link")
    assert private["recipient_id"] == "5550002" and private["message_id"].startswith("aWdf")
    sent = await graph.send_message(
        "5550001", text="Pick one", quick_replies=[{"title": "Yes", "payload": "Y"}]
    )
    assert sent["recipient_id"] == "5550001"
    await graph.send_message("5550001", attachment=("image", "https://example.com/a.png"))
    await graph.send_message("5550001", attachment=("file", "https://example.com/a.pdf"))
    await graph.sender_action("5550001", "typing_on")
    await graph.sender_action("5550001", "mark_seen")
    profile = await graph.get_user_profile("5550001")
    assert profile["username"] == "user5550001"
    assert await graph.me() == {"user_id": ACCOUNT, "username": "shop"}
    assert await graph.subscribe(["comments", "messages"]) == {"success": True}
    bodies = [c["body"] for c in graph_emulator.calls(f"{ACCOUNT}/messages")]
    assert bodies[0] == {
        "recipient": {"comment_id": comment},
        "message": {"text": "Here is the link"},
    }
    assert bodies[1]["message"]["quick_replies"] == [
        {"content_type": "text", "title": "Yes", "payload": "Y"}
    ]
    assert bodies[2]["message"]["attachment"]["type"] == "image"
    assert bodies[4] == {"recipient": {"id": "5550001"}, "sender_action": "typing_on"}
    assert graph_emulator.calls("subscribed_apps")[0]["params"] == {
        "subscribed_fields": "comments,messages"
    }
    await graph.aclose()


async def test_facebook_login_uses_the_facebook_host_and_the_configured_version(
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    settings = emulator_settings(graph_emulator, api_version="v24.0")
    settings.graph_facebook_url = graph_emulator.url + "/fb-host-check"
    graph = GraphClient(TOKEN, settings, ig_user_id=ACCOUNT, login_kind="facebook")
    assert graph.base_url == f"{graph_emulator.url}/fb-host-check/v24.0"
    plain = GraphClient(TOKEN, emulator_settings(graph_emulator, api_version="v24.0"))
    assert plain.base_url == f"{graph_emulator.url}/v24.0"
    assert (await plain.me())["user_id"] == ACCOUNT


async def test_client_side_limits_refuse_before_any_call(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    graph = client(graph_emulator)
    with pytest.raises(UserError, match="1000 bytes"):
        await graph.send_message("1", text="é" * 501)
    with pytest.raises(UserError, match="at most 13"):
        await graph.send_message(
            "1", text="hi", quick_replies=[{"title": str(i), "payload": "p"} for i in range(14)]
        )
    assert graph_emulator.calls() == []


@pytest.mark.parametrize("code", [1, 2, 4, 17, 32, 613, 80002])
async def test_transient_codes_raise_transient_errors(
    graph_emulator: GraphEmulator,  # noqa: F811
    code: int,
) -> None:
    graph_emulator.state.add_fault({"code": code})
    with pytest.raises(TransientError) as raised:
        await client(graph_emulator).get_media("1")
    assert f"code {code}" in raised.value.message
    assert graph_emulator.calls() == []
    # the next call goes through: the failure was transient
    assert (await client(graph_emulator).get_media("1"))["id"] == "1"


@pytest.mark.parametrize(
    "fault", [{"kind": "5xx", "status": 502}, {"kind": "timeout", "seconds": 2}]
)
async def test_5xx_and_timeouts_are_transient(
    graph_emulator: GraphEmulator,  # noqa: F811
    fault: dict[str, Any],
) -> None:
    graph_emulator.state.add_fault(fault)
    settings = emulator_settings(graph_emulator, request_timeout_seconds=0.5)
    with pytest.raises(TransientError):
        await GraphClient(TOKEN, settings, ig_user_id=ACCOUNT).get_media("1")


async def test_expired_token_marks_the_account_invalid(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    marked: list[TokenInvalidError] = []

    async def mark(exc: TokenInvalidError) -> None:
        marked.append(exc)

    graph_emulator.state.add_fault({"code": 190, "subcode": 463})
    with pytest.raises(TokenInvalidError, match="reconnect"):
        await client(graph_emulator, on_token_invalid=mark).get_media("1")
    assert len(marked) == 1 and marked[0].subcode == 463
    # an unknown token is what Meta calls an invalid session too
    other = GraphClient("not-a-token", emulator_settings(graph_emulator), on_token_invalid=mark)
    with pytest.raises(TokenInvalidError):
        await other.me()
    assert len(marked) == 2


async def test_policy_refusals_are_user_errors_with_the_reason(
    graph_emulator: GraphEmulator,  # noqa: F811
) -> None:
    comment = graph_emulator.state.add_comment({"account": ACCOUNT})["id"]
    old = graph_emulator.state.add_comment({"account": ACCOUNT, "age_seconds": 8 * 86400})["id"]
    graph = client(graph_emulator)
    await graph.private_reply(comment, "first")
    with pytest.raises(GraphError, match="invalid for a private reply") as second:
        await graph.private_reply(comment, "second")
    assert (second.value.graph_code, second.value.subcode) == (100, 2534025)
    assert second.value.code == "instagram_private_reply_invalid"
    with pytest.raises(GraphError, match="invalid for a private reply"):
        await graph.private_reply(old, "too late")
    with pytest.raises(GraphError, match="outside the allowed window") as window:
        await graph.send_message("999", text="hello?")
    assert (window.value.graph_code, window.value.subcode) == (10, 2534022)
    graph_emulator.state.add_fault({"code": 551})
    with pytest.raises(UserError, match="isn't receiving messages"):
        await graph.get_media("1")


async def test_backoff_honours_the_usage_headers(graph_emulator: GraphEmulator) -> None:  # noqa: F811
    buc = {
        ACCOUNT: [{"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 7}]
    }
    graph_emulator.state.add_fault(
        {"code": 80002, "headers": {"X-Business-Use-Case-Usage": json.dumps(buc)}}
    )
    with pytest.raises(TransientError) as raised:
        await client(graph_emulator).get_media("1")
    assert raised.value.retry_after == 7 * 60

    # with retries, the client waits what the headers ask, then succeeds
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    app_usage = {"call_count": 100, "total_cputime": 10, "total_time": 10}
    graph_emulator.state.add_fault(
        {"code": 80002, "headers": {"X-Business-Use-Case-Usage": json.dumps(buc)}}
    )
    graph_emulator.state.add_fault({"code": 4, "headers": {"X-App-Usage": json.dumps(app_usage)}})
    graph = client(graph_emulator, retries=3, max_backoff=3600, sleep=sleep)
    assert (await graph.get_media("1"))["id"] == "1"
    assert waits == [420.0, 2.0]
    assert graph_emulator.state.attempts >= 4


def test_usage_header_parsing() -> None:
    assert backoff_seconds({}) is None
    assert backoff_seconds({"x-app-usage": '{"call_count": 40}'}) is None
    assert backoff_seconds({"x-app-usage": '{"call_count": 100}'}, attempt=3) == 8.0
    buc = {
        "1": [{"type": "instagram", "call_count": 20, "estimated_time_to_regain_access": 0}],
        "2": [{"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 2}],
    }
    assert backoff_seconds({"x-business-use-case-usage": json.dumps(buc)}) == 120.0
    assert backoff_seconds({"x-app-usage": "not json"}) is None


def test_a_bare_429_is_transient_and_honours_retry_after() -> None:
    """A 429 without a Graph error body (a proxy or load balancer throttling) is retried,
    after the Retry-After it gave; with a Graph error code the code decides."""
    import httpx as _httpx

    from socialflow.instagram._errors import GraphError, TransientGraphError, map_error

    bare = map_error(429, None, _httpx.Headers({"Retry-After": "7"}), call="reply to comment 1")
    assert isinstance(bare, TransientGraphError) and bare.retry_after == 7.0
    coded = map_error(
        429,
        {"error": {"code": 10, "error_subcode": 2534022, "message": "outside window"}},
        _httpx.Headers(),
        call="send DM",
    )
    assert isinstance(coded, GraphError) and not isinstance(coded, TransientGraphError)
