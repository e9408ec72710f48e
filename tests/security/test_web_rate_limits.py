"""Rate limits of the public routes, over HTTP (uvicorn on a free port):

- a flood of 65 parallel request submissions with one invitation: a bounded number is
  accepted and the rest get the German 429 page with ``Retry-After``; every accepted one
  is stored complete (row, image file, audit event) and its two mails go out (the
  office's and the requester's, through the real notifier to an SMTP catcher);
- per link and per client address, the page says when to try again, and another link
  (or another address's count) is not affected.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from limits import parse_many
from requests_testkit import png
from security_testkit import SECRET, make_site, requests_by_person, row_counts
from sqlmodel import select
from webkit import serving

from newsroom import approval, store
from newsroom import requests as domain
from newsroom.notify import AppriseNotifier
from newsroom.orchestration.stack import MailCatcher, free_port
from newsroom.settings import Settings
from newsroom.store.models import CampaignRequest
from newsroom.web.app import create_web_app
from newsroom.web.hooks import hook_token

pytestmark = pytest.mark.slow

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
AGAIN = re.compile(r"Bitte versuchen Sie es in (\d+|einer) (Sekunden?|Minuten?|Stunden?) "
                   r"erneut")
FLOOD = 65
ACCEPTED = min(item.amount for item in parse_many(
    Settings.model_fields["rate_limit_invitation_posts"].default))


def _settings(site, **limits) -> Settings:
    return Settings(catalog_dir=site.root, data_dir=site.data_dir, database_url=site.url,
                    secret_key=SECRET, **limits)


def _fields(n: int, csrf: str) -> dict:
    day = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    return {"title": f"Ferienspiele {n}", "topic": "Kinder und Jugend", "date_from": day,
            "date_to": "", "time": "", "channels": ["mastodon", "facebook"],
            "text": f"Die Anmeldung für die Ferienspiele {n} ist offen!",
            "hashtags": "Ferienspiele", "links": "", "notes": "",
            "contact_name": "Alex Schmidt", "contact_email": "alex@example.org",
            "alt_1": "Kinder beim Basteln im Jugendzentrum", "alt_2": "", "alt_3": "",
            "csrf": csrf}


def _assert_busy_page(response: httpx.Response) -> int:
    """The German 429 page; its Retry-After, which the page's wording matches."""
    assert response.status_code == 429, response.text[:300]
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    said = AGAIN.search(response.text)
    assert said, response.text
    amount, unit = said.groups()
    if unit.startswith("Sekunde"):
        assert (1 if amount == "einer" else int(amount)) == retry_after
    assert 'lang="de"' in response.text and "Zu viele Anfragen" in response.text
    return retry_after


