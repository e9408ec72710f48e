"""Hashtags must be readable by screen readers: several words are written in CamelCase.

A screen reader reads ``#niewiederistjetzt`` as one unpronounceable word, and
``#NieWiederIstJetzt`` as four. Without a dictionary we cannot split words, so the rule is
checkable and explainable: a hashtag starts with a capital letter or a digit, and a tag
in capitals only is allowed up to five letters (abbreviations such as #ÖPNV or #EU).
"""

from __future__ import annotations

from dataclasses import dataclass

import regex

HASHTAG_IN_TEXT = regex.compile(r"(?<![\p{L}\p{N}_&/])#([\p{L}\p{N}_]+)")
MAX_ABBREVIATION = 5


@dataclass(frozen=True)
class HashtagProblem:
    tag: str
    message: str
    hint: str


def check_hashtag(tag: str) -> HashtagProblem | None:
    bare = tag.lstrip("#")
    if not bare:
        return HashtagProblem(tag, "empty hashtag", "remove it or write the word after #")
    if not regex.fullmatch(r"[\p{L}\p{N}_]+", bare):
        return HashtagProblem(
            tag,
            f"hashtag #{bare} contains characters that end a hashtag (spaces, hyphens, punctuation)",
            "write it in one piece in CamelCase, e.g. #NieWiederIstJetzt",
        )
    letters = [c for c in bare if c.isalpha()]
    if not letters:
        return None
    if bare[0].islower():
        return HashtagProblem(
            tag,
            f"hashtag #{bare} is not in CamelCase; screen readers cannot tell its words apart",
            f"capitalise each word, e.g. #{_suggest(bare)}",
        )
    if all(c.isupper() for c in letters) and len(letters) > MAX_ABBREVIATION:
        return HashtagProblem(
            tag,
            f"hashtag #{bare} is in capitals only; screen readers spell it letter by letter",
            f"write it in CamelCase, e.g. #{_suggest(bare.lower())}",
        )
    return None


def _suggest(bare: str) -> str:
    return bare[:1].upper() + bare[1:]


def hashtags_in(text: str) -> list[str]:
    return [m.group(1) for m in HASHTAG_IN_TEXT.finditer(text)]
