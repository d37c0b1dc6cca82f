"""Strict JSON for untrusted input: what every body reader decodes with, and what the engine
checks a payload against before handing it on.

Python's ``json`` accepts more than the parts behind it can carry: nesting a thousand levels
deep (its own limit is the interpreter's recursion limit, so 100,000 levels raise
``RecursionError``; pydantic and orjson stop near 255), lone UTF-16 surrogate escapes such as
``"\\ud800"`` (UTF-8 cannot encode them, PostgreSQL refuses them), ``"\\u0000"`` (PostgreSQL's
``jsonb`` and ``text`` refuse NUL, so the app's database on PostgreSQL and Prefect's server
answer errors), ``NaN`` and ``Infinity`` (not JSON), and bytes that are not UTF-8. ``loads``
refuses all of them with a :class:`JSONInputError` whose ``code`` says which; ``check`` applies
the same rules to a value already decoded (a stored payload); ``storable`` repairs text for
records that must be written whatever they hold.

    JSONInputError              (UserError, code per problem)
    ├── malformed_body          not JSON at all (``JSONSyntaxError``)
    ├── json_too_deep           objects and arrays nested deeper than ``max_depth``
    ├── invalid_unicode         not UTF-8, a lone surrogate or a NUL in a string or key
    └── invalid_number          NaN, Infinity, a number too large to read
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from socialflow.core.errors import UserError

__all__ = [
    "MAX_DEPTH",
    "JSONInputError",
    "JSONSyntaxError",
    "check",
    "json_path",
    "loads",
    "storable",
    "within_depth",
]

#: how deep objects and arrays may nest in a body: Meta's webhooks need 8, generic webhook
#: senders rarely more than 20; the engine adds a few levels around a body, and everything
#: downstream (pydantic, orjson, PostgreSQL) stays far from its own limits
MAX_DEPTH = 64
# a lone surrogate can only come from a \uD800-\uDFFF escape: strict UTF-8 refuses encoded ones
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_PATH_CHARS = 160


class JSONInputError(UserError):
    """A JSON body or value that Socialflow refuses; ``code`` names the problem."""

    code = "malformed_body"


class JSONSyntaxError(JSONInputError):
    """The text is not JSON at all (a syntax error, an empty body)."""

    code = "malformed_body"


class _Refused(Exception):
    """A problem found while decoding; turned into a ``JSONInputError`` with the caller's words."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _no_constant(name: str) -> Any:
    msg = f"{name} is not a JSON number"
    raise _Refused(msg, code="invalid_number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        msg = f"the number {text[:40]} is too large for a 64-bit float"
        raise _Refused(msg, code="invalid_number")
    return value


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH, what: str = "the body") -> Any:
    """Decode untrusted JSON strictly.

    Args:
        data: The raw body (must be UTF-8) or text.
        max_depth: How deep objects and arrays may nest (the outermost one is level 1).
        what: How messages name the input (``"the body"``, ``"the webhook body"``).

    Returns:
        The decoded value.

    Raises:
        JSONSyntaxError: Not JSON.
        JSONInputError: JSON that nests too deep (``json_too_deep``), is not UTF-8 or holds a
            lone surrogate or a NUL (``invalid_unicode``), or holds NaN, Infinity or an
            overflowing number (``invalid_number``).
    """
    if isinstance(data, bytes | bytearray | memoryview):
        try:
            # strict: json.loads(bytes) would let UTF-8-encoded surrogates through
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            msg = f"{what} is not UTF-8 (byte {exc.start}); send JSON encoded as UTF-8"
            raise JSONInputError(msg, code="invalid_unicode") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte-order mark is tolerated, as RFC 8259 allows parsers to
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except _Refused as exc:
        msg = f"{what}: {exc.reason}"
        raise JSONInputError(msg, code=exc.code) from None
    except RecursionError:
        # the decoder gave up hundreds of levels down: far beyond the limit either way
        msg = f"{what} nests objects and arrays deeper than {max_depth} levels"
        raise JSONInputError(msg, code="json_too_deep", details={"max_depth": max_depth}) from None
    except json.JSONDecodeError as exc:
        msg = f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        raise JSONSyntaxError(msg) from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        msg = f"{what} holds a number Socialflow cannot read: {str(exc)[:120]}"
        raise JSONInputError(msg, code="invalid_number") from None
    # cheap tests first: most bodies have fewer brackets than the limit and no surrogate
    # escapes at all (Meta escapes every emoji as a pair, so those are matched up)
    deep = text.count("[") + text.count("{") > max_depth and not within_depth(value, max_depth)
    unstorable = "\\u" in text and ("\\u0000" in text or _lone_surrogate_escape(text))
    if deep or unstorable:
        check(value, max_depth=max_depth, what=what)  # finds where, and raises
    return value


