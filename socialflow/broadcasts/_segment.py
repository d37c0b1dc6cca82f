"""Segments of contacts: the filter a broadcast goes to, as SQL, and why a contact of it can
or cannot be messaged now (Meta's windows and the contact's opt-out), counted in SQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from socialflow.contacts import (
    Contact,
    ContactField,
    ContactFieldValue,
    ContactSource,
    ContactTag,
    ContactTagLink,
)

__all__ = [
    "ELIGIBLE",
    "REASONS",
    "FieldCondition",
    "Segment",
    "count_by_reason",
    "reason_of",
    "reason_sql",
    "segment_conditions",
]

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
ELIGIBLE = "eligible"
#: why a contact of the segment is not messaged, in the words the API and the page use
REASONS = {
    "opted_out": "the contact opted out of messages",
    "never_messaged": "the contact never messaged the account, so no messaging window is open",
    "human_agent_only": (
        "last message 24 h to 7 days ago: only a person may answer (HUMAN_AGENT tag), "
        "never a broadcast"
    ),
    "outside_window": "last message more than 7 days ago: outside every messaging window",
}

TagName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
FieldKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]


class FieldCondition(BaseModel):
    """A condition on a custom field's value (compared as its text)."""

    model_config = ConfigDict(extra="forbid")

    key: FieldKey = Field(description="The field's key (lowercase letters, digits, _).")
    op: Literal["eq", "neq", "contains", "set", "unset"] = Field(
        default="eq", description="eq, neq, contains (case-insensitive), set or unset."
    )
    value: str = Field(default="", max_length=200, description="The text compared with.")


class Segment(BaseModel):
    """Which contacts of the account a broadcast goes to; every part narrows it."""

    model_config = ConfigDict(extra="forbid")

    tags_any: list[TagName] = Field(
        default_factory=list, max_length=20, description="Contacts with at least one of these."
    )
    tags_all: list[TagName] = Field(
        default_factory=list, max_length=20, description="Contacts with every one of these."
    )
    fields: list[FieldCondition] = Field(
        default_factory=list, max_length=10, description="Every condition must hold."
    )
    seen_after: datetime | None = Field(default=None, description="Last seen at or after.")
    seen_before: datetime | None = Field(default=None, description="Last seen before.")
    sources: list[ContactSource] = Field(
        default_factory=list, max_length=8, description="How they first came (any of these)."
    )

    @model_validator(mode="after")
    def _range(self) -> Segment:
        if self.seen_after and self.seen_before and self.seen_after >= self.seen_before:
            msg = "field 'seen_after' must be before 'seen_before'"
            raise ValueError(msg)
        return self


def _tagged(workspace_id: uuid.UUID, names: list[str]) -> ColumnElement[bool]:
    return Contact.id.in_(
        select(ContactTagLink.contact_id)
        .join(ContactTag, ContactTag.id == ContactTagLink.tag_id)
        .where(ContactTag.workspace_id == workspace_id, ContactTag.name.in_(names))
    )


def _field(workspace_id: uuid.UUID, condition: FieldCondition) -> ColumnElement[bool]:
    valued = (
        select(ContactFieldValue.contact_id)
        .join(ContactField, ContactField.id == ContactFieldValue.field_id)
        .where(ContactField.workspace_id == workspace_id, ContactField.key == condition.key)
    )
    if condition.op == "eq":
        valued = valued.where(ContactFieldValue.value_text == condition.value)
    elif condition.op == "contains":
        valued = valued.where(
            ContactFieldValue.value_text.icontains(condition.value, autoescape=True)
        )
    elif condition.op == "neq":
        valued = valued.where(ContactFieldValue.value_text == condition.value)
        return Contact.id.not_in(valued)
    elif condition.op == "unset":
        return Contact.id.not_in(valued)
    return Contact.id.in_(valued)


def segment_conditions(
    workspace_id: uuid.UUID, ig_user_id: str, segment: Segment
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a segment: the account's contacts in ``workspace_id`` that match.

    Every value is a bound parameter; names are compared, never spliced into SQL.
    """
    where: list[ColumnElement[bool]] = [
        Contact.workspace_id == workspace_id,
        Contact.account_id == ig_user_id,
    ]
    if segment.tags_any:
        where.append(_tagged(workspace_id, segment.tags_any))
    for name in dict.fromkeys(segment.tags_all):
        where.append(_tagged(workspace_id, [name]))
    where.extend(_field(workspace_id, c) for c in segment.fields)
    if segment.seen_after:
        where.append(Contact.last_seen_at >= segment.seen_after)
    if segment.seen_before:
        where.append(Contact.last_seen_at < segment.seen_before)
    if segment.sources:
        where.append(Contact.source.in_([str(s) for s in segment.sources]))
    return where


def reason_sql(now: datetime) -> ColumnElement[str]:
    """Why a contact cannot be messaged by a broadcast at ``now``, or ``eligible``."""
    return case(
        (Contact.opted_out.is_(True), "opted_out"),
        (Contact.last_inbound_at.is_(None), "never_messaged"),
        (Contact.last_inbound_at > now - STANDARD_WINDOW, ELIGIBLE),
        (Contact.last_inbound_at > now - HUMAN_AGENT_WINDOW, "human_agent_only"),
        else_="outside_window",
    )


def reason_of(opted_out: bool, last_inbound_at: datetime | None, now: datetime) -> str:
    """The same verdict as ``reason_sql`` for one contact read at send time."""
    if opted_out:
        return "opted_out"
    if last_inbound_at is None:
        return "never_messaged"
    if last_inbound_at > now - STANDARD_WINDOW:
        return ELIGIBLE
    if last_inbound_at > now - HUMAN_AGENT_WINDOW:
        return "human_agent_only"
    return "outside_window"


async def count_by_reason(
    session: AsyncSession, where: list[ColumnElement[bool]], now: datetime
) -> dict[str, int]:
    """How many contacts matching ``where`` fall under each verdict (one GROUP BY query)."""
    # grouped over a subquery: PostgreSQL would not match a CASE with bound parameters in
    # the select list to the same CASE in GROUP BY
    verdicts = select(reason_sql(now).label("reason")).where(*where).subquery()
    rows = await session.execute(
        select(verdicts.c.reason, func.count()).group_by(verdicts.c.reason)
    )
    return {str(r): int(n) for r, n in rows.tuples()}
