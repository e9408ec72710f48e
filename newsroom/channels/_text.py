"""Finding links and hashtags in finished post text, and counting it as networks do.

Pure functions over ``str`` (character offsets); Bluesky converts them to UTF-8 byte
offsets in :func:`newsroom.channels.bluesky.build_facets`. The link and tag rules follow
Bluesky's own rich-text detection so the facets match what the Bluesky app would make.

The counting functions are the units networks count in; each channel module declares
with them, in ``Publisher.measure``, the one length rule of its network, which
validation, preview, the request form and the publisher all ask
(:func:`newsroom.channels.measure_text`):

- :func:`grapheme_length`: what a reader sees as one character (👨‍👩‍👧‍👦, 🇩🇪, e + ◌́ are one).
- :func:`utf8_bytes`, :func:`utf16_units`: the encodings' units (an emoji is 4 / 2).
- :func:`mastodon_length`: Mastodon's ``StatusLengthValidator``: graphemes of the text in
  which every URL its extractor finds counts as ``characters_reserved_per_url`` and a
  remote mention ``@name@host`` as ``@name``.
- :func:`threads_length`: Meta's Threads: characters, but an emoji as its UTF-8 bytes.
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


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def utf16_units(text: str) -> int:
    """UTF-16 code units, what Java and JavaScript call a string's length."""
    return len(text.encode("utf-16-le")) // 2


# --- Mastodon ---------------------------------------------------------------------------
# Mastodon's URL pattern: twitter-text's valid_url as Mastodon overrides it in
# config/initializers/twitter_regex.rb, with the protocol required
# (StatusLengthValidator calls extract_urls_with_indices(extract_url_without_protocol:
# false)). The domain is twitter-text's, but any TLD of two or more letters is taken (the
# gem checks a list of TLDs; every real one has two or more letters).
_M_UCHARS = ("\u00a0-\ud7ff\uf900-\ufdcf\ufdf0-\uffef\U00010000-\U0001fffd"
             "\U00020000-\U0002fffd\U00030000-\U0003fffd\U000e1000-\U000efffd"
             "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd")
_M_PATH_CHAR = r"[^\s<>()?]"
_M_BALANCED = (rf"\((?:{_M_PATH_CHAR}+|(?:{_M_PATH_CHAR}*\({_M_PATH_CHAR}+\)"
               rf"{_M_PATH_CHAR}*))\)")
_M_PATH_END = rf"(?:[^\s()?!*\"'「」<>;:=,.$%\[\]~&|@]|{_M_BALANCED})"
_M_PATH = (rf"(?:(?:{_M_PATH_CHAR}*(?:{_M_BALANCED}{_M_PATH_CHAR}*)*{_M_PATH_END})"
           rf"|(?:{_M_PATH_CHAR}+/))")
_M_QUERY_CHAR = rf"[a-z0-9!?*'();:&=+$/%#\[\]\-_.,~|@\^{_M_UCHARS}]"
_M_QUERY_END = rf"[a-z0-9_&=#/\-{_M_UCHARS}]"
# twitter-text's domain characters: anything but ASCII punctuation, space and controls.
_M_DOMAIN_CHAR = r"[^\s!-/:-@\[-`{-~\p{Cc}\u202a-\u202e\ufeff\ufffe\uffff]"
_M_LABEL = rf"{_M_DOMAIN_CHAR}(?:[_-]|{_M_DOMAIN_CHAR})*"
_M_URL = regex.compile(
    rf"(?<![a-z0-9@＠$#＃\u202a-\u202e])"  # twitter-text's valid_url_preceding_chars
    rf"(?:https?|dat|dweb|ipfs|ipns|ssb|gopher|gemini)://"
    rf"(?:{_M_LABEL}\.)+(?:xn--[a-z0-9-]+|[\p{{L}}\p{{M}}]{{2,}})(?![\p{{L}}\p{{N}}_-])"
    rf"(?::\d+)?(?:/{_M_PATH}*)?(?:\?{_M_QUERY_CHAR}*{_M_QUERY_END})?",
    regex.IGNORECASE | regex.VERSION1)
