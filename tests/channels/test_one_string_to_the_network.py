"""What is approved is what each network receives, byte for byte.

Every shipped campaign (campaigns/*.yaml with the shipped registry) is rendered as
``newsroom preview`` and the approval page render it, and published through the real
publishers over HTTP to the stand-ins. The text each stand-in recorded (for LinkedIn: the
text its little text format shows; for Bluesky: the record's ``text``, facets aside) must
be the approved text: the RenderedPost rebuilt with it has the approved content hash.

E-mail (SMTP, tests/channels/test_channel_email.py) and manual channels (a notice to a
person) are not networks with a stand-in and are left out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from channel_testkit import ACCOUNTS, POST_NETWORK
from pydantic import SecretStr

from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.catalog.schedule import next_occurrence, on_demand_occurrence
from newsroom.catalog.validation import load_catalog
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.posts import MediaItem, RenderedPost
from newsroom.preview import build_preview
from newsroom.rendering.render import render_post
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.anyio

SHIPPED = Path(__file__).resolve().parents[2] / "campaigns"
REGISTRY_STANDINS = "http://127.0.0.1:8900"
# Instagram and Threads fetch images from a public URL themselves; the shipped campaigns
# give files, so these two get a URL in their place (the text is what is compared).
PUBLIC_IMAGE = "https://www.darmstadt.de/bilder/trikottag.jpg"
SKIPPED = {ChannelType.EMAIL, ChannelType.MANUAL}


def shipped_catalog() -> Catalog:
    report = load_catalog(SHIPPED)
    assert report.catalog is not None, report.issues
    return report.catalog


def approved_posts(catalog: Catalog) -> list[RenderedPost]:
    """Each campaign's next occurrence (or an on-demand one) on every channel, with the
    signatories the approval asks for, as the preview shows them."""
    start = datetime(2026, 1, 1, tzinfo=BERLIN)
    posts = []
    for campaign_id in sorted(catalog.campaigns):
        source = catalog.campaign(campaign_id)
        occurrence = (next_occurrence(source.campaign, start)
                      or on_demand_occurrence(source.campaign, start.replace(month=6, hour=12)))
        for channel, at in occurrence.channel_times().items():
            posts.append(render_post(catalog, source, catalog.account(channel), publish_at=at,
                                     occurrence_date=occurrence.date))
    return posts


def on_the_standins(account: ChannelAccount, standins_url: str) -> ChannelAccount:
    assert account.base_url and account.base_url.startswith(REGISTRY_STANDINS), account
    return account.model_copy(update={
        "base_url": standins_url + account.base_url.removeprefix(REGISTRY_STANDINS)})


def received_text(standins, account: ChannelAccount) -> str:
    posts = standins.posts(POST_NETWORK[account.type.value])
    assert len(posts) == 1, posts
    return posts[0]["text"]


async def publish_and_read(post: RenderedPost, account: ChannelAccount, standins,
                           client: httpx.AsyncClient) -> str:
    standins.reset()
    account = on_the_standins(account, standins.base_url)
    publisher = publisher_for(account, client=client, media_root=SHIPPED,
                              credential=SecretStr(ACCOUNTS[account.type.value]["secret"]))
    for attribute in ("media_poll_interval", "container_poll_interval"):
        if hasattr(publisher, attribute):
            setattr(publisher, attribute, 0.01)
    sent = post
    if account.type in (ChannelType.INSTAGRAM, ChannelType.THREADS):
        sent = dataclasses.replace(post, media=tuple(
            MediaItem(source=PUBLIC_IMAGE, alt=m.alt) for m in post.media))
    result = await publish_with_retries(publisher, sent, f"{post.post_key}/hash-test")
    assert result.status == "published"
    return received_text(standins, account)


async def test_every_shipped_post_reaches_its_network_exactly_as_approved(
        standins, client) -> None:
    catalog = shipped_catalog()
    posts = approved_posts(catalog)
    previews = {(p.post.campaign_id, p.post.channel): p.post for campaign_id in catalog.campaigns
                for p in build_preview(catalog, campaign_id,
                                       now=datetime(2026, 1, 1, tzinfo=BERLIN)).posts}
    checked = set()
    for post in posts:
        account = catalog.account(post.channel)
        if account.type in SKIPPED:
            continue
        preview = previews.get((post.campaign_id, post.channel))
        if preview is not None and preview.occurrence == post.occurrence:
            assert preview.text == post.text  # what the preview shows is what is approved
        text = await publish_and_read(post, account, standins, client)
        assert text == post.text, (post.post_key, text, post.text)
        assert (hashlib.sha256(text.encode("utf-8")).digest()
                == hashlib.sha256(post.text.encode("utf-8")).digest())
        assert dataclasses.replace(post, text=text).content_hash == post.content_hash
        checked.add((post.campaign_id, account.type))
    campaigns = {campaign_id for campaign_id, _ in checked}
    assert campaigns == set(catalog.campaigns)  # every shipped campaign went out
    assert {kind for _, kind in checked} >= {
        ChannelType.MASTODON, ChannelType.BLUESKY, ChannelType.LINKEDIN, ChannelType.FACEBOOK,
        ChannelType.INSTAGRAM, ChannelType.THREADS, ChannelType.TELEGRAM, ChannelType.WEBSITE}


INLINE_IF = """\
Der Magistrat hat beschlossen{% if signatories %}, unterzeichnet von \
{{ signatories_text }}{% endif %}.
Weitere Informationen des Magistrats.{% if link %}{% endif %}
{{ link }}
{% if signatories %}
Es zeichnen: {{ signatories_text }}
{% endif %}

{{ hashtags }}"""


async def test_an_inline_endif_keeps_its_line_break_in_preview_and_at_the_network(
        standins, client) -> None:
    catalog = shipped_catalog()
    source = catalog.campaign("trikottag")
    source.campaign = source.campaign.model_copy(update={
        "content": source.campaign.content.model_copy(update={"text": INLINE_IF,
                                                              "channels": {}})})
    start = datetime(2026, 1, 1, tzinfo=BERLIN)
    occurrence = next_occurrence(source.campaign, start)
    account = catalog.account("mastodon")
    post = render_post(catalog, source, account, publish_at=occurrence.first_publish_at,
                       occurrence_date=occurrence.date,
                       signatories=["Anna Beispiel", "Ben Muster"])
    link = post.link
    assert post.text == (
        "Der Magistrat hat beschlossen, unterzeichnet von Anna Beispiel und Ben Muster.\n"
        "Weitere Informationen des Magistrats.\n"
        f"{link}\n"
        "Es zeichnen: Anna Beispiel und Ben Muster\n"
        "\n"
        + " ".join(f"#{t}" for t in post.hashtags))
    text = await publish_and_read(post, account, standins, client)
    assert "des Magistrats.\nhttps://" in text
    assert text == post.text
    without = render_post(catalog, source, account, publish_at=post.publish_at,
                          occurrence_date=occurrence.date, signatories=[])
    assert without.text == (  # the lines of tags alone vanish, no empty line is left
        "Der Magistrat hat beschlossen.\nWeitere Informationen des Magistrats.\n"
        f"{link}\n\n" + " ".join(f"#{t}" for t in post.hashtags))
