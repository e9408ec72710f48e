"""The Jinja environment for staff-written templates.

Templates come from people, not from the code base, so they run in Jinja's
SandboxedEnvironment (no ``__class__``, no ``__globals__``) with StrictUndefined: a
misspelt variable is an error at validation time, never an empty gap in a post.

The sandbox keeps templates from Python's internals, not from exhausting the machine; so
:class:`GuardedSandbox` also refuses what would build text, lists or numbers far beyond
any post (``'x' * 10**10``, ``9 ** 10**9``, ``'%*s' % (10**9, x)``, ``center(10**10)``):
the limit is :data:`MAX_TEXT` characters (a post has at most a few thousand). Loops that
print nothing are bounded in time instead: every ``{% for %}`` iteration checks a deadline
(:data:`MAX_RENDER_SECONDS` per text, see :func:`render_deadline`); a post's text takes
milliseconds.

Line breaks are kept as a person reads the template (:class:`KeepLineBreaks`): every
line break written stays, except that a line holding template code (``{% … %}``,
``{{ … }}`` or ``{# … #}``) that prints nothing but whitespace disappears together with
its line break. So a tag alone on its line leaves no empty line, and a tag at the end of
a text line (``…des Magistrats.{% endif %}``) does not eat the line break after it, as
Jinja's ``trim_blocks`` would. Jinja's own ``{%-``/``-%}`` still strip whitespace where
an author writes them.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel.dates import format_date, format_time
from jinja2 import FileSystemLoader, StrictUndefined, Template, Undefined, nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment, SecurityError

from newsroom.errors import NewsroomError

# The most characters (or list items) a template may build or print; posts are far shorter.
MAX_TEXT = 100_000
_MAX_POWER_BITS = 4096
# The longest one text may take to render; the longest real one takes milliseconds.
MAX_RENDER_SECONDS = 2.0
# (deadline on the monotonic clock, the limit in seconds) while a text renders
_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("newsroom_render_deadline",
                                                               default=None)
# A printf width or precision of 10000 or more, or one taken from the arguments ("*").
_WIDE_FORMAT = re.compile(r"%[#0 +-]*(\*|\d{5,})|%[#0 +-]*\d*\.(\*|\d{5,})")


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


# Put at the start of every template line that holds template code; a rendered line that
# has it and nothing but whitespace is dropped (see :func:`drop_code_only_lines`). A
# Unicode noncharacter: never part of a text people write or a network receives.
LINE_MARK = "\ufdd0"
_CODE_OPEN = re.compile(r"\{[%{#]")
_CODE_CLOSE = {"{%": "%}", "{{": "}}", "{#": "#}"}
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")


def mark_code_lines(source: str) -> str:
    """``source`` with :data:`LINE_MARK` after the indentation of each line that starts
    outside a tag and holds template code (lines of a ``{% raw %}`` block hold none).
    A line starting with ``{%-``, ``{{-`` or ``{#-`` is left alone: the author asked to
    join it to the line before. Inserts no line breaks: error line numbers stay right."""
    out: list[str] = []
    closing: str | None = None  # the delimiter that ends the tag we are in
    raw = False
    for line in source.splitlines(keepends=True):
        starts_in_text = closing is None and not raw
        has_code = False
        position = 0
        raw_end_at = -1  # where a raw block that began on an earlier line ends
        while position < len(line):
            if raw:
                end = _RAW_END.search(line, position)
                if end is None:
                    break
                raw, position = False, end.end()
                if not starts_in_text:
                    raw_end_at = position
            elif closing is None:
                opening = _CODE_OPEN.search(line, position)
                if opening is None:
                    break
                has_code = True
                raw_start = _RAW_START.match(line, opening.start())
                if raw_start:
                    raw, position = True, raw_start.end()
                else:
                    closing, position = _CODE_CLOSE[opening.group()], opening.end()
            else:
                end_at = line.find(closing, position)
                if end_at < 0:
                    break
                closing, position = None, end_at + 2
        body = line.lstrip(" \t")
        if starts_in_text and has_code and not body.startswith(("{%-", "{{-", "{#-")):
            indent = line[: len(line) - len(body)]
            line = indent + LINE_MARK + body
        elif raw_end_at >= 0:  # what follows {% endraw %} is the line's printed rest
            line = line[:raw_end_at] + LINE_MARK + line[raw_end_at:]
        out.append(line)
    return "".join(out)


def drop_code_only_lines(text: str) -> str:
    """Rendered text without the lines marked by :func:`mark_code_lines` that printed
    nothing but whitespace, and without the marks."""
    kept = [line.replace(LINE_MARK, "") for line in text.split("\n")
            if not (LINE_MARK in line and not line.replace(LINE_MARK, "").strip())]
    return "\n".join(kept)


class KeepLineBreaks(Extension):
    """Marks the lines that hold template code before Jinja parses a template."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return mark_code_lines(source.replace(LINE_MARK, ""))


def _finalize(value: object) -> object:
    """Refuse to print containers: a post must never show ``{'a': 1}`` or ``['x']``."""
    if isinstance(value, (dict, list, tuple, set)):
        raise TypeError(
            "a list or mapping would be printed as Python code; loop over it with "
            "{% for … %} or use | join(', ')"
        )
    if not isinstance(value, (str, int, float, Decimal, date, Undefined)) and value is not None:
        what = "a function" if callable(value) else f"a {type(value).__name__} object"
        raise TypeError(f"{what} would be printed (as Python's description of it); print "
                        "only texts, numbers and dates")
    return value


def _too_big(what: str) -> SecurityError:
    return SecurityError(f"{what} would be far too long (more than {MAX_TEXT} characters or "
                         "items); a post is at most a few thousand characters")


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, bytes, list, tuple)) and len(value) > MAX_TEXT:
        raise _too_big("the result")
    return value


class TemplateTooSlow(NewsroomError, SecurityError):
    """The template ran past its deadline (a loop that runs far too often)."""


@contextmanager
def render_deadline(seconds: float | None = None) -> Iterator[None]:
    """Templates rendered inside stop with :class:`TemplateTooSlow` after ``seconds``
    (default :data:`MAX_RENDER_SECONDS`)."""
    limit = MAX_RENDER_SECONDS if seconds is None else seconds
    token = _DEADLINE.set((time.monotonic() + limit, limit))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> str:
    """Called at each loop iteration of every template (and between output chunks)."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline[0]:
        raise TemplateTooSlow(f"rendering took longer than {deadline[1]:g} s")
    return ""


# Methods and filters whose number argument is a width: the text grows to it.
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_WIDTH_FILTERS = frozenset({"center", "indent"})


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], *,
                     widths: bool = False) -> None:
    for value in (*args, *kwargs.values()):
        if (widths and isinstance(value, int) and not isinstance(value, bool)
                and abs(value) > MAX_TEXT):
            raise _too_big(f"a width of {value}")
        if isinstance(value, str) and _WIDE_FORMAT.search(value):
            raise _too_big("a formatted value")


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox (lists and mappings read-only: a template cannot change the catalog
    it is rendered from) that also refuses to build huge text, lists or numbers."""

    intercepted_binops = frozenset({"*", "**", "%"})
    INLINE_CACHE_SIZE = 512

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inline: OrderedDict[str, Template] = OrderedDict()
        self._inline_lock = threading.Lock()

    def from_string(self, source: str | nodes.Template, globals: Any = None,
                    template_class: Any = None) -> Template:
        """An inline template (a campaign's ``content.text``), compiled once per text: a
        template is reusable and compiling takes ~10 ms, more than rendering it."""
        if not isinstance(source, str) or globals is not None or template_class is not None:
            return super().from_string(source, globals, template_class)
        with self._inline_lock:
            template = self._inline.get(source)
            if template is not None:
                self._inline.move_to_end(source)
                return template
        template = super().from_string(source)
        with self._inline_lock:
            self._inline[source] = template
            while len(self._inline) > self.INLINE_CACHE_SIZE:
                self._inline.popitem(last=False)
        return template

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Every loop iteration first checks the render deadline (check_deadline, imported
        into the compiled template: a template cannot shadow it)."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.body.insert(0, nodes.ExprStmt(nodes.Call(
                nodes.ImportedName(f"{__name__}.check_deadline"), [], [], None, None)))
        return tree

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for count, item in ((left, right), (right, left)):
                if (isinstance(count, int) and isinstance(item, Sized)
                        and not isinstance(item, (dict, set))
                        and count * len(item) > MAX_TEXT):
                    raise _too_big("the repeated text or list")
        elif operator == "**":
            if (isinstance(left, int) and isinstance(right, int) and abs(left) > 1
                    and right * math.log2(abs(left)) > _MAX_POWER_BITS):
                raise SecurityError(f"the number would be far too large (more than "
                                    f"{_MAX_POWER_BITS} bits)")
        elif isinstance(left, str):  # "%": printf-style formatting
            _check_arguments((left,), {})
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        name = getattr(__obj, "__name__", "")
        _check_arguments(args, kwargs, widths=name in _WIDTH_METHODS)
        if name == "replace" and len(args) >= 2:
            text, new = getattr(__obj, "__self__", ""), args[1]
            if isinstance(text, str) and isinstance(new, str) and args[0]:
                if text.count(str(args[0])) * len(new) > MAX_TEXT:
                    raise _too_big("the replaced text")
        return _check_size(super().call(__context, __obj, *args, **kwargs))


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        # The first argument of a filter is its input (or the context/environment).
        _check_arguments(args[1:], kwargs, widths=name in _WIDTH_FILTERS)
        if name == "replace" and len(args) >= 3 and isinstance(args[-2], str):
            text, old, new = (str(a) for a in args[-3:])
            if old and text.count(old) * len(new) > MAX_TEXT:
                raise _too_big("the replaced text")
        return _check_size(function(*args, **kwargs))

    for attribute in ("jinja_pass_arg",):  # pass_context / pass_environment markers
        if hasattr(function, attribute):
            setattr(guarded, attribute, getattr(function, attribute))
    return guarded


@functools.lru_cache(maxsize=16)
def shared_environment(templates_dir: Path | None) -> SandboxedEnvironment:
    """The process's environment for a templates folder. Jinja compiles each template once
    per environment and looks at its file again only when it changed (auto_reload), so a
    fresh environment per render compiled every template every time (~10 ms each)."""
    return make_environment(templates_dir)


def make_environment(templates_dir: Path | None) -> SandboxedEnvironment:
    env = GuardedSandbox(
        loader=FileSystemLoader(str(templates_dir)) if templates_dir else None,
        undefined=StrictUndefined,
        autoescape=False,  # posts are plain text; HTML previews escape on their own
        # Line breaks are handled by KeepLineBreaks: Jinja's trim_blocks would eat the
        # line break after a tag that ends a text line.
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=False,
        extensions=[KeepLineBreaks],
        finalize=_finalize,
    )
    env.filters["datum"] = german_date
    env.filters["uhrzeit"] = german_time
    env.filters["join_de"] = join_german
    env.filters["hashtags"] = hashtag_line
    for name, function in list(env.filters.items()):
        env.filters[name] = _guard_filter(name, function)
    return env
