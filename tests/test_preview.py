"""Previews of the seed catalog and of small catalogs built in tmp_path."""

from __future__ import annotations

import dataclasses
import re
import shutil
from datetime import date, datetime
from pathlib import Path

import pytest
from markupsafe import escape

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.channels._text import mastodon_length
from newsroom.preview import (
    PreviewPost,
    build_preview,
    format_preview_text,
    rich_text,
    write_preview_html,
)
from newsroom.rendering import render_occurrence
from newsroom.timeutil import BERLIN

SEED = Path(__file__).resolve().parents[1] / "campaigns"
TODAY = date(2026, 12, 1)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN)
SHIPPED = sorted(p.stem for p in SEED.glob("*.yaml"))


def load(root: Path) -> Catalog:
    report = load_catalog(root, today=TODAY)
    assert report.ok, "\n".join(i.format() for i in report.errors)
    assert report.catalog is not None
    return report.catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load(SEED)


@pytest.fixture
def tmp_catalog(tmp_path: Path):
    """Copy the seed catalog; returns a function that adds a campaign file and loads it."""
    root = tmp_path / "campaigns"
    shutil.copytree(SEED, root)

    def add(name: str, text: str) -> Catalog:
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")
        return load(root)

    return add


def campaign_yaml(campaign_id: str, *, slot: str, content: str) -> str:
    return f"""\
id: {campaign_id}
title: Testkampagne {campaign_id}
topic: Test
kind: awareness_day
requested_by: {{office: amt-kommunikation}}
approval:
  approvers:
    - person: benz
  deadline_before: 48h
slots:
{slot}
content:
{content}
"""


def test_shipped_campaigns_are_the_seven_expected(catalog: Catalog) -> None:
    assert set(SHIPPED) == set(catalog.campaigns)


@pytest.mark.parametrize("campaign_id", SHIPPED)
def test_preview_of_every_shipped_campaign(catalog: Catalog, campaign_id: str) -> None:
    preview = build_preview(catalog, campaign_id, now=NOW)
    assert preview.posts, "a preview without posts"
    assert preview.day >= TODAY
    text = format_preview_text(preview)
    for item in preview.posts:
        assert isinstance(item, PreviewPost)
        assert item.post.text in text  # the exact text, unchanged
        header = (
            f"── {item.post.channel} ({item.account.display_name}) · "
            f"{item.post.publish_at.astimezone(BERLIN):%Y-%m-%d %H:%M} "
        )
        assert header in text
        for measurement in item.measurements:
            assert f"Länge/length: {measurement.describe()} ✓" in text
        for media in item.post.media:
            assert f"[Bild] {media.source} — Alt: {media.alt}" in text
        assert item.ok
    assert preview.ok


@pytest.mark.parametrize("campaign_id", [c for c in SHIPPED if c != "unwetterwarnung"])
def test_preview_text_is_exactly_what_rendering_produces(
    catalog: Catalog, campaign_id: str
) -> None:
    preview = build_preview(catalog, campaign_id, now=NOW)
    rendered = render_occurrence(catalog, campaign_id, preview.day)
    assert [p.post for p in preview.posts] == rendered


def test_header_and_measurement_line_of_the_27_january_post(catalog: Catalog) -> None:
    preview = build_preview(catalog, "nie-wieder-ist-jetzt", day=date(2027, 1, 27))
    text = format_preview_text(preview)
    assert "── mastodon (@darmstadt@social.example.org) · 2027-01-27 09:00 (CET) ──" in text
    mastodon = next(p for p in preview.posts if p.post.channel == "mastodon")
    expected = mastodon_length(mastodon.post.text)
    assert f"Länge/length: {expected}/500 characters (graphemes; every URL counts as 23) ✓" in text
    bluesky = next(p for p in preview.posts if p.post.channel == "bluesky")
    assert [m.short_unit for m in bluesky.measurements] == ["characters", "bytes"]
    assert [p.post.channel for p in preview.posts] == [
        "mastodon",
        "bluesky",
        "instagram",
        "facebook",
        "linkedin",
        "website",
        "presse",
        "whatsapp",
    ]
    assert "To: redaktion-echo@example.org" in text  # press e-mail shows its recipients
    assert "Posted by hand on whatsapp by amt-kommunikation" in text


def test_signatories_default_to_everyone_asked(catalog: Catalog) -> None:
    preview = build_preview(catalog, "europawahl-2029", day=date(2029, 6, 9))
    instagram = next(p for p in preview.posts if p.post.channel == "instagram")
    assert "Es rufen auf: Oberbürgermeister Hanno Benz, Bürgermeisterin Barbara Akdeniz" in (
        instagram.post.text
    )


