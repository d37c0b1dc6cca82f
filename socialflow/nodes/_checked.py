"""Template operations whose result can be far larger than their operands, checked first.

``'x' * n``, ``'%09999d'``, ``'x'|center(n)``, ``items|join(long)``, ``text|replace(a, long)``
and their kin allocate in one step what no limit counted afterwards could stop, so each is
refused before it runs when its result would exceed ``MAX_OUTPUT`` characters, ``MAX_ITEMS``
items or ``MAX_INT_BITS`` bits. Every filter's result is then charged to the render's budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import update_wrapper
from typing import Any

from jinja2.filters import (
    FILTERS,
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_pprint,
    do_replace,
    do_tojson,
    do_urlize,
    do_wordwrap,
    make_attrgetter,
    sync_do_slice,
)
from jinja2.utils import pass_environment, pass_eval_context

from socialflow.nodes._limits import (
    MAX_EXPONENT,
    MAX_INT_BITS,
    TOO_LARGE,
    LimitExceeded,
    charge,
    measure,
    step,
    take,
    too_many_bits,
    want_items,
    want_text,
)

__all__ = ["capped_range", "check_binop", "check_format_spec", "check_str_call", "filters"]

_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_NUMBER = re.compile(r"\d+")


def _check_printf(template: str) -> None:
    """Refuse ``%`` formatting whose field widths or precisions exceed the output limit."""
    for width, precision in _PRINTF_SPEC.findall(template):
        for part in (width, precision):
            if part == "*":
                msg = "a '*' width or precision in % formatting is not allowed; write the number"
                raise LimitExceeded(msg, TOO_LARGE)
            if part:
                want_text("a formatted field", int(part[:8]))


def check_format_spec(spec: str) -> None:
    """Refuse a ``str.format`` field spec whose width or precision exceeds the output limit."""
    for number in _NUMBER.findall(spec):
        want_text("a formatted field", int(number[:8]))


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``**``, ``+`` and ``%`` whose result would exceed the limits."""
    if operator == "**":
        if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            msg = f"exponent {right} is larger than the limit of {MAX_EXPONENT}"
            raise LimitExceeded(msg, TOO_LARGE)
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            if left.bit_length() * right > MAX_INT_BITS:
                raise too_many_bits()
    elif operator == "*":
        for seq, count in ((left, right), (right, left)):
            if isinstance(count, int) and not isinstance(count, bool):
                if isinstance(seq, str):
                    want_text("the repeated text", len(seq) * max(count, 0))
                elif isinstance(seq, list | tuple):
                    want_items("the repeated list", len(seq) * max(count, 0))
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise too_many_bits()
    elif operator == "+":
        if isinstance(left, str) and isinstance(right, str):
            want_text("the joined text", len(left) + len(right))
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            want_items("the joined list", len(left) + len(right))
    elif operator == "%" and isinstance(left, str):
        _check_printf(left)


