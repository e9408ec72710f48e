"""Finding links and hashtags in finished post text, and counting it as networks do.

Pure functions over ``str`` (character offsets); Bluesky converts them to UTF-8 byte
offsets in :func:`newsroom.channels.bluesky.build_facets`. The rules follow Bluesky's
own rich-text detection so the facets match what the Bluesky app would make.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

# Characters Bluesky treats as invisible separators inside tags.
_INVISIBLE = "\u00ad\u2060\u200a\u200b\u200c\u200d\u20e2"
_TAG = regex.compile(
    rf"(?:^|\s)([#＃])((?!\ufe0f)[^\s{_INVISIBLE}]*[^\d\s\p{{P}}{_INVISIBLE}]+"
    rf"[^\s{_INVISIBLE}]*)?"
)
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")
_LINK = regex.compile(r"(?:^|(?<=[\s(]))(https?://\S+)", regex.IGNORECASE)
_MENTION = regex.compile(r"(?:^|(?<=\s))(@[\w.]+)@[\w.-]+\w", regex.UNICODE)
MAX_TAG_GRAPHEMES = 64


@dataclass(frozen=True)
class Span:
    """A piece of text at [start, end) in characters; ``value`` is the URL or the tag."""

    start: int
    end: int
    value: str


def find_links(text: str) -> list[Span]:
    """http(s) URLs, without trailing sentence punctuation or unbalanced ')'."""
    spans = []
    for match in _LINK.finditer(text):
        url = match.group(1)
        while url and (url[-1] in ".,;:!?\"'"
                       or (url[-1] == ")" and url.count(")") > url.count("("))):
            url = url[:-1]
        if len(url) > len("https://"):
            start = match.start(1)
            spans.append(Span(start, start + len(url), url))
    return spans


def find_hashtags(text: str) -> list[Span]:
    """Hashtags; the span covers the '#', ``value`` is the tag without it."""
    spans = []
    for match in _TAG.finditer(text):
        tag = match.group(2)
        if not tag:
            continue
        tag = _TRAILING_PUNCTUATION.sub("", tag.strip())
        if not tag or grapheme_length(tag) > MAX_TAG_GRAPHEMES:
            continue
        start = match.start(1)
        spans.append(Span(start, start + 1 + len(tag), tag))
    return spans


def grapheme_length(text: str) -> int:
    """User-perceived characters (extended grapheme clusters, current Unicode)."""
    return len(regex.findall(r"\X", text))


def mastodon_length(text: str, *, characters_reserved_per_url: int = 23) -> int:
    """Length as Mastodon counts it: every URL weighs the same, a remote mention
    ``@name@domain`` counts as ``@name``."""
    links = find_links(text)
    length = len(text)
    for span in links:
        length += characters_reserved_per_url - (span.end - span.start)
    for match in _MENTION.finditer(text):
        length -= match.end() - match.end(1)
    return length
