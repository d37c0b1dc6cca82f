"""Custom field values are checked against their type, and the 24-hour window is computed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialflow.contacts import MAX_TEXT, FieldValueError, check_value, value_text, window


@pytest.mark.parametrize(
    ("kind", "given", "stored"),
    [
        ("text", "  hello  ", "hello"),
        ("text", 42, "42"),
        ("number", "42", 42),
        ("number", "-3.5", -3.5),
        ("number", 7, 7),
        ("date", "2026-12-07", "2026-12-07"),
        ("date", "2026-12-07T10:30:00+02:00", "2026-12-07"),
        ("boolean", "Yes", True),
        ("boolean", "0", False),
        ("boolean", True, True),
        ("email", "Ann@Example.COM", "Ann@example.com"),
        ("phone", "+49 (30) 123-4567", "+49301234567"),
        ("url", "https://example.com/a?b=c", "https://example.com/a?b=c"),
        ("choice", "gold", "gold"),
    ],
)
def test_values_are_stored_in_their_canonical_form(kind: str, given: Any, stored: Any) -> None:
    assert check_value(kind, given, ["gold", "silver"]) == stored


@pytest.mark.parametrize(
    ("kind", "given", "says"),
    [
        ("number", "twelve", "expected a number"),
        ("number", "nan", "finite"),
        ("number", "inf", "finite"),
        ("number", True, "boolean"),
        ("number", "9" * 40, "range"),
        ("date", "07/12/2026", "YYYY-MM-DD"),
        ("date", "2026-13-01", "YYYY-MM-DD"),
        ("boolean", "maybe", "true or false"),
        ("email", "not-an-email", "email address"),
        ("email", "a@b", "email address"),
        ("email", "x" * 300 + "@example.com", "email address"),
        ("phone", "call me", "phone number"),
        ("phone", "12", "phone number"),
        ("url", "javascript:alert(1)", "http:// or https://"),
        ("url", "ftp://example.com", "http:// or https://"),
        ("url", "https://exa mple.com", "http:// or https://"),
        ("choice", "bronze", "expected one of 'gold', 'silver'"),
        ("choice", "Gold", "expected one of"),
        ("text", {"nested": "object"}, "expected text"),
        ("text", ["a", "list"], "expected text"),
    ],
)
def test_values_that_do_not_fit_say_what_is_allowed(kind: str, given: Any, says: str) -> None:
    with pytest.raises(FieldValueError, match=says):
        check_value(kind, given, ["gold", "silver"])


def test_a_huge_value_is_refused_by_size() -> None:
    with pytest.raises(FieldValueError, match=f"at most {MAX_TEXT:,}"):
        check_value("text", "x" * (MAX_TEXT + 1))
    assert check_value("text", "x" * MAX_TEXT) == "x" * MAX_TEXT


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="colour"):
        check_value("colour", "red")


def test_filter_text_of_values() -> None:
    assert value_text(True) == "true"
    assert value_text(False) == "false"
    assert value_text(3) == "3"


def test_the_window_is_open_for_24_hours_after_the_last_inbound_message() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert window(None, now).open is False
    assert window(None, now).expires_at is None
    recent = window(now - timedelta(hours=23, minutes=59), now)
    assert recent.open and recent.expires_at == now + timedelta(minutes=1)
    old = window(now - timedelta(hours=24), now)
    assert not old.open and old.expires_at == now
