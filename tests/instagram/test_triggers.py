"""The Instagram trigger nodes' filters: accepts() for each one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from socialflow.instagram import parse_payload
from socialflow.nodes import NodeRegistry
from socialflow.nodes.builtins import (
    BUILTIN_NODES,
    InstagramCommentTriggerNode,
    InstagramDMTriggerNode,
    InstagramMentionTriggerNode,
)
from socialflow.nodes.builtins.instagram_triggers import keywords_match
from socialflow.orchestration import GraphSpec, compile_graph
from tests.fixtures.context import make_context
from tests.instagram.payloads import payload_file

Comment = InstagramCommentTriggerNode
DM = InstagramDMTriggerNode
Mention = InstagramMentionTriggerNode


def comment(**over: Any) -> dict[str, Any]:
    return {
        "kind": "comment",
        "account_id": "17841",
        "comment_id": "c1",
        "media_id": "m1",
        "text": "What is the PRICE of this?",
        "parent_id": None,
        "is_self": False,
        "is_test": False,
        **over,
    }


def dm(**over: Any) -> dict[str, Any]:
    return {
        "kind": "dm",
        "account_id": "17841",
        "message_id": "mid1",
        "sender_id": "55",
        "text": "Hi, is it in stock?",
        "quick_reply_payload": None,
        "is_story_reply": False,
        "is_story_mention": False,
        "standby": False,
        "is_self": False,
        "is_test": False,
        **over,
    }


def accepts(node: Any, config: dict[str, Any], event: dict[str, Any]) -> bool:
    return bool(node.accepts(node.Config.model_validate(config), event))


@pytest.mark.parametrize(
    ("text", "keywords", "match", "mode", "expected"),
    [
        ("What is the PRICE?", ["price"], "any", "contains", True),
        ("What is the PRICE?", ["cost", "price"], "any", "contains", True),
        ("What is the PRICE?", ["cost", "price"], "all", "contains", False),
        ("price and   cost", ["Price", "COST"], "all", "contains", True),
        ("price", ["Price"], "any", "exact", True),
        ("  PRICE  ", ["price"], "any", "exact", True),
        ("price?", ["price"], "any", "exact", False),
        ("anything", [], "all", "exact", True),
        (None, ["price"], "any", "contains", False),
        ("Straße", ["STRASSE"], "any", "contains", True),  # casefold, not lower
    ],
)
def test_keywords(
    text: str | None, keywords: list[str], match: Any, mode: Any, expected: bool
) -> None:
    assert keywords_match(text, keywords, match=match, mode=mode) is expected


def test_comment_account_filter() -> None:
    assert accepts(Comment, {}, comment())
    assert accepts(Comment, {"account": "17841"}, comment())
    assert not accepts(Comment, {"account": "99999"}, comment())


def test_comment_media_filter() -> None:
    assert accepts(Comment, {"media_ids": ["m0", "m1"]}, comment())
    assert not accepts(Comment, {"media_ids": ["m0"]}, comment())


def test_comment_keyword_filters() -> None:
    assert accepts(Comment, {"keywords": ["price"]}, comment())
    assert not accepts(Comment, {"keywords": ["refund"]}, comment())
    assert not accepts(Comment, {"keywords": ["price", "refund"], "match": "all"}, comment())
    assert not accepts(Comment, {"keywords": ["price"], "mode": "exact"}, comment())
    assert accepts(Comment, {"keywords": ["price"], "mode": "exact"}, comment(text="Price"))


def test_comment_exclude_replies() -> None:
    reply = comment(parent_id="c0")
    assert accepts(Comment, {}, reply)
    assert not accepts(Comment, {"exclude_replies": True}, reply)
    assert accepts(Comment, {"exclude_replies": True}, comment())


def test_live_comments_only_when_asked() -> None:
    live = comment(kind="live_comment")
    assert not accepts(Comment, {}, live)
    assert accepts(Comment, {"include_live_comments": True}, live)


@pytest.mark.parametrize("node", [Comment, DM, Mention])
def test_self_and_test_events_are_refused_by_every_trigger(node: Any) -> None:
    event = comment() if node is Comment else dm() if node is DM else {"kind": "mention"}
    event = {**event, "account_id": "17841", "comment_id": "c1"}
    assert accepts(node, {}, event)
    assert not accepts(node, {}, {**event, "is_self": True})
    assert not accepts(node, {}, {**event, "is_test": True})


def test_dm_keywords_and_account() -> None:
    assert accepts(DM, {"keywords": ["stock"]}, dm())
    assert not accepts(DM, {"keywords": ["price"]}, dm())
    assert not accepts(DM, {"account": "1"}, dm())


def test_dm_story_replies_mentions_and_quick_replies() -> None:
    story = dm(is_story_reply=True)
    assert accepts(DM, {}, story)
    assert not accepts(DM, {"include_story_replies": False}, story)
    mention = dm(is_story_mention=True, text=None)
    assert accepts(DM, {}, mention)
    assert not accepts(DM, {"include_story_mentions": False}, mention)
    quick = dm(quick_reply_payload="YES", text="Yes please")
    assert accepts(DM, {}, quick)
    assert not accepts(DM, {"include_quick_replies": False}, quick)


def test_dm_postbacks_only_when_asked_matching_title_or_payload() -> None:
    postback = {**dm(), "kind": "postback", "title": "Opening hours", "payload": "HOURS"}
    assert not accepts(DM, {}, postback)
    assert accepts(DM, {"include_postbacks": True}, postback)
    assert accepts(DM, {"include_postbacks": True, "keywords": ["hours"]}, postback)
    assert not accepts(DM, {"include_postbacks": True, "keywords": ["price"]}, postback)


def test_dm_standby_only_when_asked() -> None:
    assert not accepts(DM, {}, dm(standby=True))
    assert accepts(DM, {"include_standby": True}, dm(standby=True))


def test_dm_refuses_other_message_kinds() -> None:
    for kind in ("echo", "reaction", "seen", "edit", "unsend"):
        assert not accepts(DM, {}, dm(kind=kind))


def test_mention_filters() -> None:
    on_comment = {"kind": "mention", "account_id": "1", "comment_id": "c", "media_id": "m"}
    on_caption = {**on_comment, "comment_id": None}
    assert accepts(Mention, {}, on_comment) and accepts(Mention, {}, on_caption)
    assert not accepts(Mention, {"include_comments": False}, on_comment)
    assert accepts(Mention, {"include_comments": False}, on_caption)
    assert not accepts(Mention, {"include_captions": False}, on_caption)
    assert not accepts(Mention, {"media_ids": ["other"]}, on_comment)
    assert not accepts(Mention, {"account": "2"}, on_comment)


def test_recorded_payloads_through_the_triggers() -> None:
    def events(name: str) -> list[dict[str, Any]]:
        parsed = parse_payload(json.loads(payload_file(name).read_text()))
        return [p.event.model_dump(mode="json") for p in parsed]

    [feed] = events("comment.json")
    [own] = events("comment_self_changes.json")
    [echo] = events("dm_echo.json")
    [test] = events("dashboard_test_messages.json")
    [story] = events("story_mention.json")
    assert accepts(Comment, {}, feed) and not accepts(Comment, {}, own)
    assert not accepts(DM, {}, echo) and not accepts(DM, {}, test)
    assert accepts(DM, {}, story)


def test_keywords_are_validated() -> None:
    with pytest.raises(ValueError, match="keywords must not be empty"):
        Comment.Config.model_validate({"keywords": ["ok", "  "]})
    with pytest.raises(ValueError, match="Extra inputs"):
        DM.Config.model_validate({"keyword": "typo"})


async def test_the_trigger_passes_the_event_on() -> None:
    graph = GraphSpec.model_validate(
        {"nodes": [{"id": "t", "kind": "instagram.comment", "config": {"keywords": ["price"]}}]}
    )
    compiled = compile_graph(graph, NodeRegistry(BUILTIN_NODES))
    assert compiled.trigger.spec.kind == "instagram.comment"
    ctx = make_context(trigger=comment())
    out = await Comment(Comment.Config()).run(ctx)
    assert out == {"event": comment()}
