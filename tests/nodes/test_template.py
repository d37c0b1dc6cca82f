"""The template sandbox: values render, Python internals stay out of reach."""

from __future__ import annotations

import pytest

from socialflow.core.errors import UserError
from socialflow.nodes import _template

SCOPE = {"trigger": {"text": "What is the PRICE?", "n": 3, "tags": ["a", "b"]}, "nodes": {}}


def test_lone_expression_keeps_its_type() -> None:
    assert _template.render("{{ trigger.n + 1 }}", SCOPE) == 4
    assert _template.render("{{ trigger.tags }}", SCOPE) == ["a", "b"]
    assert _template.render("  {{ trigger.n > 2 }} ", SCOPE) is True


def test_mixed_template_renders_text() -> None:
    assert _template.render("n={{ trigger.n }}!", SCOPE) == "n=3!"
    assert _template.render_text("{{ trigger.text | lower }}", SCOPE) == "what is the price?"


def test_expression_with_containment_test() -> None:
    assert _template.evaluate("trigger.text | lower is containing('price')", SCOPE) is True
    assert _template.evaluate("'x' in trigger.tags", SCOPE) is False


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ trigger.__class__ }}",
        "{{ trigger.text.__init__.__globals__ }}",
        "{{ range.__self__ }}",
        "{{ trigger.update({'n': 1}) }}",
        "{{ trigger.tags.append(1) }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        "{{ 'a' * 100000000 }}",
        "{{ 9 ** 99999999 }}",
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_refuses_python_internals_and_unbounded_work(template: str) -> None:
    with pytest.raises(UserError) as info:
        _template.render(template, SCOPE, where="node 'n1' field 'message'")
    assert info.value.code in ("template_unsafe", "template_error")
    assert "node 'n1' field 'message'" in info.value.message


def test_dunder_access_is_refused_by_the_sandbox_not_by_chance() -> None:
    with pytest.raises(UserError) as info:
        _template.render("{{ ''.__class__ }}", SCOPE)
    assert info.value.code == "template_unsafe"
    assert "__class__" in info.value.message


def test_undefined_names_are_reported() -> None:
    with pytest.raises(UserError, match="missing"):
        _template.render("{{ trigger.missing }}", SCOPE)


def test_check_reports_syntax_errors() -> None:
    assert _template.check("{{ trigger.n }}") is None
    assert _template.check("{{ trigger.n ") is not None
    assert _template.check("a >", expression=True) is not None
