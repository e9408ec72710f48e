"""Manual channels (nothing posted, a notice for a person) and credential resolution."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest
from channel_testkit import ALT, make_post
from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount
from newsroom.channels import (
    CredentialMissing,
    aresolve_credential,
    build_manual_notice,
    publish_with_retries,
    publisher_for,
    resolve_credential,
)
from newsroom.errors import PermanentPublishError, TransientPublishError
from newsroom.posts import MediaItem

WHATSAPP = ChannelAccount(name="whatsapp", type="manual", display_name="Stadt Darmstadt",
                          network="whatsapp", owner="amt-kommunikation")
CONFIRM = "https://newsroom.darmstadt.de/bestaetigen/abc?sig=x&y=1"


@pytest.mark.anyio
async def test_a_manual_channel_posts_nothing_and_waits_for_a_person(client) -> None:
    media = (MediaItem(source="https://www.darmstadt.de/bild.jpg", alt=ALT),)
    post = make_post("whatsapp", media=media)
    result = await publish_with_retries(publisher_for(WHATSAPP, client=client), post, "k")
    assert result.awaiting_manual and result.status == "awaiting_manual"
    assert result.remote_id == "" and result.url is None
    notice = result.raw["notice"]
    assert notice["text"] == post.text and notice["owner"] == "amt-kommunikation"
    assert notice["media"] == [{"source": "https://www.darmstadt.de/bild.jpg", "alt": ALT}]
    assert notice["network"] == "whatsapp"


def test_the_manual_notice_is_german_and_copy_ready() -> None:
    post = make_post("whatsapp", text="Heute ist #Trikottag <b>!</b> & mehr",
                     media=(MediaItem(source="https://www.darmstadt.de/bild.jpg", alt=ALT),),
                     link="https://www.darmstadt.de/trikottag")
    subject, text, html = build_manual_notice(post, WHATSAPP, CONFIRM)
    assert subject == ("Bitte von Hand veröffentlichen: Trikottag an Darmstädter Schulen – "
                       "Stadt Darmstadt (WhatsApp-Kanal)")
    assert "am 15.05.2026 um 10:00 Uhr (MESZ)" in text  # 08:00 UTC is 10:00 in Darmstadt in May
    assert "\nHeute ist #Trikottag <b>!</b> & mehr\n" in text  # verbatim, ready to copy
    assert f"Alternativtext: {ALT}" in text
    assert CONFIRM in text and "Zuständig: amt-kommunikation" in text
    assert "Heute ist #Trikottag &lt;b&gt;!&lt;/b&gt; &amp; mehr" in html
    assert "<b>!</b>" not in html
    assert 'href="https://newsroom.darmstadt.de/bestaetigen/abc?sig=x&amp;y=1"' in html
    assert html.startswith("<!doctype html><html lang=\"de\">")


# --- credentials --------------------------------------------------------------------------

def account(**credential) -> ChannelAccount:
    return ChannelAccount(name="mastodon", type="mastodon", display_name="M",
                          credential=credential or None)


def test_the_environment_variable_is_read(monkeypatch) -> None:
    monkeypatch.setenv("NEWSROOM_MASTODON_TOKEN", " geheim \n")
    secret = resolve_credential(account(env="NEWSROOM_MASTODON_TOKEN"))
    assert isinstance(secret, SecretStr) and secret.get_secret_value() == "geheim"


def test_a_missing_variable_says_what_to_do(monkeypatch) -> None:
    monkeypatch.delenv("NEWSROOM_MASTODON_TOKEN", raising=False)
    with pytest.raises(CredentialMissing) as raised:
        resolve_credential(account(env="NEWSROOM_MASTODON_TOKEN"))
    assert isinstance(raised.value, PermanentPublishError)
    assert "environment variable NEWSROOM_MASTODON_TOKEN" in str(raised.value)
    assert "export NEWSROOM_MASTODON_TOKEN=" in str(raised.value)
    with pytest.raises(CredentialMissing, match="has no `credential`"):
        resolve_credential(account())


@pytest.fixture
def fake_prefect(monkeypatch):
    """Just enough of prefect.blocks.system.Secret, without importing Prefect."""
    blocks: dict[str, object] = {}

    class Secret:
        def __init__(self, value):
            self.value = value

        def get(self):
            if isinstance(self.value, Exception):
                raise self.value
            return self.value

        @classmethod
        def load(cls, name, _sync=None):
            if name not in blocks:
                raise ValueError(f"Unable to find block document named {name}")
            return cls(blocks[name])

        @classmethod
        async def aload(cls, name):
            return cls.load(name)

    system = types.ModuleType("prefect.blocks.system")
    system.Secret = Secret
    for name, module in {"prefect": types.ModuleType("prefect"),
                         "prefect.blocks": types.ModuleType("prefect.blocks"),
                         "prefect.blocks.system": system}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return blocks


@pytest.mark.anyio
async def test_a_secret_block_is_read_when_the_variable_is_not_set(fake_prefect,
                                                                   monkeypatch) -> None:
    monkeypatch.delenv("NEWSROOM_BSKY", raising=False)
    fake_prefect["bluesky-app-password"] = "darmstadt.de:abcd-efgh-ijkl-mnop"
    acct = account(env="NEWSROOM_BSKY", secret_block="bluesky-app-password")
    assert resolve_credential(acct).get_secret_value() == "darmstadt.de:abcd-efgh-ijkl-mnop"
    assert (await aresolve_credential(acct)).get_secret_value().endswith("mnop")
    monkeypatch.setenv("NEWSROOM_BSKY", "from-env")  # the variable wins
    assert resolve_credential(acct).get_secret_value() == "from-env"


def test_a_missing_block_says_what_to_do(fake_prefect) -> None:
    with pytest.raises(CredentialMissing) as raised:
        resolve_credential(account(secret_block="mastodon-token"))
    assert "Prefect Secret block 'mastodon-token' (not found)" in str(raised.value)
    assert "create the block" in str(raised.value)


def test_an_unreachable_prefect_is_transient(fake_prefect, monkeypatch) -> None:
    def broken(name, _sync=None):
        raise ConnectionError("connection refused")
    monkeypatch.setattr(sys.modules["prefect.blocks.system"].Secret, "load", broken)
    with pytest.raises(TransientPublishError, match="PREFECT_API_URL"):
        resolve_credential(account(secret_block="mastodon-token"))


def test_publisher_for_resolves_the_credential(monkeypatch, standins_url) -> None:
    import httpx

    monkeypatch.setenv("NEWSROOM_TEST_TOKEN", "t0k3n")
    publisher = publisher_for(account(env="NEWSROOM_TEST_TOKEN"), client=httpx.AsyncClient())
    assert publisher._secret() == "t0k3n"
    monkeypatch.delenv("NEWSROOM_TEST_TOKEN")
    with pytest.raises(CredentialMissing):
        publisher_for(account(env="NEWSROOM_TEST_TOKEN"), client=httpx.AsyncClient())


def test_the_channels_do_not_import_prefect() -> None:
    code = ("import sys, newsroom.channels, newsroom.standins; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
