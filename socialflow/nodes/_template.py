"""Sandboxed ``{{ ... }}`` templates and expressions over a run's data.

Jinja's immutable sandbox refuses attribute access to Python internals (``__class__``,
``mro``, function globals) and mutation of the data; operators that could allocate without
bound (``'a' * 10**9``) are capped, since a template runs inside the event loop.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from socialflow.core.errors import UserError

__all__ = ["check", "evaluate", "render", "render_text"]

_MAX_SEQUENCE = 100_000
_MAX_EXPONENT = 100
_LONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
            msg = f"exponent {right} is larger than {_MAX_EXPONENT}"
            raise SecurityError(msg)
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and len(seq) * count > _MAX_SEQUENCE
                ):
                    msg = f"repetition would build more than {_MAX_SEQUENCE} items"
                    raise SecurityError(msg)
        return super().call_binop(context, operator, left, right)


_env = _Environment(undefined=StrictUndefined, autoescape=False)
# Only plain helpers stay global: lipsum, cycler and joiner are functions whose closures are
# one attribute away from module globals if the sandbox ever regresses.
for _name in ("lipsum", "cycler", "joiner"):
    _env.globals.pop(_name, None)
_env.tests["containing"] = lambda value, part: part in value
_env.filters["contains"] = lambda value, part: part in value


def _fail(where: str, exc: Exception) -> UserError:
    if isinstance(exc, SecurityError):
        return UserError(f"{where}: refused by the template sandbox: {exc}", code="template_unsafe")
    return UserError(f"{where}: {type(exc).__name__}: {exc}", code="template_error")


def render(template: str, scope: dict[str, Any], *, where: str = "template") -> Any:
    """Render ``template``; a template that is one ``{{ expression }}`` keeps its value's type.

    Raises:
        UserError: The template is malformed, names something undefined, or was refused.
    """
    match = _LONE_EXPRESSION.match(template)
    if match and "{{" not in match.group("expr") and "{%" not in template:
        return evaluate(match.group("expr"), scope, where=where)
    return render_text(template, scope, where=where)


def render_text(template: str, scope: dict[str, Any], *, where: str = "template") -> str:
    """Render ``template`` to text.

    Raises:
        UserError: The template is malformed, names something undefined, or was refused.
    """
    if "{" not in template:
        return template
    try:
        return _env.from_string(template).render(scope)
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise _fail(where, exc) from exc


def evaluate(expression: str, scope: dict[str, Any], *, where: str = "expression") -> Any:
    """Evaluate one expression (no braces), e.g. ``trigger.text | lower is containing('hi')``.

    Raises:
        UserError: The expression is malformed, names something undefined, or was refused.
    """
    try:
        value = _env.compile_expression(expression, undefined_to_none=False)(scope)
        if isinstance(value, StrictUndefined):
            str(value)  # raises the UndefinedError that names what is missing
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise _fail(where, exc) from exc
    return value


def check(template: str, *, expression: bool = False) -> str | None:
    """The syntax error in a template or expression, or ``None`` when it parses."""
    try:
        if expression:
            _env.compile_expression(template)
        else:
            _env.parse(template)
    except TemplateError as exc:
        return str(exc)
    return None
