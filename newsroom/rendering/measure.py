"""Measure a post the way each network counts it.

- Mastodon counts characters with every URL as a fixed weight (23 by default; the
  instance says how much in /api/v2/instance) and its own limit (500 by default).
- Bluesky counts graphemes (what a reader sees as one character: 👩‍👩‍👧 is one) up to
  300, and UTF-8 bytes up to 3000. ``len()`` counts neither.
- Telegram counts UTF-16 code units: 4096 for a message, 1024 for a photo caption.
- LinkedIn 3000, Threads 500, Instagram 2200 (and an image is required), Facebook 63206.
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

from ..catalog.models import ChannelAccount, ChannelType

URL = regex.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")
GRAPHEME = regex.compile(r"\X")

DEFAULT_MASTODON_MAX = 500
DEFAULT_URL_WEIGHT = 23


@dataclass(frozen=True)
class Measurement:
    length: int
    limit: int | None
    unit: str

    @property
    def ok(self) -> bool:
        return self.limit is None or self.length <= self.limit

    def describe(self) -> str:
        if self.limit is None:
            return f"{self.length} {self.unit} (no limit)"
        return f"{self.length}/{self.limit} {self.unit}"


def graphemes(text: str) -> int:
    return len(GRAPHEME.findall(text))


def mastodon_length(text: str, url_weight: int = DEFAULT_URL_WEIGHT) -> int:
    total = 0
    last = 0
    for match in URL.finditer(text):
        total += len(text[last : match.start()]) + url_weight
        last = match.end()
    return total + len(text[last:])


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def measure_text(text: str, account: ChannelAccount, *, has_image: bool = False) -> list[Measurement]:
    """Every measurement the account's network applies to ``text``."""
    kind = account.type
    if kind == ChannelType.MASTODON:
        weight = account.characters_reserved_per_url or DEFAULT_URL_WEIGHT
        limit = account.max_characters or DEFAULT_MASTODON_MAX
        return [Measurement(mastodon_length(text, weight), limit, "characters (URLs count as %d)" % weight)]
    if kind == ChannelType.BLUESKY:
        return [
            Measurement(graphemes(text), 300, "graphemes"),
            Measurement(len(text.encode("utf-8")), 3000, "UTF-8 bytes"),
        ]
    if kind == ChannelType.TELEGRAM:
        return [Measurement(utf16_units(text), 1024 if has_image else 4096, "UTF-16 units")]
    limits = {
        ChannelType.LINKEDIN: 3000,
        ChannelType.THREADS: 500,
        ChannelType.INSTAGRAM: 2200,
        ChannelType.FACEBOOK: 63206,
    }
    return [Measurement(len(text), limits.get(kind), "characters")]


def requires_image(account: ChannelAccount) -> bool:
    return account.type == ChannelType.INSTAGRAM
