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
        "{{ lipsum.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_sandbox_refuses_python_internals(template: str) -> None:
    with pytest.raises(UserError) as info:
        _template.render(template, SCOPE, where="node 'n1' field 'message'")
    assert info.value.code in ("template_unsafe", "template_error")
    assert "node 'n1' field 'message'" in info.value.message


@pytest.mark.parametrize("template", ["{{ 'a' * 100000000 }}", "{{ 9 ** 99999999 }}"])
def test_sandbox_refuses_unbounded_work(template: str) -> None:
    with pytest.raises(UserError) as info:
        _template.render(template, SCOPE, where="node 'n1' field 'message'")
    assert info.value.code == "template_too_large"
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


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "template_too_expensive"),
        ("{% for x in [1] recursive %}{{ loop([1, 2]) }}{% endfor %}", "template_too_expensive"),
        ("{{ [1]|batch(1000000000, 'x')|list }}", "template_too_large"),
        ("{{ [1]|slice(1000000000)|list }}", "template_too_large"),
        ("{{ ([[1] * 60000] * 3)|sum(start=[]) }}", "template_too_large"),
        ("{{ ('x' * 9000)|urlize(target='t' * 1000) }}", "template_too_large"),
        ("{{ ['x' * 100000] * 100000 }}", "template_too_large"),
        (
            "{% set ns = namespace(x=[]) %}{% for i in range(200) %}{% set ns.x = [ns.x] %}"
            "{% endfor %}{{ ns.x }}",
            "template_too_large",
        ),
        (
            "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns|tojson }}",
            "template_recursive_value",
        ),
        # each test of a 1 MB text is one operation the counts see as cheap: the CPU time is not
        (
            "{% for i in range(40000) %}{% if 'zz' in trigger.big %}{% endif %}{% endfor %}",
            "template_too_expensive",
        ),
    ],
)
def test_every_unbounded_construct_fails_with_a_limit_code(template: str, code: str) -> None:
    scope = {"trigger": {"big": "a" * 1_000_000}, "nodes": {}}
    with pytest.raises(UserError) as info:
        _template.render(template, scope, where="node 'n1' field 'message'")
    assert info.value.code == code, info.value.message
    assert info.value.message.startswith("node 'n1' field 'message': ")


def test_none_prints_as_nothing_and_keeps_its_type_alone() -> None:
    scope = {"trigger": {"name": None, "tags": None}, "nodes": {}}
    assert _template.render("Hi {{ trigger.name }}!", scope) == "Hi !"
    assert _template.render("{{ 'Hi ' ~ trigger.name ~ '!' }}", scope) == "Hi !"
    assert _template.render("{{ trigger.name }}", scope) is None
    assert _template.render_text("{{ trigger.name }}", scope) == ""


def test_optional_fields_read_as_none_and_others_stay_errors() -> None:
    trigger = _template.OptionalFields(
        {"text": "hi"}, frozenset({"text", "from_username"}), "trigger"
    )
    scope = {"trigger": trigger, "nodes": {}}
    assert (
        _template.render("{{ trigger.from_username }}|{{ trigger['from_username'] }}", scope) == "|"
    )
    assert _template.evaluate("trigger.from_username is none", scope) is True
    with pytest.raises(
        UserError, match="trigger has no field 'from_usernme'; it has: from_username, text"
    ):
        _template.render("{{ trigger.from_usernme }}", scope)


def test_a_yielded_value_is_a_copy_of_the_data() -> None:
    outputs: dict[str, object] = {"a": {"out": [1, 2]}}
    value = _template.render("{{ nodes }}", {"trigger": {}, "nodes": outputs})
    assert value == outputs
    assert value is not outputs
    assert value["a"] is not outputs["a"]


def test_check_reports_the_line_of_a_syntax_error() -> None:
    assert _template.check("ok\n{{ trigger.n ") == (
        "line 2: unexpected end of template, expected 'end of print statement'."
    )


def test_references_name_the_nodes_and_trigger_fields_a_template_reads() -> None:
    refs = _template.references(
        "{{ nodes.a.out }}\n{{ nodes['b'] }} {{ trigger.text }} {{ trigger.get('x').y }}"
        " {{ nodes[key] }}"
    )
    assert [(r.root, r.name, r.line) for r in refs] == [
        ("nodes", "a", 1),
        ("nodes", "b", 2),
        ("trigger", "text", 2),
    ]
    # a template that assigns ``nodes`` itself reads its own variable, not node outputs
    shadowed = _template.references("{% for nodes in [1] %}{{ nodes.x }}{% endfor %}")
    assert shadowed == []
    assert [(r.root, r.name) for r in _template.references("trigger.text", expression=True)] == [
        ("trigger", "text")
    ]
    assert _template.references("{{ nodes.a ") == []  # unparsable: reported as syntax instead
