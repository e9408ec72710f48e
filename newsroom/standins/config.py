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

# Credentials the stand-ins accept that lack what publishing needs, for the credential
# checks (`newsroom channels check`): a Mastodon token without the write scopes, one
# without write:media, one of another account; a Bluesky account of another handle and
# one that is deactivated; a LinkedIn token of a member who is only an analyst of the
# organization; a Graph token without the publishing permissions; a Telegram channel
# where the bot is an administrator without the right to post, and one it is not in.
MASTODON_READ_ONLY_TOKEN = "standin-mastodon-token-read"
MASTODON_NO_MEDIA_TOKEN = "standin-mastodon-token-no-media"
MASTODON_OTHER_ACCOUNT_TOKEN = "standin-mastodon-token-kultur"
BLUESKY_OTHER_HANDLE = "kultur.standin.test"
BLUESKY_DEACTIVATED_HANDLE = "alt.darmstadt.standin.test"
LINKEDIN_ANALYST_TOKEN = "standin-linkedin-token-analyst"
GRAPH_READ_ONLY_TOKEN = "standin-graph-token-read"
TELEGRAM_CHANNEL_NO_POST_RIGHT = "@darmstadt_nur_lesen"
TELEGRAM_CHANNEL_WITHOUT_BOT = "@darmstadt_ohne_bot"


@dataclass
class StandinConfig:
    mastodon_tokens: set[str] = field(default_factory=lambda: {
        MASTODON_TOKEN, MASTODON_READ_ONLY_TOKEN, MASTODON_NO_MEDIA_TOKEN,
        MASTODON_OTHER_ACCOUNT_TOKEN})
    # The scopes of a token's application where not Mastodon's default "read write follow
    # push" (what Preferences → Development offers ticked).
    mastodon_token_scopes: dict[str, str] = field(default_factory=lambda: {
        MASTODON_READ_ONLY_TOKEN: "read", MASTODON_NO_MEDIA_TOKEN: "read write:statuses"})
    # Tokens of another account than the stand-in's @darmstadt: token -> username.
    mastodon_token_accounts: dict[str, str] = field(default_factory=lambda: {
        MASTODON_OTHER_ACCOUNT_TOKEN: "kultur"})
    mastodon_max_characters: int = 500
    # Uploads larger than this answer 202 (processing) instead of 200.
    mastodon_sync_media_bytes: int = 64 * 1024
    # GET /api/v1/media/:id answers 206 this many times minus one before the media is ready.
    mastodon_media_polls: int = 1
    bluesky_accounts: dict[str, str] = field(
        default_factory=lambda: {BLUESKY_HANDLE: BLUESKY_APP_PASSWORD,
                                 BLUESKY_OTHER_HANDLE: BLUESKY_APP_PASSWORD,
                                 BLUESKY_DEACTIVATED_HANDLE: BLUESKY_APP_PASSWORD})
    # Accounts whose hosting status is not "active" (com.atproto.server.createSession's
    # `status`): handle -> status.
    bluesky_account_status: dict[str, str] = field(default_factory=lambda: {
        BLUESKY_DEACTIVATED_HANDLE: "deactivated"})
    bluesky_access_ttl: float = 7200.0
    linkedin_tokens: set[str] = field(default_factory=lambda: {LINKEDIN_TOKEN,
                                                                LINKEDIN_ANALYST_TOKEN})
    # The role a token's member has in every organization, where not ADMINISTRATOR.
    linkedin_token_roles: dict[str, str] = field(default_factory=lambda: {
        LINKEDIN_ANALYST_TOKEN: "ANALYST"})
    graph_tokens: set[str] = field(default_factory=lambda: {GRAPH_TOKEN, GRAPH_READ_ONLY_TOKEN})
    # The permissions granted to a token where not all that publishing needs.
    graph_token_permissions: dict[str, tuple[str, ...]] = field(default_factory=lambda: {
        GRAPH_READ_ONLY_TOKEN: ("pages_show_list", "pages_read_engagement", "instagram_basic",
                                "threads_basic")})
    # A media container reports IN_PROGRESS this many times before FINISHED.
    graph_container_polls: int = 0
    # Instagram's content publishing limit per account and 24 hours (Meta documents 50 on
    # media_publish, 100 in the publishing guide); None: unlimited, for the bench's volume.
    graph_instagram_publish_limit: int | None = None
    # Threads' deletes per profile and 24 hours ("a rate limit of 100 deletes per day per
    # account", Threads API, Delete Posts).
    threads_deletes_per_day: int = 100
    telegram_bot_tokens: set[str] = field(default_factory=lambda: {TELEGRAM_BOT_TOKEN})
    # The bot's membership where it is not an administrator allowed to post: chat ->
    # "no-post-right" (administrator without can_post_messages) or "not-a-member".
    telegram_bot_membership: dict[str, str] = field(default_factory=lambda: {
        TELEGRAM_CHANNEL_NO_POST_RIGHT: "no-post-right",
        TELEGRAM_CHANNEL_WITHOUT_BOT: "not-a-member"})
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
