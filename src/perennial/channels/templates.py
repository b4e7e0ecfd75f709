"""Message templates: Jinja2 in its sandbox, strict about missing variables.

Templates are written by operations staff and filled with customer data, so they
render in :class:`jinja2.sandbox.SandboxedEnvironment` (no attribute access to
Python internals) with autoescaping for HTML parts. ``StrictUndefined`` turns a
variable that is not there into an error, and :func:`template_variables` lets a
journey be checked against the profile's fields before it is published, so a
typo is caught at publish rather than in a customer's inbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

__all__ = ["TemplateProblem", "render_template", "template_problem", "template_variables"]

_TEXT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateProblem(ValueError):
    """A template cannot be read or rendered; the message says the line and why."""


def template_problem(source: str) -> str | None:
    """Why ``source`` is not a valid template (with its line), or ``None``."""
    try:
        _parsed(source)
    except TemplateSyntaxError as error:
        return f"template error on line {error.lineno}: {error.message}"
    return None


def template_variables(source: str) -> frozenset[str]:
    """The top-level variables ``source`` reads (``{{ first_name }}`` -> ``first_name``)."""
    return frozenset(meta.find_undeclared_variables(_parsed(source)))


def render_template(source: str, variables: Mapping[str, Any], *, html: bool = False) -> str:
    """Render in the sandbox; a missing variable raises :class:`TemplateProblem`."""
    try:
        return _compiled(source, html).render(dict(variables))
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"template error on line {error.lineno}: {error.message}") from None
    except Exception as error:  # undefined names, sandbox refusals, filter errors
        raise TemplateProblem(f"cannot render the template: {error}") from None


@lru_cache(maxsize=1024)
def _parsed(source: str) -> nodes.Template:
    return _TEXT.parse(source)


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> Template:
    """Compiling is most of a render's cost, and a journey renders one template for
    every customer: compile once per text."""
    return (_HTML if html else _TEXT).from_string(source)
