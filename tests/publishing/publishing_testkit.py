"""Helpers shared by the publishing tests (imported by conftest and the tests)."""

from __future__ import annotations

import re
import shutil
import socket
from datetime import date, datetime
from pathlib import Path
from typing import Any

from mailkit import Inbox as Inbox  # re-exported: the publishing tests import it from here
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.rendering.render import render_occurrence
from newsroom.runtime import Runtime
from newsroom.settings import Settings
from newsroom.signing import Signer
from newsroom.standins import config as standin
from newsroom.sync import sync_catalog
from newsroom.timeutil import BERLIN

# Which seed campaign (and day) carries a post for each channel.
NIE_WIEDER = ("nie-wieder-ist-jetzt", date(2027, 1, 27))  # mastodon … linkedin, whatsapp
WHATSAPP_START = ("whatsapp-kanal-start", date(2027, 1, 12))  # has telegram
CAMPAIGN_FOR = {"telegram": WHATSAPP_START}

CREDENTIALS = {
    "mastodon": standin.MASTODON_TOKEN,
    "bluesky": f"{standin.BLUESKY_HANDLE}:{standin.BLUESKY_APP_PASSWORD}",
    "linkedin": standin.LINKEDIN_TOKEN,
    "facebook": standin.GRAPH_TOKEN,
    "instagram": standin.GRAPH_TOKEN,
    "threads": standin.GRAPH_TOKEN,
    "telegram": standin.TELEGRAM_BOT_TOKEN,
    "website": standin.CMS_TOKEN,
}
# The environment variables the seed registry names, with the stand-ins' secrets.
CREDENTIAL_ENV = dict(standin.STANDIN_CREDENTIAL_ENV)
# The request that creates the post, per channel (a seed post with one image).
CREATE_PATH = {"mastodon": "/api/v1/statuses", "bluesky": "createRecord",
               "linkedin": "/rest/posts", "facebook": "/photos", "telegram": "/sendPhoto"}
STANDIN_NETWORK = {"mastodon": "mastodon", "bluesky": "bluesky", "linkedin": "linkedin",
                   "facebook": "graph", "telegram": "telegram"}
POST_NETWORK = {**STANDIN_NETWORK, "facebook": "facebook"}


def received(standins: Any, network: str, campaign_id: str) -> list[dict]:
    """The posts of ``campaign_id`` the stand-in of ``network`` has."""
    return [p for p in standins.posts(network) if campaign_id in str(p)]


def credential(channel: str) -> SecretStr:
    return SecretStr(CREDENTIALS[channel])


def copy_catalog(target: Path, standins_url: str) -> Path:
    """The seed catalog in ``target`` with every base_url pointing at the stand-ins."""
    source = Path(__file__).resolve().parents[2] / "campaigns"
    shutil.copytree(source, target)
    registry = target / "registry" / "channels.yaml"
    registry.write_text(registry.read_text(encoding="utf-8").replace(
        "http://127.0.0.1:8900", standins_url), encoding="utf-8")
    return target


def delivery_runtime(tmp_path: Path, standins_url: str, engine: Engine,
                     monkeypatch: Any, *, secret_key: str) -> Runtime:
    """A Runtime on a catalog copy pointed at the stand-ins, with the stand-ins'
    credentials in the environment; it records alerts (``Alerts``) instead of mailing."""
    for name, value in CREDENTIAL_ENV.items():
        monkeypatch.setenv(name, value)
    settings = Settings(catalog_dir=copy_catalog(tmp_path / "campaigns", standins_url),
                        data_dir=tmp_path / "var", secret_key=secret_key)
    runtime = Runtime(settings=settings, engine=engine, signer=Signer(settings.secret_key))
    runtime.notifier_override = Alerts()
    return runtime


def write_service_campaign(runtime: Runtime, campaign_id: str, slot: datetime, *,
                           grace: str = "2h", same_day_only: bool = False,
                           channels: tuple[str, ...] = ("mastodon", "telegram")) -> None:
    """A pre-approved service-information campaign at ``slot`` (on Mastodon and Telegram
    unless ``channels`` says otherwise)."""
    local = slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    (runtime.settings.catalog_dir / f"{campaign_id}.yaml").write_text(f"""\
id: {campaign_id}
title: Zustellung {campaign_id}
topic: Service
kind: service_information
requested_by: {{office: amt-kommunikation}}
approval:
  approvers: [{{person: benz}}]
  pre_approved: true
slots:
  - at: "{local}"
    channels: [{', '.join(channels)}]
content:
  text: "Servicehinweis {campaign_id}: Das Bürgerbüro hat heute geöffnet. {{{{ hashtags }}}}"
  hashtags: [ServiceDarmstadt]
late:
  grace: {grace}
  same_day_only: {"true" if same_day_only else "false"}
""", encoding="utf-8")


def store_occurrence(engine: Engine, catalog: Catalog, campaign_id: str, day: date
                     ) -> tuple[int, dict[str, store.PostRecord]]:
    """Render the campaign's occurrence and store it; (occurrence id, posts by channel)."""
    posts = render_occurrence(catalog, campaign_id, day)
    with store.session_scope(engine) as session:
        sync_catalog(session, catalog)
        occurrence = store.get_or_create_occurrence(
            session, campaign_id=campaign_id, occurrence_date=day,
            first_publish_at=min(p.publish_at for p in posts))
        rows = store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=posts)
    return occurrence.id, {row.channel: row for row in rows}


def stored_post(engine: Engine, catalog: Catalog, channel: str) -> store.PostRecord:
    campaign_id, day = CAMPAIGN_FOR.get(channel, NIE_WIEDER)
    return store_occurrence(engine, catalog, campaign_id, day)[1][channel]


def publication(engine: Engine, post_id: int, channel: str) -> store.Publication | None:
    with store.session_scope(engine) as session:
        return store.get_publication(session, post_id=post_id, channel=channel)


def actions(engine: Engine, campaign_id: str, channel: str | None = None) -> list[str]:
    with store.session_scope(engine) as session:
        return [e.action for e in store.audit_trail(session, campaign_id=campaign_id)
                if channel is None or e.channel == channel]


class Alerts:
    """A Notifier that keeps what it was asked to send."""

    def __init__(self, ok: bool = True) -> None:
        self.sent: list[dict[str, Any]] = []
        self.ok = ok

    def notify(self, tag, subject, body_text, body_html=None, *, attachments=()) -> bool:
        self.sent.append({"tag": tag, "subject": subject, "text": body_text,
                          "html": body_html, "attachments": list(attachments)})
        return self.ok

    def tagged(self, tag: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["tag"] == tag]


class Sleeps(list):
    """Stands in for asyncio.sleep: records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


LINK = re.compile(r"https?://127\.0\.0\.1:\d+/manual/[A-Za-z0-9_.-]+")
