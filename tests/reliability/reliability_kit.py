"""Helpers of the reliability tests: accounts on the stand-ins, stored posts, a real SMTP
server with faults, and the alerts the communications office would get.

Imported by ``tests/reliability/conftest.py``, the tests there and ``bench/fault_matrix.py``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from datetime import UTC, date, datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.posts import MediaItem, RenderedPost
from newsroom.standins import config as standin

TEXT = "Heute ist Trikottag an Darmstädter Schulen 🎉 #Trikottag https://www.darmstadt.de/trikottag"
ALT = "Ein Kind im Lilien-Trikot jubelt vor dem Böllenfalltor."
IMAGE_URL = "https://www.darmstadt.de/bilder/trikottag.jpg"
RECIPIENTS = ("redaktion@echo-online.example", "newsdesk@hr.example", "lokales@fr.example")
SMTP_USER = "presse@darmstadt.example"
# Starts with "smtp" on purpose: such a password was once taken for an SMTP URL.
SMTP_PASSWORD = "smtp-password-of-the-press-list"

MASTODON_COMPATIBLE = "no-v2-instance+ignores-idempotency+closes-connections+token-422"
# name -> (type, base path on the stand-in, account_id, secret)
ACCOUNTS: dict[str, tuple[str, str, str | None, str]] = {
    "mastodon": ("mastodon", "/mastodon", None, standin.MASTODON_TOKEN),
    "bluesky": ("bluesky", "/bluesky", standin.BLUESKY_HANDLE,
                f"{standin.BLUESKY_HANDLE}:{standin.BLUESKY_APP_PASSWORD}"),
    "linkedin": ("linkedin", "/linkedin", "2414183", standin.LINKEDIN_TOKEN),
    "facebook": ("facebook", "/graph/v21.0", "104598", standin.GRAPH_TOKEN),
    "instagram": ("instagram", "/graph/v21.0", "178414", standin.GRAPH_TOKEN),
    "threads": ("threads", "/graph/v1.0", "256302", standin.GRAPH_TOKEN),
    "telegram": ("telegram", "/telegram", "@darmstadt", standin.TELEGRAM_BOT_TOKEN),
    "website": ("website", "/cms/posts", "https://www.darmstadt.de/newsroom/feed.atom",
                standin.CMS_TOKEN),
    # A server of Mastodon's API that is not Mastodon, as one was met (issue 15): no v2
    # instance, Idempotency-Key ignored, connections closed after every answer, 422 for a
    # refused token (newsroom/standins/mastodon.py).
    "mastodon-compatible": ("mastodon", "/mastodon/~" + MASTODON_COMPATIBLE, None,
                            standin.MASTODON_TOKEN),
}
HTTP_CHANNELS = tuple(ACCOUNTS)
# The stand-in network serving each account, and where its posts are recorded.
STANDIN_NETWORK = {"mastodon": "mastodon", "bluesky": "bluesky", "linkedin": "linkedin",
                   "facebook": "graph", "instagram": "graph", "threads": "graph",
                   "telegram": "telegram", "website": "cms", "mastodon-compatible": "mastodon"}
POST_NETWORK = {**STANDIN_NETWORK, "facebook": "facebook", "instagram": "instagram",
                "threads": "threads",
                "mastodon-compatible": "mastodon~" + MASTODON_COMPATIBLE}
# The path fragment of the request that makes the post.
CREATE = {"mastodon": "/api/v1/statuses", "mastodon-compatible": "/api/v1/statuses",
          "bluesky": "createRecord", "linkedin": "/rest/posts",
          "facebook": "/feed", "instagram": "/media_publish", "threads": "/threads_publish",
          "telegram": "/sendMessage", "website": "/cms/posts"}


def account(name: str, standins_url: str, smtp_port: int | None = None) -> ChannelAccount:
    if name == "presse":
        return ChannelAccount(
            name="presse", type="email", display_name="Presseverteiler",
            account_id="presse@darmstadt.example", recipients=list(RECIPIENTS),
            base_url=f"smtp://{SMTP_USER}@127.0.0.1:{smtp_port}?from=presse@darmstadt.example",
            credential={"env": "NEWSROOM_TEST_PRESSE_PASSWORD"})
    kind, base, account_id, _ = ACCOUNTS[name]
    return ChannelAccount(name=name, type=kind, display_name=f"Darmstadt auf {name}",
                          base_url=standins_url + base, account_id=account_id,
                          credential={"env": f"NEWSROOM_TEST_{name.upper()}"},
                          # what the office sets for a server that closes connections
                          keep_alive=name != "mastodon-compatible")


def secret(name: str) -> str:
    return SMTP_PASSWORD if name == "presse" else ACCOUNTS[name][3]


def rendered(channel: str, *, campaign: str = "trikottag", day: date = date(2026, 5, 15),
             text: str = TEXT) -> RenderedPost:
    kind = "email" if channel == "presse" else ACCOUNTS[channel][0]
    media = (MediaItem(source=IMAGE_URL, alt=ALT),) if channel == "instagram" else ()
    return RenderedPost(
        campaign_id=campaign, occurrence=day, channel=channel, channel_type=kind,
        publish_at=datetime(day.year, day.month, day.day, 8, 0, tzinfo=UTC), text=text,
        hashtags=("Trikottag",), media=media, title="Trikottag an Darmstädter Schulen")


def store_occurrence(engine: Engine, posts: list[RenderedPost]) -> tuple[int, dict[str, int]]:
    """Store the posts of one occurrence; (occurrence id, post id by channel)."""
    first = posts[0]
    with store.session_scope(engine) as session:
        store.upsert_campaign(session, campaign_id=first.campaign_id,
                              title=first.title or first.campaign_id, kind="once",
                              topic="test", source_file=f"{first.campaign_id}.yaml",
                              definition={"id": first.campaign_id})
        occurrence = store.get_or_create_occurrence(
            session, campaign_id=first.campaign_id, occurrence_date=first.occurrence,
            first_publish_at=min(p.publish_at for p in posts))
        rows = store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=posts)
        return occurrence.id, {row.channel: row.id for row in rows}


class Alerts:
    """The notifier of the publishing step: keeps what the office would be told."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def notify(self, tag, subject, body_text, body_html=None, *, attachments=()) -> bool:
        self.sent.append({"tag": tag, "subject": subject, "text": body_text})
        return True


