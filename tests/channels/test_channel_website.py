"""The website channel: an Atom feed that never duplicates an entry, written atomically."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from channel_testkit import make_post

from newsroom.catalog.models import ChannelAccount
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.channels.website import ATOM_NS, read_entries, upsert_entry

A = "{" + ATOM_NS + "}"
pytestmark = pytest.mark.anyio


@pytest.fixture
def feed_only(tmp_path: Path):
    """A website account without CMS webhook and without credential."""
    account = ChannelAccount(name="website", type="website", display_name="Darmstadt.de",
                             account_id="https://www.darmstadt.de/newsroom/feed.atom")
    feed = tmp_path / "feeds" / "website.atom"

    def make(client: httpx.AsyncClient):
        return publisher_for(account, client=client, feed_path=feed)
    return make, feed


async def test_the_feed_is_valid_atom(feed_only, client) -> None:
    make, feed = feed_only
    post = make_post("website", link="https://www.darmstadt.de/trikottag")
    result = await publish_with_retries(make(client), post, "k")

    root = ET.parse(feed).getroot()
    assert root.tag == A + "feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"
    assert root.findtext(A + "id") == "tag:www.darmstadt.de,2025:newsroom/website"
    assert root.findtext(A + "title") == "Darmstadt.de"
    assert root.findtext(A + "author/" + A + "name") == "Darmstadt.de"
    assert root.find(A + "link").attrib == {
        "rel": "self", "href": "https://www.darmstadt.de/newsroom/feed.atom",
        "type": "application/atom+xml"}
    datetime.fromisoformat(root.findtext(A + "updated"))
    entry = root.find(A + "entry")
    assert entry.findtext(A + "id") == result.remote_id == (
        "tag:www.darmstadt.de,2025:trikottag/2026-05-15/website")
    assert entry.findtext(A + "title") == "Trikottag an Darmstädter Schulen"
    assert entry.findtext(A + "published") == "2026-05-15T08:00:00Z"
    assert entry.find(A + "content").attrib == {"type": "text"}
    assert entry.findtext(A + "content") == post.text
    assert entry.find(A + "link").attrib == {"rel": "alternate",
                                             "href": "https://www.darmstadt.de/trikottag"}
    assert result.url == "https://www.darmstadt.de/trikottag"
    assert sorted(p.name for p in feed.parent.iterdir()) == ["website.atom", "website.atom.lock"]


async def test_publishing_again_never_duplicates_an_entry(feed_only, client) -> None:
    make, feed = feed_only
    publisher = make(client)
    post = make_post("website")
    first = await publisher.publish(post, idempotency_key="k")
    before = read_entries(feed)
    second = await publisher.publish(post, idempotency_key="k")
    assert first.raw["entry_created"] and not second.raw["entry_created"]
    assert read_entries(feed) == before  # not even `updated` moved
    assert len(before) == 1


def test_a_changed_post_replaces_its_entry_and_keeps_published(tmp_path: Path) -> None:
    feed = tmp_path / "feed.atom"
    meta = {"feed_id": "tag:x,2025:f", "title": "T", "author": "A", "self_url": "https://x/f"}
    entry = {"id": "tag:x,2025:a", "title": "Alt", "content": "alter Text",
             "published": "2026-05-15T08:00:00Z", "link": ""}
    assert upsert_entry(feed, entry=entry, now=datetime(2026, 5, 1, tzinfo=UTC), **meta)
    changed = {**entry, "content": "neuer Text", "published": "2026-06-01T08:00:00Z"}
    assert not upsert_entry(feed, entry=changed, now=datetime(2026, 5, 2, tzinfo=UTC), **meta)
    [only] = read_entries(feed)
    assert only["content"] == "neuer Text"
    assert only["published"] == "2026-05-15T08:00:00Z"
    assert only["updated"] == "2026-05-02T00:00:00Z"


async def test_entries_are_newest_first_and_capped(feed_only, client, tmp_path) -> None:
    account = ChannelAccount(name="website", type="website", display_name="D")
    publisher = publisher_for(account, client=client, feed_path=tmp_path / "f.atom",
                              max_entries=3)
    for day in range(1, 6):
        post = make_post("website", campaign=f"tag-{day}")
        post = type(post)(**{**post.__dict__,
                             "publish_at": datetime(2026, 5, day, 8, tzinfo=UTC)})
        await publisher.publish(post, idempotency_key=f"k{day}")
    assert [e["id"].split(":")[-1] for e in read_entries(tmp_path / "f.atom")] == [
        "tag-5/2026-05-15/website", "tag-4/2026-05-15/website", "tag-3/2026-05-15/website"]


async def test_concurrent_publishes_lose_no_entry(feed_only, client) -> None:
    make, feed = feed_only
    publisher = make(client)
    posts = [make_post("website", campaign=f"kampagne-{n}") for n in range(20)]
    await asyncio.gather(*(publisher.publish(p, idempotency_key=p.post_key) for p in posts))
    assert len(read_entries(feed)) == 20
    assert not list(feed.parent.glob("*.tmp"))


async def test_check_reports_a_writable_feed(feed_only, client) -> None:
    make, _ = feed_only
    check = await make(client).check()
    assert check.ok and check.identity == "https://www.darmstadt.de/newsroom/feed.atom"


async def test_posts_due_together_share_one_rewrite_of_the_feed(tmp_path, monkeypatch) -> None:
    """Forty website posts at one second: one read-modify-write of the feed, not forty
    (each rewrite parses, writes and fsyncs under the file lock), every entry kept once."""
    import newsroom.channels.website as website

    writes = []
    real_write = website._atomic_write
    monkeypatch.setattr(website, "_atomic_write",
                        lambda path, data: (writes.append(path), real_write(path, data)))
    feed = tmp_path / "feed.atom"
    meta = {"feed_id": "tag:x,2025:f", "title": "T", "author": "A", "self_url": "https://x/f"}

    def entry(i: int) -> dict[str, str]:
        return {"id": f"tag:x,2025:e{i}", "title": f"T{i}", "content": f"Text {i}",
                "published": f"2026-05-15T08:00:{i:02d}Z", "link": ""}

    created = await asyncio.gather(*(website.upsert_entry_batched(feed, entry=entry(i), **meta)
                                     for i in range(40)))
    assert created == [True] * 40
    assert len(writes) == 1
    assert sorted(e["id"] for e in read_entries(feed)) == sorted(entry(i)["id"]
                                                                for i in range(40))
    # The same entries again, together with one new one: only the new one is created.
    again = await asyncio.gather(*(website.upsert_entry_batched(feed, entry=entry(i), **meta)
                                   for i in (0, 1, 40)))
    assert again == [False, False, True]
    assert len(read_entries(feed)) == 41 and len(writes) == 2
