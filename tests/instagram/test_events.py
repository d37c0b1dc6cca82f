"""The normalised event models: one per kind, JSON round trips, the fields nodes read."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from socialflow.instagram import (
    EVENT_KINDS,
    AnyInstagramEvent,
    CommentEvent,
    DMEvent,
    EchoEvent,
    InstagramEvent,
    ReplyTo,
    StoryRef,
    parse_event,
)


def test_one_model_per_kind() -> None:
    union = typing.get_args(typing.get_args(AnyInstagramEvent)[0])
    kinds = [m.model_fields["kind"].default for m in union]
    assert sorted(kinds) == sorted(EVENT_KINDS)


def test_common_fields_and_iso_utc_time() -> None:
    event = CommentEvent(
        account_id="17841",
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        comment_id="c",
        text="hi",
    )
    dumped = event.model_dump(mode="json")
    assert dumped["occurred_at"] == "2026-01-02T03:04:05Z"
    for name in ("kind", "account_id", "occurred_at", "is_self", "is_test", "extra"):
        assert name in dumped
    assert parse_event(dumped) == event
    assert isinstance(parse_event(dumped), CommentEvent)


def test_echo_is_self_by_default_and_parses_as_echo() -> None:
    echo = EchoEvent(account_id="1", message_id="m", text="our reply")
    assert echo.is_self
    back = parse_event(echo.model_dump(mode="json"))
    assert isinstance(back, EchoEvent) and back.kind == "echo"


def test_dm_story_reply_shape() -> None:
    event = DMEvent(
        account_id="1",
        message_id="m",
        reply_to=ReplyTo(story=StoryRef(id="s", url="https://cdn/s")),
        is_story_reply=True,
    )
    dumped = event.model_dump(mode="json")
    assert dumped["reply_to"] == {"mid": None, "story": {"id": "s", "url": "https://cdn/s"}}


def test_unknown_payloads_are_refused() -> None:
    with pytest.raises(ValidationError):
        parse_event({"kind": "weather", "account_id": "1"})
    with pytest.raises(ValidationError):
        parse_event({"kind": "dm", "account_id": "1", "surprise": True})


def test_every_model_is_an_instagram_event() -> None:
    union = typing.get_args(typing.get_args(AnyInstagramEvent)[0])
    assert all(issubclass(m, InstagramEvent) for m in union)
