"""Pure text functions: Bluesky facets and record keys, LinkedIn escaping, counting."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newsroom.channels._text import grapheme_length, mastodon_length
from newsroom.channels.bluesky import build_facets, measure_text, record_key
from newsroom.channels.linkedin import escape_little_text, to_little_text
from newsroom.media import image_size
from newsroom.standins.linkedin import render_little_text


def spans(text: str) -> list[tuple[str, str]]:
    """(feature type, the text the facet's byte range covers) for each facet."""
    data = text.encode("utf-8")
    return [(f["features"][0]["$type"].split("#")[1],
             data[f["index"]["byteStart"]:f["index"]["byteEnd"]].decode("utf-8"))
            for f in build_facets(text)]


def test_facets_count_utf8_bytes_in_german_text_with_emoji() -> None:
    text = "Schöne Grüße 🎉 #Trikottag https://example.org/ä"
    assert build_facets(text) == [
        {"index": {"byteStart": 21, "byteEnd": 31},
         "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Trikottag"}]},
        {"index": {"byteStart": 32, "byteEnd": 54},
         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/ä"}]},
    ]
    # in characters the tag starts at 15: Bluesky wants bytes
    assert text.index("#") == 15


@pytest.mark.parametrize(("text", "expected"), [
    ("Am Sonntag: #Heinerfest!", [("tag", "#Heinerfest")]),
    ("#Fußball_EM2024. Mehr unter https://darmstadt.de/em.", [
        ("tag", "#Fußball_EM2024"), ("link", "https://darmstadt.de/em")]),
    ("Platz 1 #1 und #2024", []),  # numbers alone are no tags
    ("(siehe https://de.wikipedia.org/wiki/Darmstadt_(Begriffsklärung))", [
        ("link", "https://de.wikipedia.org/wiki/Darmstadt_(Begriffsklärung)")]),
    ("(https://darmstadt.de/a)", [("link", "https://darmstadt.de/a")]),
    ("E-Mail an presse@darmstadt.de#nicht", []),
    ("👨‍👩‍👧‍👦 #Familie ＃Vollbreite", [("tag", "#Familie"), ("tag", "＃Vollbreite")]),
    ("http://example.org:8080/pfad?a=1&b=ä #Ende", [
        ("link", "http://example.org:8080/pfad?a=1&b=ä"), ("tag", "#Ende")]),
])
def test_facets_find_links_and_tags_as_bluesky_does(text, expected) -> None:
    assert spans(text) == expected


@given(st.text(alphabet=st.sampled_from(list("aä ß#🎉👍🏽:/.()https")), max_size=80))
def test_facet_ranges_always_cut_at_character_boundaries(text: str) -> None:
    data = text.encode("utf-8")
    for facet in build_facets(text):
        start, end = facet["index"]["byteStart"], facet["index"]["byteEnd"]
        assert 0 <= start < end <= len(data)
        data[start:end].decode("utf-8")  # raises if a range splits a character


def test_graphemes_are_what_people_see() -> None:
    assert grapheme_length("👨‍👩‍👧‍👦") == 1
    assert grapheme_length("🇩🇪") == 1
    assert grapheme_length("e\u0301") == 1
    assert grapheme_length("👍🏽 Grüße") == 7


def test_bluesky_limits_graphemes_and_bytes() -> None:
    assert all(m.ok for m in measure_text("ä" * 300))
    graphemes, size = measure_text("ä" * 301)
    assert not graphemes.ok and (graphemes.length, graphemes.over) == (301, 1) and size.ok
    graphemes, size = measure_text("👨‍👩‍👧‍👦" * 121)  # 121 graphemes but 3025 bytes
    assert graphemes.ok and not size.ok and size.over == 25 and size.short_unit == "bytes"


TID = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def test_record_keys_are_deterministic_tids() -> None:
    at = datetime(2026, 5, 15, 8, 0, tzinfo=UTC)
    key = record_key("trikottag/2026-05-15/bluesky/3f9a", at)
    assert TID.match(key)
    assert key == record_key("trikottag/2026-05-15/bluesky/3f9a", at)
    assert key != record_key("trikottag/2026-05-15/bluesky/3f9b", at)
    # the timestamp in the TID is within the slot's second, so it sorts as a post of then
    value = 0
    for char in key:
        value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(char)
    assert int((value >> 10) // 1_000_000) == int(at.timestamp())


def test_little_text_escapes_every_reserved_character() -> None:
    assert escape_little_text(r"\|{}@[]()<>#*_~") == r"\\\|\{\}\@\[\]\(\)\<\>\#\*\_\~"
    assert escape_little_text("Grüße – 100 %") == "Grüße – 100 %"


def test_little_text_turns_hashtags_into_templates() -> None:
    assert to_little_text("Heute #Trikottag (an 12 Schulen) #Lilien_98!") == (
        r"Heute {hashtag|\#|Trikottag} \(an 12 Schulen\) {hashtag|\#|Lilien\_98}!")


@given(st.text(max_size=200))
def test_linkedin_shows_exactly_our_text(text: str) -> None:
    assert render_little_text(escape_little_text(text)) == (text, False)
    assert render_little_text(to_little_text(text)) == (text, False)


def test_unescaped_markup_is_cut_off_by_linkedin() -> None:
    assert render_little_text("Eintritt frei (ab 18 Uhr)") == ("Eintritt frei ", True)


def test_mastodon_counts_urls_and_remote_mentions_like_mastodon() -> None:
    url = "https://www.darmstadt.de/" + "x" * 100
    assert mastodon_length(f"Info: {url}") == len("Info: ") + 23
    assert mastodon_length("Hallo @stadt@social.darmstadt.de!") == len("Hallo @stadt!")


def test_image_sizes_are_read_from_headers() -> None:
    from channel_testkit import png

    assert image_size(png(7, 5)) == (7, 5)
    assert image_size(b"GIF89a\x10\x00\x20\x00") == (16, 32)
    jpeg = (b"\xff\xd8\xff\xe0\x00\x04ab" + b"\xff\xc0\x00\x11\x08\x00\x30\x00\x40"
            + b"\x00" * 12)
    assert image_size(jpeg) == (64, 48)
    assert image_size(b"not an image") is None