def test_without_a_day_the_next_occurrence_from_now(catalog: Catalog) -> None:
    preview = build_preview(
        catalog, "schadstoffmobil", now=datetime(2027, 3, 2, 12, 0, tzinfo=BERLIN)
    )
    assert preview.day == date(2027, 4, 5)
    assert all(
        p.post.publish_at == datetime(2027, 4, 5, 8, 0, tzinfo=BERLIN) for p in preview.posts
    )
    assert "2027-04-05 08:00 (CEST)" in format_preview_text(preview)


def test_next_occurrence_is_the_whole_day(catalog: Catalog) -> None:
    # At 10:02 the 10:00 slot has passed, the 10:05 one has not: show the whole day.
    now = datetime(2027, 1, 12, 10, 2, tzinfo=BERLIN)
    preview = build_preview(catalog, "whatsapp-kanal-start", now=now)
    assert preview.day == date(2027, 1, 12)
    assert len(preview.posts) == 7


def test_a_day_without_occurrence_names_the_next_dates(catalog: Catalog) -> None:
    with pytest.raises(LookupError) as caught:
        build_preview(catalog, "schadstoffmobil", day=date(2027, 1, 5))
    message = str(caught.value)
    assert "publishes nothing on 2027-01-05" in message
    assert "2027-02-01, 2027-03-01, 2027-04-05" in message
    assert "2027-05-03" not in message  # up to three


def test_a_day_after_the_last_occurrence_names_the_last_one(catalog: Catalog) -> None:
    with pytest.raises(LookupError, match="no later dates; its last date was 2027-06-04"):
        build_preview(catalog, "trikottag", day=date(2027, 6, 5))
    with pytest.raises(LookupError, match="last date was 2027-06-04"):
        build_preview(catalog, "trikottag", now=datetime(2028, 1, 1, tzinfo=BERLIN))


def test_unknown_campaign_and_channel_suggest_a_name(catalog: Catalog) -> None:
    with pytest.raises(LookupError, match="did you mean 'trikottag'"):
        build_preview(catalog, "trikotag", now=NOW)
    with pytest.raises(LookupError, match="did you mean 'mastodon'"):
        build_preview(catalog, "trikottag", channel="mastadon", now=NOW)
    with pytest.raises(LookupError, match="does not publish on 'linkedin'"):
        build_preview(catalog, "trikottag", channel="linkedin", now=NOW)


def test_one_channel_only(catalog: Catalog) -> None:
    preview = build_preview(catalog, "whatsapp-kanal-start", channel="whatsapp", now=NOW)
    assert [p.post.channel for p in preview.posts] == ["whatsapp"]
    assert preview.posts[0].post.publish_at == datetime(2027, 1, 12, 10, 5, tzinfo=BERLIN)


def test_crisis_template_previews_as_if_triggered_now(catalog: Catalog) -> None:
    preview = build_preview(catalog, "unwetterwarnung", now=NOW)
    assert preview.on_demand
    assert preview.day == NOW.date()
    assert [p.post.channel for p in preview.posts] == [
        "mastodon",
        "bluesky",
        "facebook",
        "telegram",
        "website",
        "presse",
        "whatsapp",
    ]
    assert {p.post.publish_at for p in preview.posts} == {NOW}
    assert "triggered on demand" in format_preview_text(preview)
    on_day = build_preview(catalog, "unwetterwarnung", day=date(2027, 7, 1), channel="telegram")
    assert [p.post.channel for p in on_day.posts] == ["telegram"]
    assert on_day.posts[0].post.publish_at == datetime(2027, 7, 1, 12, 0, tzinfo=BERLIN)


# --- HTML -----------------------------------------------------------------------------


@pytest.mark.parametrize("campaign_id", SHIPPED)
def test_html_preview_has_a_card_per_channel(
    catalog: Catalog, campaign_id: str, tmp_path: Path
) -> None:
    preview = build_preview(catalog, campaign_id, now=NOW)
    written = write_preview_html(preview, tmp_path / "out" / f"{campaign_id}.html")
    assert written.is_file()
    html = written.read_text(encoding="utf-8")
    assert '<html lang="de">' in html
    assert "<style>" in html
    assert not re.search(r"""(src|href)=["'](?!data:|https://www\.darmstadt)""", html)
    assert "<link " not in html and "<script" not in html  # self-contained, no scripts
    assert html.count('<section class="card') == len(preview.posts)
    for item in preview.posts:
        assert f'id="channel-{item.post.channel}"' in html
        assert str(escape(item.account.display_name)) in html
        for media in item.post.media:
            assert f'alt="{escape(media.alt)}"' in html
        for measurement in item.measurements:
            assert measurement.describe() in html
    if any(p.post.media for p in preview.posts):
        assert 'src="data:image/jpeg;base64,' in html


