"""What the contact endpoints take and send."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from socialflow.contacts import MAX_TAKEOVER_MINUTES, FieldType

__all__ = [
    "BulkTagRequest",
    "BulkTagResult",
    "ContactDetail",
    "ContactFieldCreate",
    "ContactFieldRead",
    "ContactFieldUpdate",
    "ContactFilter",
    "ContactPage",
    "ContactQuery",
    "ContactRead",
    "ContactTagCreate",
    "ContactTagRead",
    "ContactTagUpdate",
    "ContactUpdate",
    "EraseReport",
    "TimelineItem",
    "WindowRead",
]

_KEY = r"^[a-z][a-z0-9_]{0,39}$"
_TAG = Field(min_length=1, max_length=60, description="A tag name.")
Source = Literal[
    "comment", "live_comment", "dm", "story_reply", "story_mention", "postback", "referral", "ad"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactFilter(_Strict):
    """Which contacts (every given filter must match)."""

    q: str | None = Field(
        default=None, max_length=100, description="Part of the username or name (any case)."
    )
    tag: list[str] | None = Field(
        default=None, max_length=20, description="Contacts with every one of these tags."
    )
    field: list[str] | None = Field(
        default=None,
        max_length=20,
        description="key=value: contacts whose custom field key has exactly that value.",
    )
    source: list[Source] | None = Field(
        default=None, description="Contacts who first came this way (repeat the parameter)."
    )
    account: str | None = Field(
        default=None, max_length=64, description="Contacts of this account (ig_user_id)."
    )
    seen_after: datetime | None = Field(default=None, description="Last seen at or after this.")
    seen_before: datetime | None = Field(default=None, description="Last seen before this.")
    window: Literal["open", "closed"] | None = Field(
        default=None, description="Whether Meta's 24-hour messaging window is open now."
    )
    opted_out: bool | None = Field(default=None, description="Opted out or not.")

    @field_validator("seen_after", "seen_before")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("field")
    @classmethod
    def _key_value(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            key, sep, text = item.partition("=")
            if not sep or not key or len(text) > 2000:
                msg = f"field filter {item[:60]!r}: expected key=value (value up to 2,000 chars)"
                raise ValueError(msg)
        return value


class ContactQuery(ContactFilter):
    """A page of contacts, most recently seen first."""

    limit: int = Field(default=50, ge=1, le=200, description="Page size.")
    offset: int = Field(default=0, ge=0, le=1_000_000, description="Contacts to skip.")


class WindowRead(BaseModel):
    """Meta's standard messaging window: open for 24 hours after the person's last message."""

    open: bool
    expires_at: datetime | None


class ContactRead(BaseModel):
    """One contact in the list."""

    id: uuid.UUID
    account_id: str = Field(description="The connected account (ig_user_id) that met them.")
    igsid: str = Field(description="The person's Instagram-scoped id for that account.")
    username: str | None
    name: str | None
    profile_pic: str | None
    source: str = Field(description="How they first came: comment, dm, story_reply, ad, ...")
    first_seen_at: datetime
    last_seen_at: datetime
    last_inbound_at: datetime | None = Field(description="Their last message, tap or referral.")
    window: WindowRead
    opted_out: bool
    tags: list[str]
    fields: dict[str, Any] = Field(description="Custom field values by key (set ones only).")
    taken_over: bool = Field(
        default=False, description="A person took the conversation over: flows skip them."
    )
    takeover_until: datetime | None = Field(
        default=None, description="When automation comes back (None: when released)."
    )


class ContactPage(BaseModel):
    """A page of contacts."""

    items: list[ContactRead]
    total: int
    limit: int
    offset: int


class TimelineItem(BaseModel):
    """Something that happened with the contact: an event of theirs, a run it started, or a
    message sent to them (the send ledger)."""

    type: Literal["event", "run", "message"]
    at: datetime
    id: uuid.UUID
    kind: str = Field(description="Event kind, the run's flow, or the ledger action.")
    direction: Literal["in", "out"] | None = None
    text: str | None = Field(default=None, description="The message or comment text, if any.")
    status: str | None = None
    execution_id: uuid.UUID | None = None


class ContactDetail(ContactRead):
    """One contact with its profile state and timeline, newest first."""

    profile_error: str | None
    profile_fetched_at: datetime | None
    timeline: list[TimelineItem]


class ContactUpdate(_Strict):
    """Changes to one contact's tags, fields and opt-out."""

    add_tags: list[str] = Field(default_factory=list, max_length=50, description="Tags to add.")
    remove_tags: list[str] = Field(
        default_factory=list, max_length=50, description="Tags to remove."
    )
    fields: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        description="Field key → value (checked against the field's type); null clears it.",
    )
    opted_out: bool | None = Field(default=None, description="Set or clear the opt-out.")


