"""Checking a custom field's value against its type, and the 24-hour window of a contact.

Pure functions, shared by the API (a person editing a profile), the ``contact.set_field`` node
(a templated value) and filters: a value is checked and made canonical the same way wherever
it comes from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from socialflow.contacts._models import FieldType

__all__ = [
    "MAX_TEXT",
    "WINDOW",
    "FieldValueError",
    "Window",
    "check_value",
    "value_text",
    "window",
]

#: longest text, email, phone or URL value a field holds
MAX_TEXT = 2000
#: Meta's standard messaging window after the person's last message
WINDOW = timedelta(hours=24)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE_NOISE = re.compile(r"[\s().-]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


class FieldValueError(ValueError):
    """A value does not fit its field's type; the message says what is allowed."""


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        msg = f"expected text, got {type(value).__name__}"
        raise FieldValueError(msg)
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        msg = f"is {len(text):,} characters long; at most {MAX_TEXT:,} are allowed"
        raise FieldValueError(msg)
    return text


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        msg = "expected a number, got a boolean"
        raise FieldValueError(msg)
    if isinstance(value, int | float):
        number: float | int = value
    else:
        text = _text(value)
        try:
            number = int(text) if re.fullmatch(r"[+-]?\d{1,18}", text) else float(text)
        except ValueError:
            msg = f"expected a number, got {text[:40]!r}"
            raise FieldValueError(msg) from None
    if isinstance(number, float) and not math.isfinite(number):
        msg = "expected a finite number"
        raise FieldValueError(msg)
    if abs(number) > 10**18:
        msg = "the number is out of range (at most 18 digits)"
        raise FieldValueError(msg)
    return number


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _text(value)
    if len(text) <= 32:
        try:
            return date.fromisoformat(text[:10]).isoformat()
        except ValueError:
            pass
    msg = f"expected a date as YYYY-MM-DD, got {text[:40]!r}"
    raise FieldValueError(msg)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    msg = f"expected true or false (yes/no, 1/0), got {text[:40]!r}"
    raise FieldValueError(msg)


def _email(value: Any) -> str:
    text = _text(value)
    if len(text) > 254 or not _EMAIL.match(text):
        msg = f"expected an email address such as name@example.com, got {text[:40]!r}"
        raise FieldValueError(msg)
    local, _, domain = text.rpartition("@")
    return f"{local}@{domain.lower()}"


def _phone(value: Any) -> str:
    text = _text(value)
    digits = _PHONE_NOISE.sub("", text)
    if not _PHONE.match(digits):
        msg = f"expected a phone number of 6 to 15 digits, optionally with +, got {text[:40]!r}"
        raise FieldValueError(msg)
    return digits


def _url(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    spaced = any(c.isspace() for c in text)
    if parts.scheme not in ("http", "https") or not parts.hostname or spaced:
        msg = f"expected an http:// or https:// URL, got {text[:40]!r}"
        raise FieldValueError(msg)
    return text


def check_value(field_type: str, value: Any, choices: Sequence[str] = ()) -> Any:
    """``value`` in its canonical form for a field of ``field_type``.

    Texts are stripped; numbers are int or float; dates ``YYYY-MM-DD``; booleans bool;
    emails keep the local part and lower-case the domain; phones keep digits and a leading
    ``+``; URLs must be http or https; a choice must be one of ``choices`` (exact text).

    Raises:
        FieldValueError: The value does not fit; the message says what is allowed.
    """
    kind = FieldType(field_type)
    if kind is FieldType.NUMBER:
        return _number(value)
    if kind is FieldType.DATE:
        return _date(value)
    if kind is FieldType.BOOLEAN:
        return _boolean(value)
    if kind is FieldType.EMAIL:
        return _email(value)
    if kind is FieldType.PHONE:
        return _phone(value)
    if kind is FieldType.URL:
        return _url(value)
    text = _text(value)
    if kind is FieldType.CHOICE and text not in choices:
        allowed = ", ".join(repr(c) for c in choices[:20])
        msg = f"expected one of {allowed}, got {text[:40]!r}"
        raise FieldValueError(msg)
    return text


def value_text(value: Any) -> str:
    """The text a canonical value is filtered by (``true``/``false`` for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class Window:
    """Meta's standard messaging window of a contact at a moment."""

    open: bool
    expires_at: datetime | None


def window(last_inbound_at: datetime | None, now: datetime) -> Window:
    """The window ``last_inbound_at`` opened, as it stands at ``now``."""
    if last_inbound_at is None:
        return Window(open=False, expires_at=None)
    expires = last_inbound_at + WINDOW
    return Window(open=now < expires, expires_at=expires)
