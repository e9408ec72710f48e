"""Manual channels, end to end: the owner gets a German e-mail on a real SMTP server,
opens the signed link, and confirms on the web page; links are single-use."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import pytest
from aiosmtpd.controller import Controller
from publishing_testkit import (
    LINK,
    NIE_WIEDER,
    Inbox,
    actions,
    free_port,
    publication,
    stored_post,
)
from pydantic import SecretStr
from webkit import serving

from newsroom.notify import AppriseNotifier
from newsroom.publishing import manual_confirm_url, publish_post
from newsroom.settings import Settings
from newsroom.signing import APPROVAL, MANUAL_CONFIRM, Signer
from newsroom.web import create_web_app

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECRET = SecretStr("test-secret-key-" + "x" * 40)
OFFICE_MAIL = "kommunikation@example.org"  # the owner of the WhatsApp channel


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def web(engine, catalog) -> Iterator[str]:
    settings = Settings(secret_key=SECRET)
    with serving(create_web_app(engine, catalog, settings)) as url:
        yield url


def status_of(engine, post) -> tuple[str, int]:
    return (publication(engine, post.id, post.channel).status,
            len(actions(engine, NIE_WIEDER[0], post.channel)))


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


async def test_manual_channel_round_trip(engine, catalog, client, smtp, web) -> None:
    inbox, port = smtp
    notifier = AppriseNotifier.for_directory(
        catalog.directory, f"smtp://127.0.0.1:{port}?from=newsroom@example.org&name=Newsroom")
    post = stored_post(engine, catalog, "whatsapp")
    rendered = post.to_rendered()

    outcome = await publish_post(
        engine=engine, post_id=post.id, account=catalog.accounts["whatsapp"], client=client,
        notifier=notifier, confirm_url_for=manual_confirm_url(web), signer=Signer(SECRET),
        media_root=catalog.root)
    assert outcome.status == "awaiting_manual" and outcome.notified
    again = await publish_post(
        engine=engine, post_id=post.id, account=catalog.accounts["whatsapp"], client=client,
        notifier=notifier, confirm_url_for=manual_confirm_url(web), signer=Signer(SECRET))
    assert again.status == "awaiting_manual" and not again.notified  # told once

    # The e-mail: to the owner only, German, copy-ready text, the image, the signed link.
    [(recipients, message)] = inbox.messages()
    assert recipients == [OFFICE_MAIL]
    assert message["Subject"].startswith("Bitte von Hand veröffentlichen: ")
    plain = message.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    assert rendered.text in plain  # verbatim, ready to copy
    assert rendered.media[0].alt in plain
    [attachment] = list(message.iter_attachments())
    image_bytes = (catalog.root / rendered.media[0].source).read_bytes()
    assert attachment.get_content() == image_bytes
    [link] = LINK.findall(plain)

    async with httpx.AsyncClient(timeout=5) as browser:
        before = status_of(engine, post)
        page = await browser.get(link)
        assert page.status_code == 200
        assert status_of(engine, post) == before == ("awaiting_manual", before[1])  # GET: no change
        assert '<html lang="de">' in page.text
        assert rendered.text in unescape(page.text)
        assert 'alt="' + rendered.media[0].alt in unescape(page.text)
        assert "WhatsApp-Kanal" in page.text and "27. Januar 2027, 09:00 Uhr" in page.text
        assert '<label for="url">' in page.text and '<label for="post-text">' in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "form-action 'self'" in csp
        assert "img-src 'self' data:" in csp and "style-src 'nonce-" in csp
        nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
        assert f'<style nonce="{nonce}">' in page.text

        src = re.search(r'<img src="([^"]+)"', page.text).group(1)
        picture = await browser.get(web + src)
        assert picture.status_code == 200 and picture.content == image_bytes
        assert picture.headers["content-type"] == "image/jpeg"
        assert hashlib.sha256(picture.content).hexdigest() == rendered.media[0].sha256

        # A POST without the CSRF value, or from another browser, changes nothing.
        token = csrf_of(page.text)
        refused = await browser.post(link, data={"url": ""})
        assert refused.status_code == 400 and "Formular" in refused.text
        async with httpx.AsyncClient(timeout=5) as stranger:
            forged = await stranger.post(link, data={"csrf": token})
        assert forged.status_code == 400
        bad_url = await browser.post(link, data={"csrf": token, "url": "javascript:alert(1)"})
        assert bad_url.status_code == 400 and 'aria-invalid="true"' in bad_url.text
        assert status_of(engine, post) == before

        done = await browser.post(link, data={
            "csrf": token, "url": "https://whatsapp.com/channel/0029Va/42"})
        assert done.status_code == 200 and "Danke" in done.text
        stored = publication(engine, post.id, "whatsapp")
        assert stored.status == "published"
        assert stored.remote_url == "https://whatsapp.com/channel/0029Va/42"
        trail = actions(engine, NIE_WIEDER[0], "whatsapp")
        assert trail[-2:] == ["publication.awaiting_manual", "publication.confirmed"]

        replay = await browser.post(link, data={"csrf": token})
        assert replay.status_code == 410 and "Bereits bestätigt" in replay.text
        assert (await browser.get(link)).status_code == 410
        assert actions(engine, NIE_WIEDER[0], "whatsapp") == trail  # nothing more happened


async def test_forged_expired_and_misdirected_links_are_refused(engine, catalog, web) -> None:
    post = stored_post(engine, catalog, "whatsapp")
    subject = {"publication": 1, "post": post.id}
    genuine = dict(purpose=MANUAL_CONFIRM, subject=subject, person="amt-kommunikation",
                   content_hash=post.content_hash)
    good, _ = Signer(SECRET).issue(**genuine, ttl=timedelta(days=1))
    body, mac = good.split(".")
    cases = {
        "tampered": (f"{body}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}", 400,
                     "ungültig"),
        "other key": (Signer("another-secret-key-" + "y" * 40).issue(
            **genuine, ttl=timedelta(days=1))[0], 400, "ungültig"),
        "garbage": ("not-a-token", 400, "ungültig"),
        "expired": (Signer(SECRET).issue(**genuine, ttl=timedelta(days=1),
                                         now=datetime.now(UTC) - timedelta(days=2))[0],
                    410, "abgelaufen"),
        "approval link": (Signer(SECRET).issue(**{**genuine, "purpose": APPROVAL},
                                               ttl=timedelta(days=1))[0], 400,
                          "gehört nicht hierher"),
    }
    async with httpx.AsyncClient(timeout=5) as browser:
        for name, (token, status, words) in cases.items():
            for method in ("GET", "POST"):
                response = await browser.request(method, f"{web}/manual/{token}",
                                                 data={"csrf": "x"} if method == "POST" else None)
                assert response.status_code == status, (name, method)
                assert words in response.text, (name, method)
                assert "Traceback" not in response.text
                assert response.headers["referrer-policy"] == "no-referrer"
        missing = await browser.get(f"{web}/nirgendwo")
        assert missing.status_code == 404 and 'lang="de"' in missing.text
