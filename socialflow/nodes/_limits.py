"""What one template render may spend, and the budget that counts it.

Templates come from users and run inside the worker's event loop: a render that loops or
allocates without bound would stall every run on the worker, and no asyncio timeout can
interrupt synchronous code. So every render carries a ``Budget`` (in a context variable) that
the sandbox charges as the template runs (see ``_sandbox.py``):

- steps: each ``{% for %}`` iteration (recursive loops too) and each call (macros, methods,
  functions) is one step; past ``MAX_STEPS`` the render fails;
- building: each string, list or mapping an operation produces is charged its length; past
  ``MAX_BUILT`` in all the render fails, and no single string may exceed ``MAX_OUTPUT``
  characters nor a list ``MAX_ITEMS`` items;
- values that are printed or yielded are measured first (``measure``, ``plain``): one that
  contains itself, is nested deeper than ``MAX_DEPTH`` or is larger than the limit is refused
  before Python builds its text or copy;
- a CPU-time backstop (``MAX_CPU_SECONDS`` of the thread's time, checked every few loop
  iterations, attribute reads, calls and built values) catches whatever the counts miss.

A refusal is a ``LimitExceeded`` (a Jinja ``TemplateError``) with a stable error code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import islice
from typing import Any

from jinja2 import TemplateError
from jinja2.runtime import Undefined
from jinja2.utils import Namespace

__all__ = [
    "MAX_BUILT",
    "MAX_CPU_SECONDS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_STEPS",
    "MAX_VALUE",
    "RECURSIVE",
    "TOO_EXPENSIVE",
    "TOO_LARGE",
    "Budget",
    "LimitExceeded",
    "budget",
    "charge",
    "current",
    "measure",
    "plain",
    "step",
    "take",
    "tick",
    "too_many_bits",
    "want_items",
    "want_text",
]

#: Characters of one render's text, and of any one string a template builds.
MAX_OUTPUT = 1_000_000
#: Items of any one list a template builds, and of a ``range``.
MAX_ITEMS = 100_000
#: Loop iterations and calls of one render.
MAX_STEPS = 50_000
#: Characters and items one render may build in all, intermediate values included.
MAX_BUILT = 10_000_000
#: Size (characters of its strings plus its items) of a value a lone ``{{ expression }}``
#: yields: room for a whole HTTP response (``http.max_response_bytes``) passed on.
MAX_VALUE = 10_000_000
#: Nesting of the values a template prints or yields.
MAX_DEPTH = 100
#: Bits of an integer a template computes.
MAX_INT_BITS = 4096
#: Largest exponent of ``**``.
MAX_EXPONENT = 100
#: Thread CPU time of one render, checked every few operations: the backstop for work the
#: counts above do not see (a long loop body, a sort in a loop). Rendering a full
#: ``MAX_OUTPUT`` of text, or yielding a whole HTTP response, takes a fraction of it.
MAX_CPU_SECONDS = 0.5

#: Error codes of the refusals.
TOO_EXPENSIVE = "template_too_expensive"
TOO_LARGE = "template_too_large"
RECURSIVE = "template_recursive_value"


class LimitExceeded(TemplateError):
    """A render went over one of the limits; ``code`` says which kind."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Budget:
    """What one render has spent so far."""

    __slots__ = ("_ticks", "built", "started", "steps")

    def __init__(self) -> None:
        self.steps = 0
        self.built = 0
        self.started = time.thread_time()
        self._ticks = 0

    def tick(self) -> None:
        """Note one operation; every 32nd checks the CPU time (a system call)."""
        self._ticks += 1
        if not self._ticks & 31:
            self.check_time()

    def step(self, count: int = 1) -> None:
        """Count ``count`` loop iterations or calls."""
        self.steps += count
        if self.steps > MAX_STEPS:
            msg = (
                f"the template takes more than {MAX_STEPS:,} steps (loop iterations and "
                "calls); loop over less data or split the work across nodes"
            )
            raise LimitExceeded(msg, TOO_EXPENSIVE)
        self.tick()

    def build(self, size: int) -> None:
        """Count ``size`` characters or items built."""
        self.built += size
        if self.built > MAX_BUILT:
            msg = (
                f"the template builds more than {MAX_BUILT:,} characters and items in all; "
                "build less text or split the work across nodes"
            )
            raise LimitExceeded(msg, TOO_EXPENSIVE)
        if size > 4096:
            self.check_time()  # building it took a while: see whether the time is up
        else:
            self.tick()

    def check_time(self) -> None:
        """Fail when the render has used more CPU time than ``MAX_CPU_SECONDS``."""
        if time.thread_time() - self.started > MAX_CPU_SECONDS:
            msg = f"the template used more than {MAX_CPU_SECONDS:g} s of CPU time"
            raise LimitExceeded(msg, TOO_EXPENSIVE)


_budget: ContextVar[Budget | None] = ContextVar("socialflow_template_budget", default=None)


@contextmanager
def budget() -> Iterator[Budget]:
    """Give the render inside the ``with`` block a fresh ``Budget``."""
    spent = Budget()
    token = _budget.set(spent)
    try:
        yield spent
    finally:
        _budget.reset(token)


def current() -> Budget | None:
    """The budget of the render in progress; ``None`` while a template is only compiled."""
    return _budget.get()


def step() -> None:
    """Count one call against the current render's budget."""
    spent = _budget.get()
    if spent is not None:
        spent.step()


