"""Sandboxed ``{{ ... }}`` templates and expressions over a run's data, for nodes and validation.

Rendering (``render``, ``render_text``, ``evaluate``) runs in ``SandboxEnvironment``: Jinja's
immutable sandbox refuses Python internals (``__class__``, function globals) and mutation of
the data, and every render is bounded (``_limits.py``): a template that loops, recurses or
builds text without bound fails in milliseconds with ``template_too_expensive`` or
``template_too_large`` instead of stalling the worker's event loop.

Missing values: a printed ``None`` is empty text. A name that does not exist (a typo, a node
id the graph does not have) is an error naming it. A field the trigger's event kinds declare
but this event lacks (``BaseNode.trigger_fields``) is *optional* and reads as ``None``.

Config fields that hold templates are declared with the ``Template`` and ``Expression`` types:
their syntax is checked when the config is validated, their JSON Schema carries
``"x-template": "text" | "expression"`` for the editor, and ``template_fields`` finds every
one of a config (nested ones included) so that graph validation can check which nodes and
trigger fields each refers to (``references``).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from jinja2 import TemplateError, TemplateSyntaxError, nodes
from jinja2.environment import Template as JinjaTemplate
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.runtime import Undefined
from pydantic import AfterValidator, BaseModel, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from socialflow.core.errors import UserError
from socialflow.nodes._limits import (
    MAX_OUTPUT,
    TOO_EXPENSIVE,
    TOO_LARGE,
    LimitExceeded,
    budget,
    plain,
)
from socialflow.nodes._sandbox import OptionalFields, SandboxEnvironment

__all__ = [
    "Expression",
    "OptionalFields",
    "Reference",
    "Template",
    "TemplateField",
    "check",
    "evaluate",
    "references",
    "render",
    "render_text",
    "template_fields",
]

_LONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
#: the names templates can read, as ``NodeContext.template_scope`` builds them
_SCOPE_ROOTS = ("nodes", "trigger")
_RENDER_ERRORS = (TemplateError, TypeError, ValueError, ArithmeticError, LookupError)

_env = SandboxEnvironment()


#: Templates up to this long are compiled once per process; a published flow renders the same
#: ones on every run. Longer ones (rare; an HTTP body) are compiled each time, so the cache's
#: memory stays small whatever users write.
_CACHED_LENGTH = 10_000


@lru_cache(maxsize=1024)
def _cached(template: str) -> JinjaTemplate:
    return _env.from_string(template)


@lru_cache(maxsize=1024)
def _cached_expression(expression: str) -> Any:
    return _env.compile_expression(expression, undefined_to_none=False)


def _compiled(template: str) -> JinjaTemplate:
    if len(template) <= _CACHED_LENGTH:
        return _cached(template)
    return _env.from_string(template)


def _compiled_expression(expression: str) -> Any:
    if len(expression) <= _CACHED_LENGTH:
        return _cached_expression(expression)
    return _env.compile_expression(expression, undefined_to_none=False)


def _fail(where: str, exc: BaseException) -> UserError:
    if isinstance(exc, LimitExceeded):
        return UserError(f"{where}: {exc.message}", code=exc.code)
    if isinstance(exc, RecursionError):
        msg = f"{where}: the template nests calls too deeply (a macro or loop that calls itself)"
        return UserError(msg, code=TOO_EXPENSIVE)
    if isinstance(exc, SecurityError):
        return UserError(f"{where}: refused by the template sandbox: {exc}", code="template_unsafe")
    return UserError(f"{where}: {type(exc).__name__}: {exc}", code="template_error")


def render(template: str, scope: dict[str, Any], *, where: str = "template") -> Any:
    """Render ``template``; a template that is one ``{{ expression }}`` keeps its value's type,
    copied as plain data (dicts, lists, scalars).

    Raises:
        UserError: The template is malformed, names something undefined, was refused by the
            sandbox, or went over a limit (``template_too_expensive``, ``template_too_large``,
            ``template_recursive_value``).
    """
    match = _LONE_EXPRESSION.match(template)
    if match and "{{" not in match.group("expr") and "{%" not in template:
        return _evaluate(match.group("expr"), scope, where, copy=True)
    return render_text(template, scope, where=where)


def render_text(template: str, scope: dict[str, Any], *, where: str = "template") -> str:
    """Render ``template`` to text of at most ``MAX_OUTPUT`` characters.

    Raises:
        UserError: As ``render``.
    """
    if "{" not in template:
        return template
    try:
        compiled = _compiled(template)
        parts: list[str] = []
        size = 0
        with budget():
            for part in compiled.generate(scope):
                size += len(part)
                if size > MAX_OUTPUT:
                    msg = f"the rendered text is longer than the limit of {MAX_OUTPUT:,} characters"
                    raise LimitExceeded(msg, TOO_LARGE)
                parts.append(part)
        return "".join(parts)
    except (*_RENDER_ERRORS, RecursionError) as exc:
        raise _fail(where, exc) from exc


def evaluate(expression: str, scope: dict[str, Any], *, where: str = "expression") -> Any:
    """Evaluate one expression (no braces), e.g. ``trigger.text | lower is containing('hi')``.

    Raises:
        UserError: As ``render``.
    """
    return _evaluate(expression, scope, where, copy=False)


def _evaluate(expression: str, scope: dict[str, Any], where: str, *, copy: bool) -> Any:
    try:
        compiled = _compiled_expression(expression)
        with budget():
            value = compiled(scope)
            if isinstance(value, Undefined):
                str(value)  # a strict undefined raises the UndefinedError naming what is missing
            # a value that is stored or sent is a copy: it must not alias (or contain) the
            # run's own data, nor be larger than can be recorded
            return plain(value) if copy else value
    except (*_RENDER_ERRORS, RecursionError) as exc:
        raise _fail(where, exc) from exc


def _parse(source: str, *, expression: bool) -> nodes.Node:
    if not expression:
        return _env.parse(source)
    # as Environment.compile_expression parses, without compiling
    parser = Parser(_env, source, state="variable")
    parsed = parser.parse_expression()
    if not parser.stream.eos:
        msg = "unexpected text after the expression"
        raise TemplateSyntaxError(msg, parser.stream.current.lineno)
    return parsed


def check(template: str, *, expression: bool = False) -> str | None:
    """The syntax error in a template or expression, with its line; ``None`` when it parses."""
    try:
        _parse(template, expression=expression)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    except TemplateError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------
# Declaring template fields, and finding them and what they refer to


@dataclass(frozen=True)
class _TemplateMarker:
    """Marks a config field as a template or an expression: its JSON Schema says so."""

    expression: bool

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["x-template"] = "expression" if self.expression else "text"
        return json_schema


def _valid(value: str, *, expression: bool) -> str:
    problem = check(value, expression=expression)
    if problem is not None:
        error_type, message = "template_syntax", "{what} syntax error on {problem}"
        what = "expression" if expression else "template"
        raise PydanticCustomError(error_type, message, {"what": what, "problem": problem})
    return value


def _valid_template(value: str) -> str:
    return _valid(value, expression=False)


def _valid_expression(value: str) -> str:
    return _valid(value, expression=True)


#: A config field holding a ``{{ ... }}`` template: syntax checked, marked for the editor.
Template = Annotated[str, AfterValidator(_valid_template), _TemplateMarker(expression=False)]
#: A config field holding a bare expression (a condition): syntax checked, marked.
Expression = Annotated[str, AfterValidator(_valid_expression), _TemplateMarker(expression=True)]


@dataclass(frozen=True)
class TemplateField:
    """One template of a node's config: where it is (``values.greeting``) and its text."""

    path: str
    text: str
    expression: bool


