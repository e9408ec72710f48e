"""Constants and helpers shared by the publisher tests (imported by conftest and tests)."""

from __future__ import annotations

import os
import struct
import zlib
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.posts import MediaItem, RenderedPost
from newsroom.standins import config as standin

GERMAN_TEXT = "Schöne Grüße 🎉 #Trikottag https://example.org/ä"
ALT = "Ein Kind im Lilien-Trikot jubelt vor dem Böllenfalltor."

# name -> how the account looks in the registry (base path on the stand-in) and its secret
ACCOUNTS: dict[str, dict[str, Any]] = {
    "mastodon": {"type": "mastodon", "base": "/mastodon", "secret": standin.MASTODON_TOKEN},
    "bluesky": {"type": "bluesky", "base": "/bluesky",
                "secret": f"{standin.BLUESKY_HANDLE}:{standin.BLUESKY_APP_PASSWORD}"},
    "linkedin": {"type": "linkedin", "base": "/linkedin", "account_id": "2414183",
                 "secret": standin.LINKEDIN_TOKEN},
    "facebook": {"type": "facebook", "base": "/graph/v21.0", "account_id": "104598",
                 "secret": standin.GRAPH_TOKEN},
    "instagram": {"type": "instagram", "base": "/graph/v21.0", "account_id": "178414",
                  "secret": standin.GRAPH_TOKEN},
    "threads": {"type": "threads", "base": "/graph/v1.0", "account_id": "256302",
                "secret": standin.GRAPH_TOKEN},
    "telegram": {"type": "telegram", "base": "/telegram", "account_id": "@darmstadt",
                 "secret": standin.TELEGRAM_BOT_TOKEN},
    "website": {"type": "website", "base": "/cms/posts", "secret": standin.CMS_TOKEN,
                "account_id": "https://www.darmstadt.de/newsroom/feed.atom"},
}
# The stand-in network that serves each account, and where its posts are recorded.
STANDIN_NETWORK = {"mastodon": "mastodon", "bluesky": "bluesky", "linkedin": "linkedin",
                   "facebook": "graph", "instagram": "graph", "threads": "graph",
                   "telegram": "telegram", "website": "cms"}
POST_NETWORK = {**STANDIN_NETWORK, "facebook": "facebook", "instagram": "instagram",
                "threads": "threads"}


def make_account(name: str, standins_url: str, **overrides: Any) -> ChannelAccount:
    spec = ACCOUNTS[name]
    data = {"name": name, "type": spec["type"], "display_name": f"Darmstadt auf {name}",
            "base_url": standins_url + spec["base"], "account_id": spec.get("account_id"),
            "credential": {"env": f"NEWSROOM_TEST_{name.upper()}"}}
    data.update(overrides)
    return ChannelAccount(**data)


def make_post(channel: str, *, text: str = GERMAN_TEXT, media: tuple[MediaItem, ...] = (),
              link: str | None = None, campaign: str = "trikottag") -> RenderedPost:
    return RenderedPost(
        campaign_id=campaign, occurrence=date(2026, 5, 15), channel=channel,
        channel_type=ACCOUNTS.get(channel, {}).get("type", channel),
        publish_at=datetime(2026, 5, 15, 8, 0, tzinfo=UTC), text=text, link=link,
        hashtags=("Trikottag",), media=media, title="Trikottag an Darmstädter Schulen",
    )


def png(width: int = 4, height: int = 3, *, noise: bool = False) -> bytes:
    """A valid PNG; ``noise`` makes it incompressible (and as large as its pixels)."""
    rows = b"".join(
        b"\x00" + (os.urandom(width * 3) if noise else bytes([200, 30, 30]) * width)
        for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                               0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 0 if noise else 9)) + chunk(b"IEND", b""))


def store_post(engine: Engine, post: RenderedPost) -> int:
    """Store ``post`` (with a campaign and occurrence for it) for publish_post; its id."""
    with store.session_scope(engine) as session:
        store.upsert_campaign(session, campaign_id=post.campaign_id,
                              title=post.title or post.campaign_id, kind="once",
                              topic="test", source_file=f"{post.campaign_id}.yaml",
                              definition={"id": post.campaign_id})
        occurrence = store.get_or_create_occurrence(
            session, campaign_id=post.campaign_id, occurrence_date=post.occurrence,
            first_publish_at=post.publish_at)
        (row,) = store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=[post])
        assert row.id is not None
        return row.id


class Alerts:
    """A Notifier that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def notify(self, tag, subject, body_text, body_html=None, *, attachments=()) -> bool:
        self.sent.append({"tag": tag, "subject": subject, "text": body_text})
        return True