def tick() -> None:
    """Note one operation (an attribute read) of the current render."""
    spent = _budget.get()
    if spent is not None:
        spent.tick()


def _too_large(what: str, size: int, limit: int, unit: str) -> LimitExceeded:
    return LimitExceeded(f"{what} would be {size:,} {unit}; the limit is {limit:,}", TOO_LARGE)


def want_text(what: str, size: int) -> None:
    """Refuse to build ``what`` when it would be longer than ``MAX_OUTPUT`` characters."""
    if size > MAX_OUTPUT:
        raise _too_large(what, size, MAX_OUTPUT, "characters")


def want_items(what: str, count: int) -> None:
    """Refuse to build ``what`` when it would hold more than ``MAX_ITEMS`` items."""
    if count > MAX_ITEMS:
        raise _too_large(what, count, MAX_ITEMS, "items")


def too_many_bits() -> LimitExceeded:
    """The refusal of a number larger than ``MAX_INT_BITS``."""
    return LimitExceeded(f"a number would exceed the limit of {MAX_INT_BITS:,} bits", TOO_LARGE)


def take(value: Iterable[Any], what: str) -> list[Any]:
    """The items of ``value`` as a list, refusing more than ``MAX_ITEMS``."""
    items = list(islice(iter(value), MAX_ITEMS + 1))
    want_items(what, len(items))
    return items


def charge(value: Any) -> Any:
    """Check a value an operation built against the single-value limits, charge its size to
    the current render, and return it."""
    if isinstance(value, str):
        want_text("a string", len(value))
        size = len(value)
    elif isinstance(value, list | tuple | dict):
        want_items("a list", len(value))
        size = len(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise too_many_bits()
        return value
    else:
        return value
    spent = _budget.get()
    if spent is not None:
        spent.build(size)
    return value


_SCALARS = (type(None), bool, int, float)


class _Walk:
    """One depth-first pass over a value: its size, depth and self-containment, and when
    asked a copy of it in plain data (dicts, lists, scalars).

    A container met again (a list repeating one big value) adds the size found the first
    time without being walked again, so a cheaply built repetition fails at once.
    """

    def __init__(self, limit: int, what: str, copy: bool) -> None:
        self.limit = limit
        self.what = what
        self.copy = copy
        self.size = 0
        self.path: set[int] = set()
        self.done: dict[int, tuple[int, Any]] = {}
        self.spent = _budget.get()

    def add(self, size: int) -> None:
        self.size += size
        if self.size > self.limit:
            raise _too_large(self.what, self.size, self.limit, "characters and items")

    def visit(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            self.add(len(value) or 1)
            return value
        if kind in _SCALARS:
            self.add(1)
            return value
        if kind is dict or kind is list:
            return self.container(value, depth)
        if isinstance(value, str):
            self.add(len(value) or 1)
            return str(value) if self.copy else value
        if isinstance(value, Undefined):
            str(value)  # a strict undefined raises the error that names what is missing
            return None
        if isinstance(value, Namespace):
            return self.container(object.__getattribute__(value, "_Namespace__attrs"), depth)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            return self.container(value, depth)
        self.add(16)
        return value

    def container(self, value: Any, depth: int) -> Any:
        key = id(value)
        seen = self.done.get(key)
        if seen is not None:
            self.add(seen[0])
            return seen[1]
        if key in self.path:
            msg = (
                f"{self.what} contains itself, and a structure that contains itself cannot "
                "be printed, stored or sent; use the part you need, e.g. nodes.<id>.<port>"
            )
            raise LimitExceeded(msg, RECURSIVE)
        if depth >= MAX_DEPTH:
            msg = f"{self.what} is nested more than {MAX_DEPTH} levels deep"
            raise LimitExceeded(msg, TOO_LARGE)
        if self.spent is not None:
            self.spent.tick()
        before = self.size
        self.path.add(key)
        self.add(len(value) or 1)
        inner = depth + 1
        if isinstance(value, Mapping):
            copied: Any = {_key(k): self.visit(v, inner) for k, v in value.items()}
            self.add(sum(len(k) if type(k) is str else 1 for k in value))
        else:
            copied = [self.visit(v, inner) for v in value]
        self.path.discard(key)
        result = copied if self.copy else value
        self.done[key] = (self.size - before, result)
        return result


def _key(key: Any) -> Any:
    return key if type(key) in (str, int, float, bool) or key is None else str(key)


def plain(value: Any, what: str = "the value") -> Any:
    """``value`` copied as plain data (dicts, lists, scalars), so that what a template yields
    never aliases the run's own data; a missing optional value becomes ``None``.

    Raises:
        LimitExceeded: The value contains itself, is nested deeper than ``MAX_DEPTH`` or is
            larger than ``MAX_VALUE``.
    """
    return _Walk(MAX_VALUE, what, copy=True).visit(value, 0)


def measure(value: Any, what: str, limit: int = MAX_OUTPUT) -> int:
    """The size of ``value``, a lower bound of its text's length, found without building it.

    Raises:
        LimitExceeded: The value contains itself, is nested deeper than ``MAX_DEPTH`` or is
            larger than ``limit``.
    """
    if isinstance(value, str):
        return len(value)
    walk = _Walk(limit, what, copy=False)
    walk.visit(value, 0)
    return walk.size
