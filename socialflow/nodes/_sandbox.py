"""The Jinja environment templates run in: the immutable sandbox, with every render bounded.

On top of Jinja's ``ImmutableSandboxedEnvironment`` (no Python internals, no mutation of the
data) and strict undefined names:

- the generated code counts every ``{% for %}`` iteration, and charges the text it outputs,
  ``~`` joins and the buffers of macros and ``{% set %}`` blocks to the render's budget
  (``_limits.py``); calls, ``+ * ** %``, ``str.format`` and every filter are checked before
  and charged after (``_checked.py``);
- a printed ``None`` is empty text; any other printed value is measured before Python builds
  its text, so a value that contains itself or is too large is refused, not dumped;
- ``OptionalFields`` payloads (the trigger's) read a declared but absent field as ``None``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import update_wrapper
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

from socialflow.nodes._checked import (
    capped_range,
    check_binop,
    check_format_spec,
    check_str_call,
    filters,
)
from socialflow.nodes._limits import charge, current, measure, step, tick, want_text

__all__ = ["OptionalFields", "SandboxEnvironment"]


class OptionalFields(dict[str, Any]):
    """A payload whose declared fields read as ``None`` when this instance lacks them.

    The trigger's payload is one: a field an event model of the trigger declares but this
    event lacks (a mention has no ``from_username``, a postback no ``text``) is optional, not
    a typo, and reads as ``None`` exactly like a field Meta sent empty. Any other missing
    name is an error that lists the fields there are.
    """

    # no public methods or attributes: templates read names on it, and those would shadow
    # the payload's fields
    __slots__ = ("_sf_label", "_sf_optional")

    def __init__(self, data: Mapping[str, Any], optional: frozenset[str], label: str) -> None:
        super().__init__(data)
        self._sf_optional = optional
        self._sf_label = label


def _is_optional(payload: OptionalFields, name: object) -> bool:
    return isinstance(name, str) and name in payload._sf_optional


def _missing(payload: OptionalFields, name: object) -> str:
    known = ", ".join(sorted(payload._sf_optional | set(payload)))
    return f"{payload._sf_label} has no field {name!r}; it has: {known}"


def _finalize(value: Any) -> str:
    """A printed value as text: ``None`` prints nothing; the rest is measured first."""
    if value is None:
        return ""
    measure(value, "the printed value")
    return str(charge(str(value)))


def _counted(iterable: Iterable[Any]) -> Iterable[Any]:
    spent = current()
    if spent is None:
        return iterable
    try:
        size = len(iterable)  # type: ignore[arg-type]
    except TypeError:
        return _counting(iterable, spent.step)
    # without ``break`` in templates a loop runs over all of a sized iterable: charging it
    # up front fails a bomb before its first oversized loop starts
    spent.step(size)
    return _counting(iterable, spent.tick)


def _counting(iterable: Iterable[Any], count: Callable[[], None]) -> Iterator[Any]:
    for item in iterable:
        count()
        yield item


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with loops counted and ``~`` and constant output charged."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) in self._loop_iterables:
            # Jinja refuses custom node types, so a loop's iterable is wrapped as it is written
            self.write("environment.sf_counted(")
            super().visit(node, *args, **kwargs)
            self.write(")")
            return None
        return super().visit(node, *args, **kwargs)

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.sf_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        # constant text is charged too: a loop repeats it
        return f"environment.sf_emit({super()._output_const_repr(group)})"


class _Formatter(SandboxedFormatter):
    """``str.format`` in the sandbox, refusing field widths past the output limit."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_format_spec(format_spec)
        return super().format_field(value, format_spec)


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with strict undefined names, ``None`` printed as nothing,
    optional payload fields, and every render bounded by the current budget."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        # Only plain helpers stay global: lipsum, cycler and joiner are functions whose
        # closures are one attribute away from module globals if the sandbox ever regresses.
        for name in ("lipsum", "cycler", "joiner"):
            self.globals.pop(name, None)
        self.globals["range"] = capped_range
        self.filters = filters()
        self.filters["contains"] = lambda value, part: part in value
        self.tests["containing"] = lambda value, part: part in value
        # the buffers of macros, call blocks and ``{% set %}`` blocks are joined by this
        self.concat = _joined  # type: ignore[method-assign]

    # -- called by the generated code ----------------------------------------------------

    @staticmethod
    def sf_counted(iterable: Iterable[Any]) -> Iterable[Any]:
        """A loop's iterable, counting one step per iteration."""
        return _counted(iterable)

    @staticmethod
    def sf_concat(parts: Sequence[Any]) -> str:
        """``a ~ b``: the parts as text, joined within the limits; ``None`` joins as nothing,
        as it prints."""
        size = 0
        for part in parts:
            size += measure(part, "a joined part")
            want_text("the joined text", size)
        return _joined("" if part is None else str(part) for part in parts)

    @staticmethod
    def sf_emit(text: str) -> str:
        """Constant template text about to be output, charged like any other output."""
        spent = current()
        if spent is not None:
            spent.build(len(text))
        return text

    # -- sandbox hooks -------------------------------------------------------------------

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        check_binop(operator, left, right)
        return charge(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        step()
        if isinstance(__obj, LoopContext) and args:
            # a recursive loop's ``loop(children)``: its iterations count too
            args = (_counted(args[0]), *args[1:])
        elif isinstance(__obj, types.BuiltinMethodType) and isinstance(__obj.__self__, str):
            args = check_str_call(__obj.__name__, __obj.__self__, args)
        return charge(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return self._optional(obj, attribute, super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return self._optional(obj, argument, super().getitem(obj, argument))

    def _optional(self, obj: Any, name: Any, value: Any) -> Any:
        if not isinstance(value, Undefined) or not isinstance(obj, OptionalFields):
            return value
        if _is_optional(obj, name):
            return None
        return self.undefined(_missing(obj, name), obj=obj, name=name)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None
        text: str = value.__self__
        vformat = _Formatter(self).vformat
        is_format_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    msg = "format_map() takes exactly one mapping"
                    raise TypeError(msg)
                kwargs, args = args[0], ()
            return str(charge(vformat(text, args, kwargs)))

        return update_wrapper(checked, value)


def _joined(parts: Iterable[str]) -> str:
    return str(charge("".join(parts)))
