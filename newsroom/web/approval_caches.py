"""What the approval page (:mod:`newsroom.web.approval`) keeps between requests, and how
it finds a post's image in the catalog.

Only what a content hash, or the store having it, makes true for good is kept: the posts
of a bundle hash, the posts as a link shows them, an ``approval.viewed`` the store holds.
Never a link's request, its gate, the decisions or the audit trail's absence: those are
read at every request (tests/approval/test_page_caches.py breaks each of these on purpose).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import select

from newsroom import store
from newsroom.posts import RenderedPost, bundle_hash
from newsroom.store import AuditEvent
from newsroom.web.pages import WebContext


def resolve_inside(root: Path, source: str) -> Path | None:
    """``source`` resolved under the catalog folder ``root``; None for a URL or a path
    that leads out of it."""
    if urlsplit(source).scheme:
        return None
    resolved = root.resolve()
    path = (resolved / source).resolve()
    return path if path.is_relative_to(resolved) else None


# Cached for the page, which only says whether it shows an image: resolving walks every
# component of the path. Not for serving one: a file can become a link out of the catalog
# while the catalog's root (the key) stays the same.
resolve_inside_cached = lru_cache(maxsize=1024)(resolve_inside)


def media_path(catalog: Any, source: str, *, serving: bool = False) -> Path | None:
    path = (resolve_inside if serving else resolve_inside_cached)(catalog.root, source)
    return path if path is not None and path.is_file() else None


def viewed_key(nonce: str, now: datetime) -> str:
    """The ``once_key`` of an ``approval.viewed`` event: one per link and minute."""
    return f"approval.viewed:{nonce}:{int(now.timestamp()) // 60}"


class Lru:
    """A small thread-safe LRU mapping (the page's caches below)."""

    def __init__(self, size: int):
        self._size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class PageCaches:
    """What the approval page keeps between requests: only what a content hash, or the
    store having it, makes true for good. Never the link's request, its gate, the
    decisions or the audit trail's absence: those are read at every request."""

    def __init__(self) -> None:
        # (occurrence id, bundle hash) -> the posts with exactly that bundle hash, in order
        self.posts = Lru(256)
        # (token, bundle hash, previous bundle hash) -> (catalog, the posts as shown, their
        # HTML)
        self.shown = Lru(1024)
        # once_key -> True: this ``approval.viewed`` is in the store (the trail only grows)
        self.viewed = Lru(4096)


def page_caches(context: WebContext) -> PageCaches:
    caches = context.caches.get("approval")
    if caches is None:
        caches = context.caches.setdefault("approval", PageCaches())
    return caches


def viewed_already(session: Any, caches: PageCaches, once_key: str) -> bool:
    if caches.viewed.get(once_key):
        return True
    query = select(AuditEvent.id).where(AuditEvent.once_key == once_key)
    if session.exec(query).first() is None:
        return False
    caches.viewed.put(once_key, True)
    return True


def current_posts(session: Any, caches: PageCaches, occurrence: Any) -> list[RenderedPost]:
    """The occurrence's current posts in page order. Kept by their bundle hash: posts
    with the same hash are the same posts (what, where, when)."""
    key = (occurrence.id, occurrence.bundle_hash)
    cached = caches.posts.get(key)
    if cached is not None:
        return cached
    posts = sorted((row.to_rendered() for row in
                    store.current_posts(session, occurrence_id=occurrence.id)),
                   key=lambda p: (p.publish_at, p.channel))
    if occurrence.bundle_hash and bundle_hash(posts) == occurrence.bundle_hash:
        caches.posts.put(key, posts)
    return posts
