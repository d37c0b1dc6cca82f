"""Checking a contact's answer to a question: text, number, email, phone, URL, date, choice.

Each check takes the reply's text (or the payload of a tapped quick reply or button) and
returns the normalised answer, or why it is not one, in words the retry prompt may show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

__all__ = ["MAX_ANSWER_CHARS", "Expects", "Verdict", "check_answer"]

Expects = Literal["text", "number", "email", "phone", "url", "date", "choice"]
#: longest answer kept; an Instagram DM carries at most 1000 bytes anyway
MAX_ANSWER_CHARS = 1000
_PHONE_CHARS = re.compile(r"[\s().\-/]")
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d %B %Y", "%B %d %Y")


@dataclass(frozen=True)
class Verdict:
    """A checked answer: ``valid`` with its normalised ``value``, or ``reason`` why not."""

    valid: bool
    value: str | float | None = None
    reason: str | None = None


def check_answer(
    expects: Expects, text: str | None, *, payload: str | None = None, choices: list[str]
) -> Verdict:
    """Check one reply against what the question expects.

    Args:
        expects: The kind of answer wanted.
        text: The reply's text (None for a sticker, image, …).
        payload: The payload of a tapped quick reply or postback button, if any.
        choices: The accepted answers when ``expects`` is ``choice`` (matched case-insensitively
            against the text, the payload or the tapped button's title).
    """
    raw = (text or "").strip()
    if expects == "choice":
        return _choice(raw, payload, choices)
    if not raw:
        return Verdict(False, reason="the reply has no text")
    if len(raw) > MAX_ANSWER_CHARS:
        return Verdict(False, reason=f"the reply is longer than {MAX_ANSWER_CHARS} characters")
    if expects == "text":
        return Verdict(True, raw)
    if expects == "number":
        return _number(raw)
    if expects == "email":
        try:
            found = validate_email(raw, check_deliverability=False)
        except EmailNotValidError:
            return Verdict(False, reason="that is not an email address")
        return Verdict(True, found.normalized)
    if expects == "phone":
        digits = _PHONE_CHARS.sub("", raw)
        plus = digits.startswith("+")
        digits = digits.removeprefix("+")
        if not digits.isdigit() or not 7 <= len(digits) <= 15:
            return Verdict(False, reason="that is not a phone number (7 to 15 digits)")
        return Verdict(True, ("+" if plus else "") + digits)
    if expects == "url":
        candidate = raw if "://" in raw else f"https://{raw}"
        parts = urlsplit(candidate)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or "." not in host or " " in raw:
            return Verdict(False, reason="that is not a web address")
        return Verdict(True, candidate)
    return _date(raw)


def _number(raw: str) -> Verdict:
    cleaned = raw.replace(" ", "").replace("\u00a0", "")
    if cleaned.count(",") == 1 and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # 3,5 written with a decimal comma
    try:
        value = float(cleaned)
    except ValueError:
        return Verdict(False, reason="that is not a number")
    if value != value or value in (float("inf"), float("-inf")):
        return Verdict(False, reason="that is not a number")
    return Verdict(True, value)


def _date(raw: str) -> Verdict:
    try:
        return Verdict(True, date.fromisoformat(raw).isoformat())
    except ValueError:
        pass
    for form in _DATE_FORMATS:
        try:
            return Verdict(True, datetime.strptime(raw, form).date().isoformat())
        except ValueError:
            continue
    return Verdict(False, reason="that is not a date (for example 2026-12-31 or 31/12/2026)")


def _choice(raw: str, payload: str | None, choices: list[str]) -> Verdict:
    wanted = {c.casefold(): c for c in choices}
    for candidate in (payload, raw):
        if candidate and candidate.strip().casefold() in wanted:
            return Verdict(True, wanted[candidate.strip().casefold()])
    return Verdict(False, reason=f"please answer one of: {', '.join(choices)}")
