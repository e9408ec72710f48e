"""Fixtures for the publisher tests: one stand-in server per session, accounts that point
at it, posts and images to publish."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from channel_testkit import ACCOUNTS, ALT, make_account, png
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.channels import Publisher, publisher_for
from newsroom.posts import MediaItem
from newsroom.standins import StandinControl


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """One TLS context for all clients: building one costs ~50 ms, per test that adds up."""
    return ssl.create_default_context()


@pytest.fixture
async def client(tls: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, verify=tls) as http:
        yield http


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite store, for tests that publish through newsroom.publishing."""
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    store.upgrade_database(url)
    engine = store.make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_publisher(standins: StandinControl, client: httpx.AsyncClient, tmp_path: Path
                   ) -> Callable[..., Publisher]:
    def make(name: str, *, secret: str | None = None, http: httpx.AsyncClient | None = None,
             **options: Any) -> Publisher:
        account = make_account(name, standins.base_url)
        if name == "website":
            options.setdefault("feed_path", tmp_path / "feed.atom")
        publisher = publisher_for(account, client=http or client,
                                  credential=SecretStr(secret or ACCOUNTS[name]["secret"]),
                                  **options)
        if hasattr(publisher, "media_poll_interval"):
            publisher.media_poll_interval = 0.01
        if hasattr(publisher, "container_poll_interval"):
            publisher.container_poll_interval = 0.01
        return publisher
    return make


@pytest.fixture
def image(tmp_path: Path) -> Callable[..., MediaItem]:
    """An image file with its approved hash, as rendering would hand it over."""
    counter = iter(range(1000))

    def make(width: int = 4, height: int = 3, *, noise: bool = False, alt: str = ALT
             ) -> MediaItem:
        data = png(width, height, noise=noise)
        path = tmp_path / f"bild-{next(counter)}.png"
        path.write_bytes(data)
        return MediaItem(source=str(path), alt=alt, sha256=hashlib.sha256(data).hexdigest())
    return make