def within_depth(value: Any, max_depth: int) -> bool:
    """Whether ``value``'s objects and arrays nest at most ``max_depth`` levels (iteratively:
    safe for values nested too deep for recursion)."""
    if type(value) is not dict and type(value) is not list:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return False
        for child in item.values() if type(item) is dict else item:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return True


def _lone_surrogate_escape(text: str) -> bool:
    """Whether ``text`` (valid JSON) escapes a surrogate that is not half of a pair."""
    expect_low_at = -1  # where the low half of the last high surrogate escape must start
    for match in _SURROGATE_ESCAPE.finditer(text):
        start = match.start()
        backslashes = 0
        while start - backslashes > 0 and text[start - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2:
            continue  # an escaped backslash followed by the letters "ud83d", not an escape
        if match.group()[3] in "89abAB":  # high half
            if expect_low_at != -1:
                return True
            expect_low_at = match.end()
        elif start == expect_low_at:
            expect_low_at = -1
        else:
            return True
    return expect_low_at != -1


def check(value: Any, *, max_depth: int = MAX_DEPTH, what: str = "the value") -> None:
    """Check a decoded value against the same rules as ``loads``.

    Args:
        value: A JSON-shaped value (dicts, lists, strings, numbers, booleans, None).
        max_depth: How deep objects and arrays may nest.
        what: How messages name the value.

    Raises:
        JSONInputError: The first problem found, naming where it is (``$.entry[0].text``).
    """
    problem = _first_problem(value, max_depth)
    if problem is None:
        return
    code, path, reason = problem
    where = json_path(path)
    msg = f"{what} {reason} at {where}"
    raise JSONInputError(msg, code=code, details={"path": where, "max_depth": max_depth})


def _first_problem(value: Any, max_depth: int) -> tuple[str, tuple[str | int, ...], str] | None:
    # iterative: the values checked here are the ones too deep for recursion
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list):
            if depth + 1 > max_depth:
                return "json_too_deep", path, f"nests deeper than {max_depth} levels"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                found = _text_problem(key) if isinstance(key, str) else None
                if found is None:
                    if isinstance(child, dict | list):
                        stack.append((child, depth + 1, (*path, key)))
                        continue
                    found = _scalar_problem(child)
                if found is not None:
                    return found[0], (*path, key), found[1]
        else:
            found = _scalar_problem(item)
            if found is not None:
                return found[0], path, found[1]
    return None


def _scalar_problem(item: Any) -> tuple[str, str] | None:
    if isinstance(item, str):
        return _text_problem(item)
    if isinstance(item, float) and not math.isfinite(item):
        return "invalid_number", f"holds {item}, which is not a JSON number"
    return None


def _text_problem(text: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return (
            "invalid_unicode",
            "holds a NUL character (\\u0000), which text stored in PostgreSQL cannot contain",
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return (
                "invalid_unicode",
                "holds a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape); text "
                "must be valid Unicode (escaped pairs such as \\ud83d\\ude00 are fine)",
            )
    return None


def json_path(path: tuple[str | int, ...]) -> str:
    """``("entry", 0, "text")`` → ``$.entry[0].text``, shortened in the middle when long."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part.isidentifier():
            parts.append(f".{part}")
        else:
            parts.append(f"[{json.dumps(part[:40])}]")
    text = "".join(parts)
    if len(text) > _PATH_CHARS:
        half = _PATH_CHARS // 2
        text = f"{text[:half]}…{text[-half:]}"
    return text


def storable(value: Any) -> Any:
    """A copy of ``value`` with every NUL and lone surrogate in its strings and keys replaced
    by U+FFFD (surrogate pairs are joined into their character), so PostgreSQL can store it.
    For records of what a run saw, not for data; recursive, so only for values within the
    engine's depth limit.
    """
    if isinstance(value, str):
        return _storable_text(value)
    if isinstance(value, dict):
        return {
            _storable_text(k) if isinstance(k, str) else k: storable(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [storable(item) for item in value]
    return value


def _storable_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if text.isascii():
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
