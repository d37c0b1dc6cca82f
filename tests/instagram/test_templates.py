"""Buttons and cards are checked against Meta's limits before anything is sent, with the field
named; the emulator refuses what Meta would refuse."""

from __future__ import annotations

from typing import Any

import pytest

from socialflow.core.errors import UserError
from socialflow.instagram import check_buttons, check_cards
from socialflow.instagram._templates import button_template, generic_template

POSTBACK = {"type": "postback", "title": "Yes", "payload": "YES"}
LINK = {"type": "web_url", "title": "Shop", "url": "https://shop.example.com"}


def test_buttons_and_cards_become_meta_s_template_shapes() -> None:
    buttons = check_buttons([POSTBACK, LINK], text="Pick one")
    assert button_template("Pick one", buttons) == {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": "Pick one",
            "buttons": [
                {"type": "postback", "title": "Yes", "payload": "YES"},
                {"type": "web_url", "title": "Shop", "url": "https://shop.example.com"},
            ],
        },
    }
    cards = check_cards(
        [
            {
                "title": "Mug",
                "subtitle": "12 €",
                "image_url": "https://cdn.example.com/mug.jpg",
                "default_url": "https://shop.example.com/mug",
                "buttons": [POSTBACK],
            }
        ]
    )
    element = generic_template(cards)["payload"]["elements"][0]
    assert element["default_action"] == {"type": "web_url", "url": "https://shop.example.com/mug"}
    assert element["buttons"] == [POSTBACK]


@pytest.mark.parametrize(
    ("buttons", "text", "field"),
    [
        ([POSTBACK] * 4, "hi", "buttons"),
        ([POSTBACK], "", "text"),
        ([POSTBACK], "x" * 641, "text"),
        ([{**POSTBACK, "title": "x" * 21}], "hi", "buttons[0].title"),
        ([{"type": "postback", "title": "No payload"}], "hi", "buttons[0]"),
        ([{**LINK, "url": "javascript:alert(1)"}], "hi", "buttons[0]"),
        ([{**LINK, "payload": "extra"}], "hi", "buttons[0]"),
        ([{"type": "phone_number", "title": "Call", "payload": "+1"}], "hi", "buttons[0].type"),
        ([{**POSTBACK, "payload": "p" * 1001}], "hi", "buttons[0].payload"),
    ],
)
def test_bad_buttons_are_refused_with_the_field_named(
    buttons: list[Any], text: str, field: str
) -> None:
    with pytest.raises(UserError) as refused:
        check_buttons(buttons, text=text)
    assert refused.value.code == "instagram_invalid_template"
    assert refused.value.details["field"] == field
    assert repr(field) in refused.value.message


@pytest.mark.parametrize(
    ("cards", "field"),
    [
        ([], "cards"),
        ([{"title": "c"}] * 11, "cards"),
        ([{"title": "x" * 81}], "cards[0].title"),
        ([{"title": "ok"}, {"title": "ok", "subtitle": "s" * 81}], "cards[1].subtitle"),
        ([{"title": "ok", "image_url": "file:///etc/passwd"}], "cards[0]"),
        ([{"title": "ok", "buttons": [POSTBACK] * 4}], "cards[0].buttons"),
        ([{"title": "ok", "buttons": [{**LINK, "url": "ftp://x"}]}], "cards[0].buttons[0]"),
        ([{"title": "ok", "unknown": 1}], "cards[0].unknown"),
    ],
)
def test_bad_cards_are_refused_with_the_field_named(cards: list[Any], field: str) -> None:
    with pytest.raises(UserError) as refused:
        check_cards(cards)
    assert refused.value.details["field"] == field
