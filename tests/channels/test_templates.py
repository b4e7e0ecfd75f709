"""Message templates: sandboxed, strict about missing variables, escaped in HTML."""

from __future__ import annotations

import pytest

from perennial.channels.templates import (
    TemplateProblem,
    render_template,
    template_problem,
    template_variables,
)


def test_renders_profile_variables_and_filters() -> None:
    text = render_template(
        "{{ first_name }}: {{ '%.0f' | format(p * 100) }}%", {"first_name": "李雷", "p": 0.634}
    )
    assert text == "李雷: 63%"


def test_a_missing_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateProblem, match="'coupon_code' is undefined"):
        render_template("code {{ coupon_code }}", {"first_name": "x"})


def test_default_filter_covers_a_missing_variable() -> None:
    assert render_template("{{ first_name | default('你好') }}", {}) == "你好"


def test_the_sandbox_refuses_python_internals() -> None:
    with pytest.raises(TemplateProblem, match="unsafe"):
        render_template("{{ x.__class__.__mro__[1].__subclasses__() }}", {"x": 1})


def test_html_parts_escape_customer_data() -> None:
    html = render_template("<p>{{ name }}</p>", {"name": "<script>alert(1)</script>"}, html=True)
    assert html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert render_template("{{ name }}", {"name": "<b>"}) == "<b>"


def test_syntax_problems_name_the_line() -> None:
    assert template_problem("ok {{ a }}") is None
    problem = template_problem("line one\n{% if a %}never closed")
    assert problem is not None and problem.startswith("template error on line 2")
    with pytest.raises(TemplateProblem, match="line 1"):
        render_template("{{ a ", {"a": 1})


def test_variables_are_the_names_read_from_outside() -> None:
    source = (
        "{{ a }}{% for item in items %}{{ item.name }}{{ b }}{% endfor %}{% set c = 1 %}{{ c }}"
    )
    assert template_variables(source) == {"a", "items", "b"}
