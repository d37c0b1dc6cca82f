"""Buttons and the generic template of Instagram DMs, checked before sending.

Limits (PUBLISHING_MESSAGING.md part B): a button template carries text and at most 3 buttons;
a generic template at most 10 cards, each with a title and subtitle of at most 80 characters,
an image, an optional default action and at most 3 buttons; only ``web_url`` and ``postback``
buttons exist on Instagram. Button titles follow the quick-reply limit (20 characters), and
text under buttons at most 640 characters (what Instagram shows; ManyChat enforces the same).
A problem is reported with the field's path (``cards[2].buttons[0].url``) and what is allowed.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, model_validator

from socialflow.core.errors import UserError

__all__ = [
    "MAX_BUTTONS",
    "MAX_BUTTON_TEXT_CHARS",
    "MAX_CARDS",
    "Button",
    "Card",
    "button_template",
    "check_buttons",
    "check_cards",
    "generic_template",
]

MAX_BUTTONS = 3
MAX_CARDS = 10
MAX_BUTTON_TEXT_CHARS = 640
MAX_TITLE_CHARS = 80
MAX_BUTTON_TITLE_CHARS = 20
MAX_PAYLOAD_CHARS = 1000
MAX_URL_CHARS = 2000


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        msg = f"{url[:100]!r} is not an http(s) URL"
        raise ValueError(msg)
    return url


class Button(BaseModel):
    """A button under a DM or a card: opens a URL (``web_url``) or sends ``payload`` back
    to the account as a postback webhook (``postback``)."""

    model_config = {"extra": "forbid"}

    type: Literal["web_url", "postback"] = Field(description="web_url or postback.")
    title: str = Field(
        min_length=1, max_length=MAX_BUTTON_TITLE_CHARS, description="Button text (20 chars)."
    )
    url: str | None = Field(
        default=None, max_length=MAX_URL_CHARS, description="For web_url: the http(s) URL."
    )
    payload: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PAYLOAD_CHARS,
        description="For postback: sent back when tapped (1000 chars).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Button:
        if self.type == "web_url":
            if not self.url:
                msg = "a web_url button needs 'url'"
                raise ValueError(msg)
            try:
                _check_url(self.url)
            except ValueError as exc:
                msg = f"'url': {exc}"
                raise ValueError(msg) from exc
            if self.payload is not None:
                msg = "a web_url button takes no 'payload'"
                raise ValueError(msg)
        else:
            if not self.payload:
                msg = "a postback button needs 'payload'"
                raise ValueError(msg)
            if self.url is not None:
                msg = "a postback button takes no 'url'"
                raise ValueError(msg)
        return self

    def graph(self) -> dict[str, str]:
        """The button as Meta's Send API takes it."""
        button = {"type": self.type, "title": self.title}
        if self.type == "web_url" and self.url is not None:
            button["url"] = self.url
        elif self.payload is not None:
            button["payload"] = self.payload
        return button


class Card(BaseModel):
    """One card (``element``) of a generic template."""

    model_config = {"extra": "forbid"}

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS, description="80 characters.")
    subtitle: str | None = Field(
        default=None, max_length=MAX_TITLE_CHARS, description="80 characters."
    )
    image_url: str | None = Field(
        default=None, max_length=MAX_URL_CHARS, description="http(s) URL of the image."
    )
    default_url: str | None = Field(
        default=None, max_length=MAX_URL_CHARS, description="Opened when the card is tapped."
    )
    buttons: list[Button] = Field(default_factory=list, max_length=MAX_BUTTONS)

    @model_validator(mode="after")
    def _urls(self) -> Card:
        for name in ("image_url", "default_url"):
            value = getattr(self, name)
            if value is not None:
                try:
                    _check_url(value)
                except ValueError as exc:
                    msg = f"{name}: {exc}"
                    raise ValueError(msg) from exc
        return self

    def graph(self) -> dict[str, Any]:
        """The card as Meta's Send API takes it."""
        element: dict[str, Any] = {"title": self.title}
        if self.subtitle:
            element["subtitle"] = self.subtitle
        if self.image_url:
            element["image_url"] = self.image_url
        if self.default_url:
            element["default_action"] = {"type": "web_url", "url": self.default_url}
        if self.buttons:
            element["buttons"] = [b.graph() for b in self.buttons]
        return element


def _refuse(field: str, exc: ValidationError) -> UserError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in (field, *first["loc"]) if p != "")
    where = where.replace(".[", "[")
    for index in {p for p in first["loc"] if isinstance(p, int)}:
        where = where.replace(f".{index}", f"[{index}]")
    message = str(first["msg"]).removeprefix("Value error, ")
    msg = f"field {where!r}: {message}"
    return UserError(msg, code="instagram_invalid_template", details={"field": where})


def check_buttons(buttons: list[Any], *, text: str | None, field: str = "buttons") -> list[Button]:
    """``buttons`` as checked ``Button`` objects for a button template carrying ``text``.

    Raises:
        UserError: Too many buttons, a bad button, or text Instagram does not show under
            buttons; the message names the field.
    """
    if len(buttons) > MAX_BUTTONS:
        msg = (
            f"field {field!r}: {len(buttons)} buttons given; Instagram allows at most {MAX_BUTTONS}"
        )
        raise UserError(msg, code="instagram_invalid_template", details={"field": field})
    if not text:
        msg = "field 'text': buttons need text above them"
        raise UserError(msg, code="instagram_invalid_template", details={"field": "text"})
    if len(text) > MAX_BUTTON_TEXT_CHARS:
        msg = (
            f"field 'text': {len(text)} characters; text with buttons may have at most "
            f"{MAX_BUTTON_TEXT_CHARS}"
        )
        raise UserError(msg, code="instagram_invalid_template", details={"field": "text"})
    checked = []
    for n, button in enumerate(buttons):
        try:
            checked.append(Button.model_validate(button))
        except ValidationError as exc:
            where = f"{field}[{n}]"
            raise _refuse(where, exc) from exc
    return checked


def check_cards(cards: list[Any], *, field: str = "cards") -> list[Card]:
    """``cards`` as checked ``Card`` objects for a generic template.

    Raises:
        UserError: No card, more than 10, or a bad card; the message names the field.
    """
    if not cards or len(cards) > MAX_CARDS:
        msg = f"field {field!r}: {len(cards)} cards given; a template has 1 to {MAX_CARDS}"
        raise UserError(msg, code="instagram_invalid_template", details={"field": field})
    checked = []
    for n, card in enumerate(cards):
        try:
            checked.append(Card.model_validate(card))
        except ValidationError as exc:
            where = f"{field}[{n}]"
            raise _refuse(where, exc) from exc
    return checked


def button_template(text: str, buttons: list[Button]) -> dict[str, Any]:
    """The ``message.attachment`` of a button template."""
    return {
        "type": "template",
        "payload": {
            "template_type": "button",
            "text": text,
            "buttons": [b.graph() for b in buttons],
        },
    }


def generic_template(cards: list[Card]) -> dict[str, Any]:
    """The ``message.attachment`` of a generic template."""
    return {
        "type": "template",
        "payload": {"template_type": "generic", "elements": [c.graph() for c in cards]},
    }
