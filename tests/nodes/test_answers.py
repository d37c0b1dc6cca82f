"""The ask node's answer checks, one kind at a time, with what they refuse."""

from __future__ import annotations

import pytest

from socialflow.nodes.builtins._answers import MAX_ANSWER_CHARS, check_answer


@pytest.mark.parametrize(
    ("expects", "text", "value"),
    [
        ("text", "  hello  ", "hello"),
        ("number", "3,5", 3.5),
        ("number", "-12", -12.0),
        ("email", "Ana@Example.COM", "Ana@example.com"),
        ("phone", "+33 (6) 12-34-56-78", "+33612345678"),
        ("url", "example.com/page", "https://example.com/page"),
        ("url", "http://shop.example.org", "http://shop.example.org"),
        ("date", "2026-12-31", "2026-12-31"),
        ("date", "31/12/2026", "2026-12-31"),
    ],
)
def test_valid_answers_are_normalised(expects: str, text: str, value: object) -> None:
    verdict = check_answer(expects, text, choices=[])  # type: ignore[arg-type]
    assert verdict.valid, verdict.reason
    assert verdict.value == value


@pytest.mark.parametrize(
    ("expects", "text"),
    [
        ("text", "   "),
        ("text", None),
        ("number", "twelve"),
        ("number", "nan"),
        ("number", "1e999"),
        ("email", "nope"),
        ("email", "a@"),
        ("phone", "12"),
        ("phone", "call me maybe"),
        ("url", "javascript:alert(1)"),
        ("url", "not a url"),
        ("date", "tomorrow"),
        ("date", "2026-02-30"),
    ],
)
def test_invalid_answers_say_why(expects: str, text: str | None) -> None:
    verdict = check_answer(expects, text, choices=[])  # type: ignore[arg-type]
    assert not verdict.valid and verdict.value is None
    assert verdict.reason


def test_a_choice_matches_text_or_payload_case_insensitively() -> None:
    choices = ["Small", "Large"]
    assert check_answer("choice", " large ", choices=choices).value == "Large"
    assert check_answer("choice", "whatever", payload="SMALL", choices=choices).value == "Small"
    refused = check_answer("choice", "medium", choices=choices)
    assert not refused.valid and "Small, Large" in (refused.reason or "")


def test_a_huge_answer_is_refused_not_kept() -> None:
    verdict = check_answer("text", "x" * (MAX_ANSWER_CHARS + 1), choices=[])
    assert not verdict.valid and str(MAX_ANSWER_CHARS) in (verdict.reason or "")