# Account::MENTION_RE; a match followed by @, a Latin accent or :// is no mention
# (twitter-text's end_mention_match).
_M_MENTION = regex.compile(
    r"(?<![=/\w])@([a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(@\w+(?:[.-]+\w+)*)?",
    regex.IGNORECASE)
_M_END_MENTION = regex.compile(r"[@＠\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u00ff]|://")


def mastodon_length(text: str, *, characters_reserved_per_url: int = 23) -> int:
    """Length as Mastodon counts it (app/validators/status_length_validator.rb): the
    graphemes of the text in which every URL counts as ``characters_reserved_per_url``
    and a remote mention ``@name@host`` as ``@name``."""
    entities: list[tuple[int, int, str]] = []
    for match in _M_URL.finditer(text, timeout=1.0):
        entities.append((match.start(), match.end(), "x" * characters_reserved_per_url))
    for match in _M_MENTION.finditer(text):
        if _M_END_MENTION.match(text, match.end()):
            continue
        entities.append((match.start(), match.end(), "@" + match.group(1)))
    rewritten, position = [], 0
    for start, end, replacement in sorted(entities):
        if start < position:
            continue  # overlapping entities: the earlier one wins, as in Mastodon
        rewritten += [text[position:start], replacement]
        position = end
    rewritten.append(text[position:])
    return grapheme_length("".join(rewritten))


# --- Threads ----------------------------------------------------------------------------
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}]")


def threads_length(text: str) -> int:
    """Threads: "Text posts are limited to 500 characters. Emojis are counted as the
    number of UTF-8 bytes" (developers.facebook.com/documentation/threads/posts). A
    grapheme with an emoji in it (👨‍👩‍👧‍👦 with its joiners, 🇩🇪, ❤️) counts its UTF-8 bytes,
    everything else one per character (code point)."""
    total = 0
    for cluster in regex.findall(r"\X", text):
        total += utf8_bytes(cluster) if _EMOJI.search(cluster) else len(cluster)
    return total


# --- measurements -----------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One count a network applies to a text, and its limit (None: no limit).

    ``unit`` names what is counted, in English (CLI, validation) and ``unit_de`` in
    German (the request form), so that every hint says what to shorten by.
    """

    length: int
    limit: int | None
    unit: str
    unit_de: str

    @property
    def ok(self) -> bool:
        return self.limit is None or self.length <= self.limit

    @property
    def over(self) -> int:
        return 0 if self.limit is None else max(0, self.length - self.limit)

    @property
    def short_unit(self) -> str:
        """``characters``, ``bytes``, ``hashtags``: the unit without its explanation."""
        return self.unit.split(" (")[0]

    @property
    def short_unit_de(self) -> str:
        return self.unit_de.split(" (")[0]

    @property
    def excess(self) -> str:
        """By how much the text is too long, with its unit: ``1 character``, ``60 bytes``."""
        unit = self.short_unit
        return f"{self.over} {unit[:-1] if self.over == 1 and unit.endswith('s') else unit}"

    @property
    def excess_de(self) -> str:
        unit = self.short_unit_de
        return f"{self.over} {unit[:-1] if self.over == 1 and unit.endswith('s') else unit}"

    def describe(self) -> str:
        if self.limit is None:
            return f"{self.length} {self.unit} (no limit)"
        return f"{self.length}/{self.limit} {self.unit}"


def characters(length: int, limit: int) -> Measurement:
    """UTF-16 code units for networks that say "characters" and no more (LinkedIn,
    Facebook, Instagram): never fewer than they count, as 😀 counts 2 there too."""
    return Measurement(length, limit, "characters (UTF-16 units: an emoji counts 2)",
                       "Zeichen (ein Emoji zählt 2)")
