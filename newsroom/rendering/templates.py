"""The Jinja environment for staff-written templates.

Templates come from people, not from the code base, so they run in Jinja's
SandboxedEnvironment (no ``__class__``, no ``__globals__``) with StrictUndefined: a
misspelt variable is an error at validation time, never an empty gap in a post.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from babel.dates import format_date, format_time
from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment


def german_date(value: date | datetime, pattern: str = "d. MMMM yyyy") -> str:
    """``27. Januar 2027``."""
    return format_date(value, pattern, locale="de_DE")


def german_time(value: datetime) -> str:
    """``09:00 Uhr``."""
    return format_time(value, "HH:mm", locale="de_DE") + " Uhr"


def join_german(items: list[str] | tuple[str, ...]) -> str:
    """``A, B und C``."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " und " + items[-1]


def hashtag_line(tags: list[str] | tuple[str, ...]) -> str:
    return " ".join(f"#{t.lstrip('#')}" for t in tags)


def _finalize(value: object) -> object:
    """Refuse to print containers: a post must never show ``{'a': 1}`` or ``['x']``."""
    if isinstance(value, (dict, list, tuple, set)):
        raise TypeError(
            "a list or mapping would be printed as Python code; loop over it with "
            "{% for … %} or use | join(', ')"
        )
    return value


def make_environment(templates_dir: Path | None) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(templates_dir)) if templates_dir else None,
        undefined=StrictUndefined,
        autoescape=False,  # posts are plain text; HTML previews escape on their own
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
    )
    env.filters["datum"] = german_date
    env.filters["uhrzeit"] = german_time
    env.filters["join_de"] = join_german
    env.filters["hashtags"] = hashtag_line
    return env
