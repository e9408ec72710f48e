"""Each network's one length rule, against tricky texts, with the numbers worked out from
the network's own documentation or code (not from our counting functions).

Sources:
- Mastodon: app/validators/status_length_validator.rb (graphemes via
  ``each_grapheme_cluster``; every URL "x" * 23; a mention rewritten to
  ``@#{screen_name.split('@').first}``) and config/initializers/twitter_regex.rb (URL
  pattern: balanced parentheses kept, a trailing ``.`` or ``?`` left out, the protocol
  required), https://github.com/mastodon/mastodon; https://docs.joinmastodon.org/user/posting/
- Bluesky: ``maxGraphemes: 300`` and ``maxLength: 3000`` (UTF-8 bytes) of the ``text`` of
  app.bsky.feed.post, https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/feed/post.json
- Telegram: "1-4096 characters after entities parsing", captions "0-1024",
  https://core.telegram.org/bots/api#sendmessage ; lengths in UTF-16 code units,
  https://core.telegram.org/api/entities
- Threads: "Text posts are limited to 500 characters. Emojis are counted as the number of
  UTF-8 bytes.", https://developers.facebook.com/documentation/threads/posts
- LinkedIn: commentary up to 3000 characters; Facebook 63,206; Instagram captions "Maximum
  2200 characters, 30 hashtags" (https://developers.facebook.com/docs/instagram-platform/
  instagram-graph-api/reference/ig-user/media). No unit named: we count UTF-16 code units,
  never fewer than they do.
- Graphemes: extended grapheme clusters, https://www.unicode.org/reports/tr29/ (GB3: CR LF
  is one; GB9/GB11: combining marks and ZWJ sequences join; GB12/13: flag pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels import PUBLISHERS, measure_text, requires_image

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # 4 emoji (astral: 2 UTF-16 units, 4 bytes) + 3 ZWJ (3 bytes)
WIKI = "https://de.wikipedia.org/wiki/Darmstadt_(Begriffsklärung)"  # 57 code points, one ä


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    mastodon: int  # characters as StatusLengthValidator counts them
    graphemes: int  # Bluesky's graphemes
    utf8: int  # Bluesky's bytes
    utf16: int  # Telegram, LinkedIn, Facebook, Instagram
    threads: int


CASES = [
    # The parenthesis pair belongs to the URL (valid_url_balanced_parens), the full stop
    # does not (valid_url_path_ending_chars): "Siehe " + 23 + ".".
    Case("url-with-parentheses", f"Siehe {WIKI}.", mastodon=6 + 23 + 1,
         graphemes=6 + 57 + 1, utf8=6 + 57 + 1 + 1, utf16=64, threads=64),
    # A query string ends at its last valid_url_query_ending_char: the "." is text.
    Case("query-string", "Anmeldung: https://darmstadt.de/formular?id=42&lang=de.",
         mastodon=11 + 23 + 1, graphemes=55, utf8=55, utf16=55, threads=55),
    # An IDN host is part of the URL (twitter-text's domain chars are all but ASCII
    # punctuation); "Bücher" and "bücherei" have one ü (2 bytes) each.
    Case("idn-host", "Bücher: https://bücherei.darmstadt.de/katalog", mastodon=8 + 23,
         graphemes=45, utf8=45 + 2, utf16=45, threads=45),
    # "@stadt@social.darmstadt.de" counts as "@stadt"; the local "@presse" as itself.
    Case("remote-mention", "Danke @stadt@social.darmstadt.de und @presse!",
         mastodon=45 - len("@social.darmstadt.de"), graphemes=45, utf8=45, utf16=45,
         threads=45),
    # An e-mail address is neither a mention (a word character before @) nor a URL.
    Case("e-mail-address", "presse@darmstadt.de", mastodon=19, graphemes=19, utf8=19,
         utf16=19, threads=19),
    # Without a protocol there is no URL for Mastodon (extract_url_without_protocol: false).
    Case("domain-without-protocol", "Mehr auf darmstadt.de", mastodon=21, graphemes=21,
         utf8=21, utf16=21, threads=21),
    # One grapheme of 7 code points: 4 × 2 + 3 = 11 UTF-16 units, 4 × 4 + 3 × 3 = 25 bytes.
    Case("zwj-emoji", f"Familienfest {FAMILY}", mastodon=13 + 1, graphemes=13 + 1,
         utf8=13 + 25, utf16=13 + 11, threads=13 + 25),
    # Two flags, each a pair of regional indicators (2 × 2 units, 2 × 4 bytes).
    Case("flags", "Europa 🇪🇺🇩🇪", mastodon=7 + 2, graphemes=7 + 2, utf8=7 + 16,
         utf16=7 + 8, threads=7 + 16),
    # ❤️ = U+2764 (3 bytes) + VS16 U+FE0F (3 bytes): one grapheme, 2 units, 6 bytes.
    Case("emoji-with-variation-selector", "Danke ❤️", mastodon=7, graphemes=7, utf8=6 + 6,
         utf16=8, threads=6 + 6),
    # "e" + U+0301 is one grapheme of 2 code points (U+0301: 2 bytes); ü is 2 bytes.
    Case("combining-mark", "Cafe\u0301 Zürich", mastodon=11, graphemes=11, utf8=10 + 2 + 2,
         utf16=12, threads=12),
    # CR LF is one grapheme (GB3) but two code units and bytes.
    Case("crlf", "Zeile 1\r\nZeile 2", mastodon=15, graphemes=15, utf8=16, utf16=16,
         threads=16),
    # A long URL weighs 23 however long it is, twice if written twice.
    Case("two-long-urls", f"https://darmstadt.de/{'x' * 200} und https://darmstadt.de/a",
         mastodon=23 + 5 + 23, graphemes=21 + 200 + 5 + 22, utf8=248, utf16=248,
         threads=248),
]


def account(kind: ChannelType, **extra: object) -> ChannelAccount:
    return ChannelAccount(name=f"konto-{kind.value}", type=kind, display_name="Konto", **extra)


def counts(kind: ChannelType, text: str, **extra: object) -> list[tuple[int, int | None]]:
    return [(m.length, m.limit) for m in measure_text(text, account(kind, **extra))]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_network_counts_as_documented(case: Case) -> None:
    assert counts(ChannelType.MASTODON, case.text) == [(case.mastodon, 500)]
    assert counts(ChannelType.BLUESKY, case.text) == [(case.graphemes, 300), (case.utf8, 3000)]
    assert counts(ChannelType.TELEGRAM, case.text) == [(case.utf16, 4096)]
    assert counts(ChannelType.THREADS, case.text) == [(case.threads, 500)]
    assert counts(ChannelType.LINKEDIN, case.text) == [(case.utf16, 3000)]
    assert counts(ChannelType.FACEBOOK, case.text) == [(case.utf16, 63206)]
    assert counts(ChannelType.INSTAGRAM, case.text)[0] == (case.utf16, 2200)


def test_mastodon_takes_the_instance_s_limit_and_url_weight() -> None:
    text = "a" * 500 + " https://x.org"
    assert counts(ChannelType.MASTODON, text) == [(500 + 1 + 23, 500)]
    assert counts(ChannelType.MASTODON, text, max_characters=1000,
                  characters_reserved_per_url=30) == [(531, 1000)]


def test_telegram_captions_have_their_own_limit() -> None:
    [caption] = measure_text("a" * 1025, account(ChannelType.TELEGRAM), has_image=True)
    assert (caption.limit, caption.ok, caption.over) == (1024, False, 1)


def test_instagram_counts_hashtags_and_needs_an_image() -> None:
    text = " ".join(f"#Tag{n}" for n in range(31))
    assert counts(ChannelType.INSTAGRAM, text)[1] == (31, 30)
    assert requires_image(account(ChannelType.INSTAGRAM))
    assert not requires_image(account(ChannelType.MASTODON))


@pytest.mark.parametrize("kind", [ChannelType.WEBSITE, ChannelType.EMAIL])
def test_channels_without_a_limit_measure_nothing(kind: ChannelType) -> None:
    assert measure_text("a" * 100_000, account(kind)) == []


def test_every_measurement_names_its_unit_for_hints() -> None:
    for kind in (k for k in PUBLISHERS if k != ChannelType.MANUAL):  # needs an owner
        for measurement in measure_text(f"Ä {FAMILY} https://x.org", account(kind)):
            assert measurement.short_unit in ("characters", "bytes", "hashtags")
            assert measurement.short_unit_de in ("Zeichen", "Bytes", "Hashtags")
            assert measurement.short_unit in measurement.describe()


def test_bluesky_over_the_byte_limit_says_bytes() -> None:
    graphemes, size = measure_text(FAMILY * 121, account(ChannelType.BLUESKY))
    assert graphemes.ok and (size.length, size.over, size.short_unit) == (3025, 25, "bytes")