class BulkTagRequest(_Strict):
    """Tag or untag many contacts: by ids, or every contact a filter matches."""

    action: Literal["add", "remove"]
    tags: list[str] = Field(min_length=1, max_length=20, description="Tag names.")
    ids: list[uuid.UUID] | None = Field(
        default=None, max_length=1000, description="These contacts (of this workspace)."
    )
    filter: ContactFilter | None = Field(
        default=None, description="Every contact matching this filter."
    )

    @model_validator(mode="after")
    def _one_target(self) -> BulkTagRequest:
        if (self.ids is None) == (self.filter is None):
            msg = "give exactly one of 'ids' or 'filter'"
            raise ValueError(msg)
        return self


class BulkTagResult(BaseModel):
    """What a bulk tag change touched."""

    matched: int = Field(description="Contacts the ids or filter matched in this workspace.")
    tags: list[str]


class ContactTagCreate(_Strict):
    """A new tag."""

    name: str = _TAG


class ContactTagUpdate(_Strict):
    """A tag's new name."""

    name: str = _TAG


class ContactTagRead(BaseModel):
    """A tag of the workspace and how many contacts have it."""

    id: uuid.UUID
    name: str
    contacts: int
    created_at: datetime


class ContactFieldCreate(_Strict):
    """A new custom field."""

    key: str = Field(pattern=_KEY, description="How templates name it: contact.fields.<key>.")
    label: str = Field(min_length=1, max_length=100, description="What people see.")
    type: FieldType = Field(description="The values it takes.")
    choices: list[str] = Field(
        default_factory=list, max_length=100, description="For a choice field: the options."
    )

    @model_validator(mode="after")
    def _choices(self) -> ContactFieldCreate:
        _check_choices(self.type, self.choices)
        return self


class ContactFieldUpdate(_Strict):
    """A field's new label or choices (its key and type never change)."""

    label: str | None = Field(default=None, min_length=1, max_length=100)
    choices: list[str] | None = Field(default=None, max_length=100)


class ContactFieldRead(BaseModel):
    """A custom field of the workspace."""

    id: uuid.UUID
    key: str
    label: str
    type: str
    choices: list[str]
    created_at: datetime


def _check_choices(kind: FieldType, choices: list[str]) -> None:
    if kind is FieldType.CHOICE and not choices:
        msg = "a choice field needs at least one entry in 'choices'"
        raise ValueError(msg)
    if kind is not FieldType.CHOICE and choices:
        msg = f"'choices' is only for choice fields, not {kind.value}"
        raise ValueError(msg)
    for choice in choices:
        if not choice.strip() or len(choice) > 100:
            msg = "each choice is 1 to 100 characters"
            raise ValueError(msg)
    if len(set(choices)) != len(choices):
        msg = "choices must be different from each other"
        raise ValueError(msg)


class EraseReport(BaseModel):
    """What erasing a contact removed, and what was kept without personal data."""

    contact_id: uuid.UUID
    erased: bool
    field_values_deleted: int
    tags_removed: int
    events_scrubbed: int = Field(description="Stored events whose personal data was replaced.")
    runs_scrubbed: int = Field(description="Runs whose trigger and node data were replaced.")
    messages_scrubbed: int = Field(description="Ledger entries whose texts were replaced.")
    kept: dict[str, int] = Field(
        description="What is kept, as counts: the event, run and ledger rows, without their "
        "personal data (so usage and limits stay right)."
    )


class TakeoverRequest(_Strict):
    """Take a contact's conversation over: flows skip them for a time or until released."""

    minutes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TAKEOVER_MINUTES,
        description="How long, 1 minute to 30 days; null: until released.",
    )


class LiveReply(_Strict):
    """A message a person of the workspace sends a contact from the app."""

    text: str = Field(min_length=1, max_length=1000, description="The message (1000 characters).")
    client_id: uuid.UUID = Field(
        description="Chosen by the app per message: sending again with the same id sends once."
    )
    human_agent: bool = Field(
        default=False,
        description="Send with Meta's HUMAN_AGENT tag (up to 7 days after their last message; "
        "the app must be approved for it).",
    )


class LiveReplyResult(BaseModel):
    """What became of a reply: sent, sandboxed, queued, or refused and why."""

    status: str
    ledger_id: uuid.UUID
    duplicate: bool = Field(description="This client_id was sent before; nothing new was sent.")
    policy_reason: str | None = Field(description="Why Meta's rules refuse it, when they do.")