def check_str_call(method: str, text: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse a str method call whose result would exceed the output limit.

    Returns:
        The arguments to call the method with (an iterable to join is read into a list).
    """
    first = args[0] if args else None
    if method in ("center", "ljust", "rjust", "zfill") and isinstance(first, int):
        want_text(f"str.{method}'s result", first)
    elif method == "expandtabs":
        tabsize = first if isinstance(first, int) else 8
        want_text("str.expandtabs' result", len(text) + text.count("\t") * max(tabsize, 0))
    elif method == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif method == "translate" and isinstance(first, Mapping):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        want_text("str.translate's result", len(text) * max(longest, 1))
    elif method == "join" and first is not None:
        items = take(first, "the joined list")
        _check_join(text, items)
        return (items, *args[1:])
    return args


def _check_replace(text: str, old: Any, new: Any, count: Any) -> None:
    old, new = str(old), str(new)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    want_text("the replaced text", len(text) + found * max(len(new) - len(old), 0))


def _check_join(separator: str, items: list[Any]) -> None:
    size = len(separator) * max(len(items) - 1, 0)
    want_text("the joined text", size)
    for item in items:
        size += measure(item, "a joined item")
        want_text("the joined text", size)


def capped_range(*args: int) -> range:
    """``range`` with at most ``MAX_ITEMS`` items."""
    numbers = range(*args)
    want_items("the range", len(numbers))
    return numbers


@pass_eval_context
def _join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = take(value, "the joined list")
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    separator = str(d)
    _check_join(separator, items)
    return separator.join(map(str, items))


def _center(value: Any, width: int = 80) -> str:
    want_text("the centred text", width if isinstance(width, int) else 0)
    return do_center(value, width)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    step = len(width) if isinstance(width, str) else max(width, 0)
    want_text("the indented text", len(text) + (text.count("\n") + 1) * step)
    return do_indent(s, width, first, blank)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_printf(str(value))
    return do_format(value, *args, **kwargs)


@pass_eval_context
def _replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    _check_replace(str(s), old, new, -1 if count is None else count)
    return do_replace(eval_ctx, s, old, new, count)


@pass_environment
def _wordwrap(
    environment: Any,
    s: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    text = str(s)
    joint = len(wrapstring if wrapstring is not None else environment.newline_sequence)
    # greedy wrapping: two consecutive lines hold more than ``width`` characters together
    lines = 2 * len(text) // max(width, 1) + text.count("\n") + 2
    want_text("the wrapped text", len(text) + lines * joint)
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def _urlize(
    eval_ctx: Any,
    value: str,
    trim_url_limit: int | None = None,
    nofollow: bool = False,
    target: str | None = None,
    rel: str | None = None,
    extra_schemes: Iterable[str] | None = None,
) -> str:
    text = str(value)
    # each link repeats its address and carries the target and rel attributes
    per_link = 2 * len(target or "") + len(rel or "") + 64
    want_text("the linked text", 2 * len(text) + (len(text) // 4 + 1) * per_link)
    return do_urlize(eval_ctx, value, trim_url_limit, nofollow, target, rel, extra_schemes)


def _batch(value: Iterable[Any], linecount: int, fill_with: Any = None) -> Iterator[list[Any]]:
    want_items("a batch", linecount if isinstance(linecount, int) else 0)
    return do_batch(take(value, "the batched list"), linecount, fill_with)


def _slice(value: Iterable[Any], slices: int, fill_with: Any = None) -> Iterator[list[Any]]:
    want_items("the slices", slices if isinstance(slices, int) else 0)
    return sync_do_slice(take(value, "the sliced list"), slices, fill_with)


@pass_environment
def _sum(environment: Any, iterable: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    items = take(iterable, "the summed list")
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(item) for item in items]
    total = start
    for item in items:
        check_binop("+", total, item)
        total = charge(total + item)  # adding lists copies: each intermediate is charged
    return total


def _pprint(value: Any) -> str:
    # pprint indents each line by its depth, which can multiply a deep value's size
    want_text("the pretty-printed value", 2 * measure(value, "the pretty-printed value"))
    return do_pprint(value)


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
    # refuses a value that contains itself with its own code, before json.dumps fails
    measure(value, "the value as JSON")
    return do_tojson(eval_ctx, value, indent)


def _string(value: Any) -> str:
    measure(value, "the value as text")
    return str(value)


_CHECKED: dict[str, Callable[..., Any]] = {
    "batch": _batch,
    "center": _center,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "pprint": _pprint,
    "replace": _replace,
    "slice": _slice,
    "string": _string,
    "sum": _sum,
    "tojson": _tojson,
    "urlize": _urlize,
    "wordwrap": _wordwrap,
}


def _charging(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` counted as a call, its result checked and charged; keeps Jinja's
    pass-argument marker."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        step()
        return charge(func(*args, **kwargs))

    return update_wrapper(wrapper, func)


def filters() -> dict[str, Callable[..., Any]]:
    """Jinja's built-in filters, the amplifying ones checked first, every result charged."""
    return {name: _charging(_CHECKED.get(name, func)) for name, func in FILTERS.items()}
