"""Hashtags must be readable by screen readers: several words are written in CamelCase.

A screen reader reads ``#niewiederistjetzt`` as one unpronounceable word, and
``#NieWiederIstJetzt`` as four. The rule:

1. A hashtag is one piece of letters, digits and ``_`` (anything else ends it on every
   network).
2. No part of it may run several words together. The parts are its CamelCase words
   (``Nie|Wieder|Ist|Jetzt``, ``Ü|18``); a part in lower case after its first letter
   (``Darmstadthältzusammen``) is *several words* when it is not itself a word and
   splits into words in the fewest pieces (German and English word lists of
   :mod:`wordfreq`, words seen at least once per million) of which one is a function word
   (:data:`FUNCTION_WORDS`: articles, pronouns, prepositions, conjunctions, auxiliaries,
   adverbs such as *jetzt*, *wieder*, *zusammen*) — a German compound noun is built of
   content words (``Kinder|hospiz|arbeit``, ``Trikot|tag``) and a screen reader reads it
   as the one word it is; ``Darmstadt|hält|zusammen`` and ``nie|wieder|ist|jetzt`` are
   phrases. A separable prefix at the start (``Mit|mach|aktion``, ``Vor|lese|tag``) is
   part of a compound, not a function word. Such a hashtag is refused with a hint to
   write each word with a capital initial; we offer no spelling of our own, as only the
   author knows where the words begin.
3. It starts with a capital letter or a digit (``#Trikottag``, not ``#trikottag``).
4. A tag in capitals only is allowed up to five letters (abbreviations such as #ÖPNV or #EU).

The rule is a heuristic: a phrase of content words only (``#darmstadtliest``) passes
step 2, and a compound whose best split contains a function word in its middle would be
refused; write such a tag in CamelCase, which always passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import regex

HASHTAG_IN_TEXT = regex.compile(r"(?<![\p{L}\p{N}_&/])#([\p{L}\p{N}_]+)")
MAX_ABBREVIATION = 5
# A word of the lists counts if it is seen at least once per million words (Zipf 3).
MIN_ZIPF = 3.0
# Parts shorter than this are not checked for several words ("Geh", "Ist").
MIN_RUN_TOGETHER = 5
_CAMEL_PART = regex.compile(r"\p{Lu}?[\p{Ll}\p{M}]+|\p{Lu}+(?![\p{Ll}\p{M}])|\p{N}+|_")

FUNCTION_WORDS = frozenset("""
der die das den dem des ein eine einen einem einer eines kein keine
ich du er sie es wir ihr mich dich sich uns euch mir dir ihm ihn ihnen
mein dein sein unser euer meine deine seine unsere
und oder aber denn doch sondern weil dass wenn als ob wie
in im an am auf aus bei mit nach von vom zu zum zur über unter vor hinter neben
zwischen durch für gegen ohne um bis seit
ist sind bin bist seid war waren wird werden wurde hat haben habe hast
kann können muss müssen soll sollen will wollen darf dürfen mag
nicht nie niemals immer wieder jetzt heute hier dort da noch schon auch nur sehr
zusammen gemeinsam alle allen jeder jede jedes mehr viel
the a an and or but of to in on at for with from by
is are was were be been am has have had will would can could shall should must may
not no never now again here there all together
i you he she it we they me him her us them my your his its our their
""".split())
# German separable prefixes that begin compound nouns (Mitmachaktion, Vorlesetag,
# Aufbauarbeit): at the start of a part they do not make it a phrase.
COMPOUND_PREFIXES = frozenset(
    "ab an auf aus bei durch ein gegen mit nach über um unter vor wieder zu zusammen".split())


@dataclass(frozen=True)
class HashtagProblem:
    tag: str
    message: str
    hint: str


@lru_cache(maxsize=1)
def _words() -> dict[str, float]:
    """German and English words with their Zipf frequency (log10 per billion words)."""
    from wordfreq import get_frequency_dict

    words: dict[str, float] = {}
    for language in ("de", "en"):
        for word, frequency in get_frequency_dict(language, "small").items():
            zipf = math.log10(frequency * 1e9)
            if zipf >= MIN_ZIPF and regex.fullmatch(r"\p{Ll}{2,}", word):
                words[word] = max(zipf, words.get(word, 0.0))
    return words


def split_words(part: str) -> list[str] | None:
    """``part`` split into the fewest words of the lists (the more frequent on a tie);
    None if it cannot be split completely."""
    text = part.lower()
    words = _words()
    # best[i]: (pieces, -zipf sum, split) for text[:i]
    best: list[tuple[int, float, list[str]] | None] = [None] * (len(text) + 1)
    best[0] = (0, 0.0, [])
    for end in range(1, len(text) + 1):
        for start in range(max(0, end - 30), end - 1):
            before = best[start]
            piece = text[start:end]
            if before is None or piece not in words:
                continue
            candidate = (before[0] + 1, before[1] - words[piece], [*before[2], piece])
            current = best[end]
            if current is None or candidate[:2] < current[:2]:
                best[end] = candidate
    found = best[len(text)]
    return found[2] if found is not None else None


def runs_words_together(part: str) -> list[str] | None:
    """The words of ``part`` if it reads as several words run together (rule 2)."""
    if len(part) < MIN_RUN_TOGETHER or not regex.fullmatch(r"\p{Lu}?[\p{Ll}\p{M}]+", part):
        return None
    pieces = split_words(part)
    if pieces is None or len(pieces) < 2:
        return None  # one word, or not made of known words: a name, a compound
    for index, piece in enumerate(pieces):
        if piece in FUNCTION_WORDS and not (index == 0 and piece in COMPOUND_PREFIXES):
            return pieces
    return None


def check_hashtag(tag: str) -> HashtagProblem | None:
    bare = tag.lstrip("#")
    if not bare:
        return HashtagProblem(tag, "empty hashtag", "remove it or write the word after #")
    if not regex.fullmatch(r"[\p{L}\p{N}_]+", bare):
        return HashtagProblem(
            tag,
            f"hashtag #{bare} contains characters that end a hashtag "
            "(spaces, hyphens, punctuation)",
            "write it in one piece, each word with a capital initial (CamelCase), as in "
            "#NieWiederIstJetzt",
        )
    letters = [c for c in bare if c.isalpha()]
    if not letters:
        return None
    for part in _CAMEL_PART.findall(bare):
        words = runs_words_together(part if not part.isupper() else part.lower())
        if words:
            return HashtagProblem(
                tag,
                f"hashtag #{bare} runs several words together ({' · '.join(words)}?); "
                "screen readers read them as one word",
                "write each word with a capital initial (CamelCase), as in "
                "#NieWiederIstJetzt",
            )
    if bare[0].islower():
        return HashtagProblem(
            tag,
            f"hashtag #{bare} does not start with a capital letter",
            f"write it #{_capitalised(bare)}, and every further word with a capital "
            "initial too (CamelCase)",
        )
    if all(c.isupper() for c in letters) and len(letters) > MAX_ABBREVIATION:
        return HashtagProblem(
            tag,
            f"hashtag #{bare} is in capitals only; screen readers spell it letter by letter",
            f"write it #{_capitalised(bare.lower())}, and every further word with a "
            "capital initial too (CamelCase)",
        )
    return None


def _capitalised(bare: str) -> str:
    return bare[:1].upper() + bare[1:]


def hashtags_in(text: str) -> list[str]:
    return [m.group(1) for m in HASHTAG_IN_TEXT.finditer(text)]
