"""Splitting webhook bodies into normalised events with dedupe keys: every recorded payload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from socialflow.instagram import MalformedWebhookError, parse_body, parse_event, parse_payload
from tests.instagram.payloads import (
    EXPECTED,
    NOT_JSON,
    PAYLOADS,
    assert_event,
    payload_file,
    payload_names,
)


def test_every_payload_file_has_expectations() -> None:
    assert set(payload_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_payload_file_becomes_the_right_events(name: str) -> None:
    parsed = parse_body(payload_file(name).read_bytes())
    expected = EXPECTED[name]
    assert [p.event.kind for p in parsed] == [e[1]["kind"] for e in expected]
    for i, (p, (key, fields)) in enumerate(zip(parsed, expected, strict=True)):
        assert p.dedupe_key == key, f"{name}[{i}]"
        assert p.inbox_kind == f"instagram.{fields['kind']}"
        dumped = p.event.model_dump(mode="json")
        assert_event(dumped, fields, f"{name}[{i}]")
        # what is stored comes back as the same model
        assert parse_event(dumped) == p.event


@pytest.mark.parametrize("name", NOT_JSON)
def test_documentation_only_payloads_are_malformed(name: str) -> None:
    with pytest.raises(MalformedWebhookError, match="not valid JSON"):
        parse_body((PAYLOADS / name).read_bytes())


def _comment(entry: dict[str, Any]) -> dict[str, Any]:
    return {"object": "instagram", "entry": [entry]}


VALUE = {"id": "1790", "from": {"id": "55", "username": "ana"}, "text": "Price?"}


def test_flat_field_value_and_changes_forms_give_the_same_event() -> None:
    flat = parse_payload(
        _comment({"id": "17841", "time": 1700000000, "field": "comments", "value": VALUE})
    )
    wrapped = parse_payload(
        _comment(
            {"id": "17841", "time": 1700000000, "changes": [{"field": "comments", "value": VALUE}]}
        )
    )
    assert flat[0].event == wrapped[0].event
    assert flat[0].dedupe_key == wrapped[0].dedupe_key == "ig:comment:17841:1790"
    assert flat[0].event.occurred_at is not None
    assert flat[0].event.occurred_at.isoformat() == "2023-11-14T22:13:20+00:00"


def test_comment_id_key_of_facebook_login_is_accepted() -> None:
    value = {"comment_id": "1791", "from": {"id": "55"}, "text": "hi", "media": {"id": "9"}}
    [p] = parse_payload(_comment({"id": "1", "changes": [{"field": "comments", "value": value}]}))
    assert p.event.model_dump()["comment_id"] == "1791" and p.dedupe_key == "ig:comment:1:1791"


def test_a_comment_by_the_account_itself_is_self() -> None:
    value = {"id": "1792", "from": {"id": "17841", "username": "shop"}, "text": "thanks!"}
    [p] = parse_payload(_comment({"id": "17841", "field": "comments", "value": value}))
    assert p.event.is_self


def test_every_change_and_messaging_item_of_a_batch_is_an_event() -> None:
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841",
                "time": 1700000000123,
                "changes": [
                    {"field": "comments", "value": {**VALUE, "id": "a"}},
                    {"field": "comments", "value": {**VALUE, "id": "b"}},
                ],
                "messaging": [
                    {
                        "sender": {"id": "55"},
                        "recipient": {"id": "17841"},
                        "timestamp": 1700000000100,
                        "message": {"mid": "m1", "text": "yo"},
                    }
                ],
                "standby": [
                    {
                        "sender": {"id": "56"},
                        "recipient": {"id": "17841"},
                        "timestamp": 1700000000101,
                        "message": {"mid": "m2", "text": "yo"},
                    }
                ],
            },
            {
                "id": "17841",
                "time": 1700000000124,
                "field": "comments",
                "value": {**VALUE, "id": "c"},
            },
        ],
    }
    parsed = parse_payload(body)
    assert [p.dedupe_key for p in parsed] == [
        "ig:comment:17841:a",
        "ig:comment:17841:b",
        "ig:dm:17841:m1",
        "ig:dm:17841:m2",
        "ig:comment:17841:c",
    ]
    assert [p.event.standby for p in parsed] == [False, False, False, True, False]


def test_unknown_fields_are_kept_and_unknown_kinds_are_unknown_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841",
                "time": 1700000000,
                "changes": [
                    {"field": "comments", "value": {**VALUE, "brand_new": {"x": 1}}},
                    {"field": "story_insights", "value": {"media_id": "1", "reach": 4}},
                ],
                "messaging": [
                    {
                        "sender": {"id": "55"},
                        "recipient": {"id": "17841"},
                        "timestamp": 1700000000100,
                        "optin": {"type": "notification_messages"},
                    }
                ],
            }
        ],
    }
    with caplog.at_level("INFO"):
        parsed = parse_payload(body)
    assert [p.event.kind for p in parsed] == ["comment", "unknown", "unknown"]
    assert parsed[0].event.extra == {"brand_new": {"x": 1}}
    insight = parsed[1].event.model_dump()
    assert insight["field"] == "story_insights"
    assert insight["raw"] == {"field": "story_insights", "value": {"media_id": "1", "reach": 4}}
    assert parsed[2].event.model_dump()["raw"]["optin"] == {"type": "notification_messages"}
    # stable keys: the same unknown item delivered again is the same event
    again = parse_payload(json.loads(json.dumps(body)))
    assert [p.dedupe_key for p in again] == [p.dedupe_key for p in parsed]
    assert "unknown kind" in caplog.text


def test_other_objects_are_unknown() -> None:
    [p] = parse_payload({"object": "user", "entry": [{"id": "1", "changes": [{"field": "feed"}]}]})
    assert p.event.kind == "unknown"


def test_per_flow_keys_are_scoped() -> None:
    [p] = parse_payload(
        _comment({"id": "1", "field": "comments", "value": VALUE}), key_scope="flow:x"
    )
    assert p.dedupe_key == "ig:flow:x:comment:1:1790"


@pytest.mark.parametrize(
    ("stamp", "iso"),
    [
        (1700000000, "2023-11-14T22:13:20+00:00"),
        (1700000000123, "2023-11-14T22:13:20.123000+00:00"),
        ("1700000000", "2023-11-14T22:13:20+00:00"),
        ("2021-09-08T06:34:04+0000", "2021-09-08T06:34:04+00:00"),
        ("2021-09-08T08:34:04+02:00", "2021-09-08T06:34:04+00:00"),
        ("<TIME_META_SENT_THIS_NOTIFICATION>", None),
        (True, None),
    ],
)
def test_timestamps_in_every_unit_become_utc(stamp: Any, iso: str | None) -> None:
    [p] = parse_payload(_comment({"id": "1", "time": stamp, "field": "comments", "value": VALUE}))
    at = p.event.occurred_at
    assert (at.isoformat() if at else None) == iso


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe", b'"text"', b"42", b'{"entry": 5}'])
def test_bodies_of_no_webhook_shape_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedWebhookError):
        parse_body(body)


def test_reaction_keys_separate_react_and_unreact() -> None:
    def reaction(action: str, stamp: int) -> dict[str, Any]:
        body: dict[str, Any] = {"mid": "m9", "action": action}
        if action == "react":
            body.update(reaction="love", emoji="\u2764")
        return {
            "object": "instagram",
            "entry": [
                {
                    "id": "17841",
                    "messaging": [
                        {
                            "sender": {"id": "55"},
                            "recipient": {"id": "17841"},
                            "timestamp": stamp,
                            "reaction": body,
                        }
                    ],
                }
            ],
        }

    keys = {
        parse_payload(reaction(a, t))[0].dedupe_key
        for a, t in (("react", 1), ("unreact", 2), ("react", 3), ("react", 1))
    }
    assert len(keys) == 3


def test_a_dm_replying_to_a_message_keeps_the_replied_mid() -> None:
    """A DM that quotes an earlier message (``reply_to.mid``) is a plain DM, not a story
    reply, and says which message it answers."""
    item = {
        "sender": {"id": "8880001"},
        "recipient": {"id": "17841"},
        "timestamp": 1700000000123,
        "message": {"mid": "aWdfREPLY", "text": "yes please", "reply_to": {"mid": "aWdfFIRST"}},
    }
    [p] = parse_payload({"object": "instagram", "entry": [{"id": "17841", "messaging": [item]}]})
    event = p.event.model_dump()
    assert (event["kind"], event["text"], p.dedupe_key) == (
        "dm",
        "yes please",
        "ig:dm:17841:aWdfREPLY",
    )
    assert event["reply_to"] == {"mid": "aWdfFIRST", "story": None}
    assert not event["is_story_reply"] and event["account_id"] == "17841"
    assert "reply_to" not in event["extra"].get("message", {})
    assert parse_event(p.event.model_dump(mode="json")) == p.event


def _dm(sender: str, recipient: str, mid: str, **message: Any) -> dict[str, Any]:
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": 1700000000123,
        "message": {"mid": mid, "text": "hi", **message},
    }


def test_one_comment_or_message_for_two_accounts_is_an_event_per_account() -> None:
    """A comment tagging two connected accounts comes as one entry per account with the same
    comment id; a message to two accounts as the same mid with two recipients: each account's
    event has a key of its own, so neither is taken for a redelivery of the other."""
    comment = {"field": "comments", "value": VALUE}
    body = {
        "object": "instagram",
        "entry": [
            {"id": "17841", "changes": [comment], "messaging": [_dm("55", "17841", "m1")]},
            {"id": "17842", "changes": [comment], "messaging": [_dm("55", "17842", "m1")]},
        ],
    }
    parsed = parse_payload(body)
    assert [(p.event.account_id, p.dedupe_key) for p in parsed] == [
        ("17841", "ig:comment:17841:1790"),
        ("17841", "ig:dm:17841:m1"),
        ("17842", "ig:comment:17842:1790"),
        ("17842", "ig:dm:17842:m1"),
    ]


def test_conversations_are_threads_between_the_account_and_one_person() -> None:
    reply = {**VALUE, "id": "1791", "parent_id": "1790"}
    other = {**VALUE, "id": "1799"}
    mention = {"comment_id": "1793", "media_id": "1800"}
    reaction = {
        "sender": {"id": "55"},
        "recipient": {"id": "17841"},
        "timestamp": 1,
        "reaction": {"mid": "m1", "action": "react", "emoji": "\u2764"},
    }
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": "17841",
                "changes": [
                    {"field": "comments", "value": VALUE},
                    {"field": "comments", "value": reply},
                    {"field": "comments", "value": other},
                    {"field": "mentions", "value": mention},
                    {"field": "comments", "value": {**VALUE, "from": {"id": "17841"}}},
                ],
                "messaging": [
                    _dm("55", "17841", "m1"),
                    _dm("17841", "55", "m2", is_echo=True),
                    reaction,
                    _dm("56", "17841", "m3"),
                    {"sender": {"id": "55"}, "recipient": {"id": "17841"}, "optin": {}},
                ],
            },
            {"id": "0", "messaging": [_dm("55", "0", "m4")]},
        ],
    }
    keys = [p.conversation_key for p in parse_payload(body)]
    assert keys == [
        "comment:17841:1790",
        "comment:17841:1790",  # a reply is in its parent's thread
        "comment:17841:1799",
        "media:17841:1800",
        None,  # the account's own comment starts nothing, so nothing waits for it
        "dm:17841:55",
        None,  # an echo (the account's own message) starts nothing either
        "dm:17841:55",
        "dm:17841:56",
        None,  # unknown kind
        None,  # the dashboard's test
    ]
