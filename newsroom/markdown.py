"""Text that people typed, made inert for the Markdown that Prefect's UI renders.

Artifacts, Resume-form descriptions and artifact descriptions are Markdown, and the
Prefect UI turns Markdown images into ``<img src=…>`` (fetched by the admin's browser),
links and GitHub-style bare URLs into ``<a>``, and raw HTML into HTML. Whatever a
requester, an approver or a campaign file wrote must therefore reach that Markdown as
text only:

- :func:`md_text` for a value inside a line (a list item, a heading, a table cell): every
  ASCII punctuation character is backslash-escaped (CommonMark lets a backslash escape
  exactly those, and an escaped character never starts a construct: no ``![``, ``[``,
  ``<``, backtick, ``*``, ``|``, ``&`` entity, ``://`` or ``www.`` of an autolink, ``@``
  of an e-mail autolink), and line breaks become spaces (no new block can start).
- :func:`md_quote` for a multi-line text (a post, a request's draft): each line escaped
  the same way and quoted with ``>``; leading blanks are dropped so no line becomes an
  indented code block.
- :func:`md_link` for the one kind of link Newsroom writes itself (a live post's URL):
  only ``http(s)`` URLs, the label escaped; anything else is shown as text.

Rendered, escaped text reads exactly as typed (the backslashes do not show). Never put
typed text into a code span: backslash escapes do not work there.
"""

from __future__ import annotations

import re
import string
import unicodedata

__all__ = ["md_link", "md_quote", "md_text"]

_ESCAPE = {ord(c): "\\" + c for c in string.punctuation}
# Bidi overrides and isolates can make text read other than it is ("neblefierf negteJ").
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                               "\u200e\u200f\u061c"))
_SAFE_URL = re.compile(r"https?://[^\s<>\"'`\\\x00-\x1f\x7f]+", re.ASCII)


def _printable(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.translate(_BIDI)
    # Control characters (NUL, ESC, …) other than line breaks and tabs carry no text.
    return "".join(c for c in text
                   if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs", "Co"))


def md_text(value: object, *, limit: int | None = None) -> str:
    """``value`` as inline Markdown text that renders exactly as written, on one line."""
    text = " ".join(_printable(value).split())
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text.translate(_ESCAPE)


def md_quote(value: object) -> list[str]:
    """``value`` as the lines of a Markdown block quote, each line inert text."""
    lines = []
    for line in _printable(value).splitlines():
        line = " ".join(line.split())
        lines.append(f"> {line.translate(_ESCAPE)}" if line else ">")
    return lines


def md_link(label: object, url: object) -> str:
    """A link to ``url`` when it is a plain http(s) URL; otherwise both as text."""
    target = str(url or "")
    if _SAFE_URL.fullmatch(target):
        return f"[{md_text(label)}](<{target}>)"
    return md_text(f"{label} {target}".strip())