def test_html_shows_network_specific_cards(catalog: Catalog, tmp_path: Path) -> None:
    preview = build_preview(catalog, "nie-wieder-ist-jetzt", day=date(2027, 1, 27))
    html = write_preview_html(preview, tmp_path / "p.html").read_text(encoding="utf-8")
    for layout in (
        "layout-social",
        "layout-instagram",
        "layout-website",
        "layout-email",
        "layout-bubble",
    ):
        assert layout in html
    assert "<dt>Subject</dt><dd><b>Nie wieder ist jetzt – Gedenken am 27. Januar</b></dd>" in html
    assert "To be posted by hand on whatsapp" in html
    assert '<span class="tag">#NieWiederIstJetzt</span>' in html
    assert '<a class="link" href="https://www.darmstadt.example.org/gedenken"' in html
    assert "2027-01-27 09:00 (CET)" in html


def test_post_text_is_escaped_in_html(tmp_catalog, tmp_path: Path) -> None:
    catalog = tmp_catalog(
        "boese",
        campaign_yaml(
            "boese",
            slot='  - at: "2027-03-03 11:00"\n    channels: [mastodon, website]',
            content=(
                "  text: |\n"
                "    Achtung <script>alert('x')</script> & \"Zitat\" <b>fett</b>\n"
                "    Mehr: https://www.darmstadt.example.org/a?b=1&c=2 #Darmstadt"
            ),
        ),
    )
    preview = build_preview(catalog, "boese", now=NOW)
    assert "<script>alert('x')</script>" in format_preview_text(preview)  # the text is exact
    html = write_preview_html(preview, tmp_path / "p.html").read_text(encoding="utf-8")
    assert "<script" not in html
    assert "<b>fett</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;Zitat&#34;" in html
    assert 'href="https://www.darmstadt.example.org/a?b=1&amp;c=2"' in html


def test_rich_text_highlights_links_and_hashtags() -> None:
    html = str(rich_text("Hallo <i>\nhttps://example.org/x#frag #Tag1 a#b"))
    assert html.startswith("Hallo &lt;i&gt;\n")
    assert '<a class="link" href="https://example.org/x#frag"' in html
    assert '<span class="tag">#Tag1</span>' in html
    assert "a#b" in html  # not a hashtag


def test_too_long_post_is_marked(tmp_catalog, tmp_path: Path) -> None:
    long_text = "Sehr langer Text. " * 20  # 360 characters, Bluesky allows 300 graphemes
    catalog = tmp_catalog(
        "zu-lang",
        campaign_yaml(
            "zu-lang",
            slot='  - at: "2027-03-03 11:00"\n    channels: [mastodon]',
            content="  text: Kurz.",
        ),
    )
    # Validation refuses posts that are too long, so lengthen it after loading.
    source = catalog.campaigns["zu-lang"]
    campaign = source.campaign
    source.campaign = campaign.model_copy(
        update={
            "content": campaign.content.model_copy(update={"text": long_text.strip()}),
            "slots": [campaign.slots[0].model_copy(update={"channels": ["bluesky", "mastodon"]})],
        }
    )
    preview = build_preview(catalog, "zu-lang", now=NOW)
    bluesky, mastodon = preview.posts
    assert not bluesky.ok and mastodon.ok and not preview.ok
    length = bluesky.measurements[0].length
    text = format_preview_text(preview)
    unit = "characters (graphemes: 👩‍👩‍👧 counts 1)"
    assert f"Länge/length: {length}/300 {unit} ✗ over by {length - 300} characters" in text
    assert "✗ 1 of 2 posts need work: bluesky" in text
    html = write_preview_html(preview, tmp_path / "p.html").read_text(encoding="utf-8")
    assert (
        f'<div class="over">Länge/length: {length}/300 {unit} ✗ over by {length - 300} '
        'characters</div>'
        in html
    )
    assert "Some posts need work" in html


def test_instagram_without_image_is_not_ok(catalog: Catalog) -> None:
    preview = build_preview(catalog, "trikottag", channel="instagram", now=NOW)
    item = preview.posts[0]
    item.post = dataclasses.replace(item.post, media=())
    assert item.missing_image and not item.ok
    assert "instagram needs an image" in format_preview_text(preview)


@pytest.mark.parametrize(("campaign_id", "day", "line"), [
    # 72h before 27 January 09:00; an absolute deadline as written; a crisis template.
    ("nie-wieder-ist-jetzt", date(2027, 1, 27), "Approval deadline: 2027-01-24 09:00 (CET)"),
    ("europawahl-2029", date(2029, 6, 9), "Approval deadline: 2029-06-06 12:00 (CEST)"),
    ("unwetterwarnung", None, "Approval: pre-approved (no deadline)"),
])
def test_preview_shows_the_approval_deadline(catalog: Catalog, tmp_path: Path,
                                             campaign_id: str, day: date | None,
                                             line: str) -> None:
    preview = build_preview(catalog, campaign_id, day=day, now=NOW)
    assert format_preview_text(preview).splitlines()[1] == line
    html = write_preview_html(preview, tmp_path / "p.html").read_text(encoding="utf-8")
    assert f'<p class="approval">{line}</p>' in html
