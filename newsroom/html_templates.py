"""The HTML Newsroom writes outside its web app — the e-mails and the preview file — from
Jinja templates, like the pages: one environment over ``newsroom/templates/`` with
autoescaping (nothing a campaign, a request or a person wrote can become markup) and
undefined names refused. Only rendering; sending is ``newsroom/notify.py``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

__all__ = ["TEMPLATES_DIR", "html_environment", "render_html"]

TEMPLATES_DIR = Path(__file__).parent / "templates"


@cache
def html_environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_html(template: str, **context: Any) -> str:
    """``newsroom/templates/<template>`` rendered with ``context``."""
    return html_environment().get_template(template).render(**context)