class Sleeps(list):
    """Stands in for asyncio.sleep in the retry loop: records the delays."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- a real SMTP server (aiosmtpd) that can misbehave ---------------------------------------


class FaultySmtp:
    """aiosmtpd handler with AUTH (over plain SMTP, loopback only) and one fault at a time.

    ``fault`` (counted down by ``times``): ``"451-rcpt"`` the server is busy (a 4xx to
    RCPT, SMTP's rate limit), ``"451-data"`` a local error (a 4xx to DATA, SMTP's 500),
    ``"drop"`` the message is accepted and stored, then the connection is cut before the
    250, ``"slow"`` DATA is answered after ``delay`` seconds, ``"535"`` the password is
    refused (each login counts).
    """

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.fault: str | None = None
        self.times = 0
        self.delay = 0.0
        self.password = SMTP_PASSWORD
        self.logins = 0
        self.fault_after = 0  # messages let through before a "drop" fault strikes
        self._lock = threading.Lock()

    def set_fault(self, fault: str | None, *, times: int = 1, delay: float = 0.0) -> None:
        with self._lock:
            self.fault, self.times, self.delay = fault, times, delay
            self.fault_after = 0

    def _take(self, fault: str) -> bool:
        with self._lock:
            if self.fault == fault and self.times > 0:
                self.times -= 1
                return True
            return False

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins += 1
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER
              and auth_data.password.decode() == self.password and not self._take("535"))
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self._take("451-rcpt"):
            return "451 4.7.1 Too many messages, slow down"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self._take("451-data"):
            return "451 4.3.0 Local error in processing"
        slow = self._take("slow")
        with self._lock:
            self.envelopes.append(envelope)
        if slow:
            await asyncio.sleep(self.delay)
        if self.fault_after > 0 and self.fault == "drop":
            self.fault_after -= 1
        elif self._take("drop"):
            server.transport.abort()  # stored, but the client never hears the 250
        return "250 Message accepted for delivery"

    def delivered(self) -> list[str]:
        """Every recipient of every stored message (a name twice: mailed twice)."""
        with self._lock:
            return [r for e in self.envelopes for r in e.rcpt_tos]

    def messages(self) -> list[email.message.EmailMessage]:
        with self._lock:
            return [email.message_from_bytes(e.original_content, policy=email.policy.default)
                    for e in self.envelopes]


class SmtpServer:
    """:class:`FaultySmtp` on a free loopback port (``with SmtpServer() as smtp: ...``)."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.handler = FaultySmtp()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     authenticator=self.handler.authenticate,
                                     auth_require_tls=False)

    def __enter__(self) -> FaultySmtp:
        self.controller.start()
        return self.handler

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()