def test_a_flood_of_submissions_with_one_invitation_is_bounded_and_loses_nothing(
        tmp_path: Path) -> None:
    site = make_site(tmp_path)
    mail = MailCatcher(port=free_port()).start()
    notifier = AppriseNotifier.for_directory(site.catalog.directory, mail.smtp_url)
    started: list[int] = []

    def tell(request_id: int) -> None:
        ctx = domain.NotifyContext(site.engine, site.catalog, notifier, site.signer,
                                   "http://x", site.data_dir)
        for step in ("office", "received"):
            domain.notify_step(ctx, request_id, step)
        started.append(request_id)

    async def on_request_submitted(request_id: int) -> None:
        await asyncio.to_thread(tell, request_id)

    app = create_web_app(site.engine, site.catalog, _settings(site), signer=site.signer,
                         on_request_submitted=on_request_submitted)
    image = png(pad_to=256 * 1024)
    before = row_counts(site.engine)
    try:
        with serving(app) as server_url:
            link = f"{server_url}/anfrage/{site.invite_token}"
            with httpx.Client(timeout=60) as client:
                page = client.get(link)
                assert page.status_code == 200
                csrf = CSRF.search(page.text).group(1)
                cookies = dict(client.cookies)

            def submit(n: int) -> httpx.Response:
                with httpx.Client(timeout=60, cookies=cookies) as one:
                    return one.post(link, data=_fields(n, csrf),
                                    files={"bild_1": (f"bild-{n}.png", image, "image/png")})

            with ThreadPoolExecutor(FLOOD) as pool:
                answers = list(pool.map(submit, range(FLOOD)))
            accepted = {n: a for n, a in enumerate(answers) if a.status_code == 200}
            limited = [a for a in answers if a.status_code == 429]
            # Exactly the default per-invitation budget (5 a minute): counted in memory,
            # moving window, so no more and no fewer.
            assert len(accepted) == ACCEPTED, [a.status_code for a in answers]
            assert len(accepted) + len(limited) == FLOOD, [a.status_code for a in answers]
            for answer in limited:
                _assert_busy_page(answer)
            # Accepted while the flood was refused: each one is there, whole.
            _, nonce = domain.check_invite(site.signer, site.catalog, site.invite_token)
            with store.session_scope(site.engine) as session:
                rows = {r.title: r for r in session.exec(
                    select(CampaignRequest).where(
                        CampaignRequest.invite_nonce == nonce))}
            assert sorted(rows) == sorted(f"Ferienspiele {n}" for n in accepted)
            for n, answer in accepted.items():
                row = rows[f"Ferienspiele {n}"]
                assert "Vielen Dank" in answer.text and str(row.id) in answer.text
                stored, images = domain.load_request(site.engine, row.id)
                assert stored.text.startswith(f"Die Anmeldung für die Ferienspiele {n} ")
                assert [i.filename for i in images] == [f"bild-{n}.png"]
                data = (site.data_dir / images[0].stored_path).read_bytes()
                assert hashlib.sha256(data).hexdigest() == images[0].sha256 == \
                    hashlib.sha256(image).hexdigest()
                with store.session_scope(site.engine) as session:
                    trail = [e.action for e in store.audit_trail(
                        session, campaign_id=f"request-{row.id}")]
                assert trail[0] == "request.submitted"
                assert {"request.notified.office", "request.notified.received"} <= set(trail)
            assert sorted(started) == sorted(r.id for r in rows.values())
            mails = mail.messages
            assert len(mails) == 2 * len(accepted), [m["subject"] for m in mails]
            counts = row_counts(site.engine)
            assert counts["campaign_request"] == before["campaign_request"] + len(accepted)
            assert counts["campaign_request_image"] == \
                before["campaign_request_image"] + len(accepted)
            # Nothing of the refused ones reached the disk.
            files = [p for p in (site.data_dir / "requests").rglob("*.png")]
            assert len(files) == before["campaign_request_image"] + len(accepted)
    finally:
        mail.stop()
        site.engine.dispose()


def test_per_link_and_per_address_limits_say_when_to_try_again(tmp_path: Path) -> None:
    site = make_site(tmp_path)
    other = approval.approval_link(
        site.signer, requests_by_person(site.engine, site.occurrence_id)["akdeniz"],
        "http://x").rsplit("/", 1)[1]
    app = create_web_app(site.engine, site.catalog,
                         _settings(site, rate_limit_link_views="3/minute",
                                   rate_limit_address="8/minute",
                                   rate_limit_hooks="2/minute"),
                         signer=site.signer)
    try:
        with serving(app) as server_url, httpx.Client(base_url=server_url) as client:
            mine = [client.get(f"/freigabe/{site.approval_token}") for _ in range(4)]
            assert [r.status_code for r in mine] == [200, 200, 200, 429]
            wait = _assert_busy_page(mine[-1])
            assert wait <= 60
            assert "Dieser Link wurde in kurzer Zeit sehr oft aufgerufen" in mine[-1].text
            # Another person's link has its own count ...
            assert client.get(f"/freigabe/{other}").status_code == 200
            # ... the alert hook its own (per address) ...
            bearer = {"Authorization": f"Bearer {hook_token(SECRET)}"}
            hooks = [client.post("/hooks/alert", json={"subject": "x", "body": "y"},
                                 headers=bearer) for _ in range(3)]
            # (no notifier here: 503 "not delivered"; the third is over the limit)
            assert [r.status_code for r in hooks] == [503, 503, 429]
            _assert_busy_page(hooks[-1])
            # ... and the address's count covers every route: 8 requests so far.
            refused = client.get(f"/freigabe/{other}")
            assert refused.status_code == 429
            assert "Von Ihrem Anschluss kamen" in refused.text
            _assert_busy_page(refused)
    finally:
        site.engine.dispose()
