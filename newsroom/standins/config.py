"""The stand-ins' accounts and knobs. The defaults are what the tests and the bench use."""

from __future__ import annotations

from dataclasses import dataclass, field

# Credentials the stand-ins accept by default. Not secrets: they only open the stand-ins.
MASTODON_TOKEN = "standin-mastodon-token"
BLUESKY_HANDLE = "darmstadt.standin.test"
BLUESKY_APP_PASSWORD = "abcd-efgh-ijkl-mnop"
LINKEDIN_TOKEN = "standin-linkedin-token"
GRAPH_TOKEN = "standin-graph-token"
TELEGRAM_BOT_TOKEN = "123456789:standin-telegram-bot-token"
CMS_TOKEN = "standin-cms-token"


@dataclass
class StandinConfig:
    mastodon_tokens: set[str] = field(default_factory=lambda: {MASTODON_TOKEN})
    mastodon_max_characters: int = 500
    # Uploads larger than this answer 202 (processing) instead of 200.
    mastodon_sync_media_bytes: int = 64 * 1024
    # GET /api/v1/media/:id answers 206 this many times minus one before the media is ready.
    mastodon_media_polls: int = 1
    bluesky_accounts: dict[str, str] = field(
        default_factory=lambda: {BLUESKY_HANDLE: BLUESKY_APP_PASSWORD})
    bluesky_access_ttl: float = 7200.0
    linkedin_tokens: set[str] = field(default_factory=lambda: {LINKEDIN_TOKEN})
    graph_tokens: set[str] = field(default_factory=lambda: {GRAPH_TOKEN})
    # A media container reports IN_PROGRESS this many times before FINISHED.
    graph_container_polls: int = 0
    # Instagram's content publishing limit per account and 24 hours (Meta documents 50 on
    # media_publish, 100 in the publishing guide); None: unlimited, for the bench's volume.
    graph_instagram_publish_limit: int | None = None
    telegram_bot_tokens: set[str] = field(default_factory=lambda: {TELEGRAM_BOT_TOKEN})
    # Empty: the CMS webhook accepts requests without a token.
    cms_tokens: set[str] = field(default_factory=lambda: {CMS_TOKEN})


# The environment variables the seed registry names, with the stand-ins' secrets: what
# `newsroom up` and the tests set so the seed accounts can publish to the stand-ins.
STANDIN_CREDENTIAL_ENV = {
    "NEWSROOM_MASTODON_TOKEN": MASTODON_TOKEN,
    "NEWSROOM_BLUESKY_CREDENTIAL": f"{BLUESKY_HANDLE}:{BLUESKY_APP_PASSWORD}",
    "NEWSROOM_META_TOKEN": GRAPH_TOKEN,
    "NEWSROOM_LINKEDIN_TOKEN": LINKEDIN_TOKEN,
    "NEWSROOM_THREADS_TOKEN": GRAPH_TOKEN,
    "NEWSROOM_TELEGRAM_BOT_TOKEN": TELEGRAM_BOT_TOKEN,
    "NEWSROOM_CMS_TOKEN": CMS_TOKEN,
}
