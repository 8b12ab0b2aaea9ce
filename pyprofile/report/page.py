"""The HTML page: ``template.html.j2`` rendered with Jinja2 (autoescape on) from plain data."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

TEMPLATE = "template.html.j2"


@cache
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent),
        autoescape=True,  # every value is text: names and notes come from the data
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_page(
    *,
    title: str,
    generated: str,
    numbers: list[tuple[str, str]],
    versions: list[tuple[str, str]],
    sections: list[dict[str, Any]],
) -> str:
    """The report's HTML; see the template's header for the shape of ``sections``."""
    template = _environment().get_template(TEMPLATE)
    return template.render(
        title=title, generated=generated, numbers=numbers, versions=versions, sections=sections
    )
