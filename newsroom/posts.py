"""Rendered posts: the exact text, media and alt text one channel will publish.

A :class:`RenderedPost` is a value object. Rendering produces it, approval signs its
``content_hash``, a publisher sends it. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class MediaItem:
    """An image with its alt text. ``source`` is a file path in the catalog or a URL."""

    source: str
    alt: str
    sha256: str = ""  # of the file's bytes, so swapping the picture changes the hash

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "alt": self.alt, "sha256": self.sha256}


@dataclass(frozen=True)
class RenderedPost:
    campaign_id: str
    occurrence: date  # the local (Europe/Berlin) date of the campaign's occurrence
    channel: str  # account name from the channel registry, e.g. "mastodon"
    channel_type: str  # e.g. "mastodon", "bluesky", "manual"
    publish_at: datetime  # timezone-aware
    text: str
    language: str = "de"
    link: str | None = None
    hashtags: tuple[str, ...] = ()
    media: tuple[MediaItem, ...] = field(default_factory=tuple)
    title: str = ""  # campaign title: subject of press e-mails, Atom entry title

    @property
    def post_key(self) -> str:
        """Stable identity of this post: campaign, occurrence and channel."""
        return f"{self.campaign_id}/{self.occurrence.isoformat()}/{self.channel}"

    def canonical(self) -> dict:
        return {
            "campaign_id": self.campaign_id,
            "occurrence": self.occurrence.isoformat(),
            "channel": self.channel,
            "channel_type": self.channel_type,
            "publish_at": self.publish_at.isoformat(),
            "text": self.text,
            "language": self.language,
            "link": self.link,
            "hashtags": list(self.hashtags),
            "media": [m.as_dict() for m in self.media],
            "title": self.title,
        }

    @property
    def content_hash(self) -> str:
        """SHA-256 of what, where and when: an approval is bound to exactly this."""
        payload = json.dumps(self.canonical(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @classmethod
    def from_canonical(cls, data: dict) -> RenderedPost:
        return cls(
            campaign_id=data["campaign_id"],
            occurrence=date.fromisoformat(data["occurrence"]),
            channel=data["channel"],
            channel_type=data["channel_type"],
            publish_at=datetime.fromisoformat(data["publish_at"]),
            text=data["text"],
            language=data.get("language", "de"),
            link=data.get("link"),
            hashtags=tuple(data.get("hashtags", ())),
            media=tuple(MediaItem(**m) for m in data.get("media", ())),
            title=data.get("title", ""),
        )


def bundle_hash(posts: list[RenderedPost] | tuple[RenderedPost, ...]) -> str:
    """One hash over all posts of an occurrence, order-independent."""
    digest = hashlib.sha256()
    for h in sorted(p.content_hash for p in posts):
        digest.update(h.encode())
    return digest.hexdigest()