def template_fields(config: BaseModel) -> list[TemplateField]:
    """Every ``Template`` or ``Expression`` value of ``config``, nested ones included, in field
    order; paths are dotted like validation errors' (``headers.X-Token``, ``items.0.text``)."""
    found: list[TemplateField] = []
    for name, info in type(config).model_fields.items():
        _collect(info.annotation, tuple(info.metadata), getattr(config, name), name, found)
    return found


def _collect(
    annotation: Any, metadata: tuple[Any, ...], value: Any, path: str, found: list[TemplateField]
) -> None:
    if typing.get_origin(annotation) is Annotated:
        annotation, *extra = typing.get_args(annotation)
        metadata = (*metadata, *extra)
    marker = next((m for m in metadata if isinstance(m, _TemplateMarker)), None)
    if marker is not None:
        if isinstance(value, str):
            found.append(TemplateField(path, value, marker.expression))
        return
    if isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            _collect(info.annotation, tuple(info.metadata), item, f"{path}.{name}", found)
        return
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            _collect(arg, (), value, path, found)
    elif isinstance(value, Mapping) and len(args) == 2:
        for key, item in value.items():
            _collect(args[1], (), item, f"{path}.{key}", found)
    elif isinstance(value, list | tuple) and args:
        for index, item in enumerate(value):
            _collect(args[0], (), item, f"{path}.{index}", found)


@dataclass(frozen=True)
class Reference:
    """A template's read of ``nodes.<name>`` or ``trigger.<name>`` (``root``), on ``line``."""

    root: Literal["nodes", "trigger"]
    name: str
    line: int


def references(template: str, *, expression: bool = False) -> list[Reference]:
    """The node ids and trigger fields a template reads by name (``nodes.reply``,
    ``nodes['reply']``, ``trigger.text``); reads by computed key cannot be known and are left
    out, as is a root name the template assigns itself. Empty when it does not parse."""
    try:
        tree = _parse(template, expression=expression)
    except TemplateError:
        return []
    shadowed = {n.name for n in _find(tree, nodes.Name) if n.ctx in ("store", "param")}
    callees = {id(call.node) for call in _find(tree, nodes.Call)}
    found: list[Reference] = []
    for node in _find(tree, nodes.Getattr, nodes.Getitem):
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        target = node.node
        if not isinstance(target, nodes.Name) or target.ctx != "load":
            continue
        if target.name not in _SCOPE_ROOTS or target.name in shadowed or id(node) in callees:
            continue  # ``trigger.get('x')`` is a method call, not a field named get
        name = _key(node)
        if name is not None:
            root: Literal["nodes", "trigger"] = "nodes" if target.name == "nodes" else "trigger"
            found.append(Reference(root, name, node.lineno))
    return sorted(found, key=lambda r: (r.line, r.root, r.name))


def _find(tree: nodes.Node, *types: type[Any]) -> Iterator[Any]:
    """The nodes of these types in ``tree``, ``tree`` itself included (an expression's root)."""
    if isinstance(tree, types):
        yield tree
    yield from tree.find_all(types)


def _key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None
