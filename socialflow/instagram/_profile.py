"""An account's ice breakers and persistent menu (Meta's ``messenger_profile``), each item a
postback whose payload a flow's DM trigger listens for (``include_postbacks``, keyword = payload).

Limits (PUBLISHING_MESSAGING.md part B): at most 4 ice breakers, under the ``default`` locale
Meta requires. The persistent menu's item cap on Instagram is unconfirmed; Messenger's 20 is
used. Question and item title lengths follow Messenger's (80 and 30 characters).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from socialflow.instagram._templates import Button

__all__ = ["IceBreaker", "MenuItem", "MessengerProfile", "profile_body", "read_profile"]

MAX_ICE_BREAKERS = 4
MAX_MENU_ITEMS = 20


class IceBreaker(BaseModel):
    """A question shown when someone opens a conversation; tapping it sends ``payload``."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=80, description="The question (80 chars).")
    payload: str = Field(min_length=1, max_length=1000, description="Sent back when tapped.")


class MenuItem(Button):
    """A persistent-menu item: opens a URL (``web_url``) or sends a postback."""

    title: str = Field(min_length=1, max_length=30, description="Item text (30 chars).")


class MessengerProfile(BaseModel):
    """An account's conversation entry points."""

    model_config = ConfigDict(extra="forbid")

    ice_breakers: list[IceBreaker] = Field(
        default_factory=list, max_length=MAX_ICE_BREAKERS, description="At most 4 questions."
    )
    persistent_menu: list[MenuItem] = Field(
        default_factory=list, max_length=MAX_MENU_ITEMS, description="At most 20 items."
    )


def profile_body(profile: MessengerProfile) -> dict[str, Any]:
    """The ``POST /<IG_ID>/messenger_profile`` body setting ``profile``."""
    body: dict[str, Any] = {"platform": "instagram"}
    if profile.ice_breakers:
        body["ice_breakers"] = [
            {
                "locale": "default",
                "call_to_actions": [
                    {"question": i.question, "payload": i.payload} for i in profile.ice_breakers
                ],
            }
        ]
    if profile.persistent_menu:
        body["persistent_menu"] = [
            {
                "locale": "default",
                "call_to_actions": [item.graph() for item in profile.persistent_menu],
            }
        ]
    return body


def read_profile(answer: dict[str, Any]) -> MessengerProfile:
    """The default-locale profile out of Meta's ``GET messenger_profile`` answer."""
    data = answer.get("data")
    fields = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else answer
    breakers: list[dict[str, Any]] = []
    menu: list[dict[str, Any]] = []
    for entry in fields.get("ice_breakers") or []:
        if isinstance(entry, dict) and entry.get("locale", "default") == "default":
            breakers = list(entry.get("call_to_actions") or [])
    for entry in fields.get("persistent_menu") or []:
        if isinstance(entry, dict) and entry.get("locale", "default") == "default":
            menu = list(entry.get("call_to_actions") or [])
    return MessengerProfile.model_validate({"ice_breakers": breakers, "persistent_menu": menu})
