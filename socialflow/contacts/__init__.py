"""Contacts: the people each connected Instagram account meets, with tags and typed fields.

Written by the dispatcher from every event that names a person (``record_sightings``), read
by runs (``RunContact``: the ``contact`` templates see) and by the API.
"""

from __future__ import annotations

from socialflow.contacts._fields import (
    MAX_TEXT,
    WINDOW,
    FieldValueError,
    Window,
    check_value,
    value_text,
    window,
)
from socialflow.contacts._models import (
    Contact,
    ContactEvent,
    ContactField,
    ContactFieldValue,
    ContactSource,
    ContactTag,
    ContactTagLink,
    FieldType,
    contact_id,
)
from socialflow.contacts._profile import REFRESH_AFTER, ProfileReader
from socialflow.contacts._service import (
    TAG_NAME,
    RunContact,
    add_tags,
    check_field,
    check_tag_name,
    contact_view,
    remove_tags,
    set_field,
)
from socialflow.contacts._takeover import (
    MAX_TAKEOVER_MINUTES,
    is_taken_over,
    release,
    take_over,
    taken_over,
)
from socialflow.contacts._upsert import EventRef, Sighting, record_sightings, sighting

__all__ = [
    "MAX_TAKEOVER_MINUTES",
    "MAX_TEXT",
    "REFRESH_AFTER",
    "TAG_NAME",
    "WINDOW",
    "Contact",
    "ContactEvent",
    "ContactField",
    "ContactFieldValue",
    "ContactSource",
    "ContactTag",
    "ContactTagLink",
    "EventRef",
    "FieldType",
    "FieldValueError",
    "ProfileReader",
    "RunContact",
    "Sighting",
    "Window",
    "add_tags",
    "check_field",
    "check_tag_name",
    "check_value",
    "contact_id",
    "contact_view",
    "is_taken_over",
    "record_sightings",
    "release",
    "remove_tags",
    "set_field",
    "sighting",
    "take_over",
    "taken_over",
    "value_text",
    "window",
]
