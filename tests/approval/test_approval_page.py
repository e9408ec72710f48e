"""The approval page over HTTP (ASGI): the round trip, refused links with German pages
and the right status, CSRF, GETs that change nothing, and fuzzed form fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from approval_testkit import DAY, actions, requests_by_person, snapshot, store_posts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsroom import approval, store
from newsroom.rendering.render import render_occurrence
from newsroom.settings import Settings
from newsroom.web import create_web_app

pytestmark = pytest.mark.anyio
NOW = datetime.now(UTC)


@pytest.fixture
def settled() -> list:
    return []


@pytest.fixture
def app(sqlite_engine, catalog, signer, settled):
    async def on_settled(status):
        settled.append(status)
        raise RuntimeError("the flow server is down")  # logged, never shown

    return create_web_app(sqlite_engine, catalog, Settings(), signer=signer,
                          on_gate_settled=on_settled)


@pytest.fixture
async def client(app):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _gate(engine, catalog, campaign="t-one"):
    occurrence_id = store_posts(engine, catalog, campaign)
    approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=NOW)
    return occurrence_id


def _token(engine, signer, occurrence_id, person):
    request = requests_by_person(engine, occurrence_id)[person]
    return approval.approval_link(signer, request, "http://testserver").rsplit("/", 1)[1]


async def _form(client, token):
    page = await client.get(f"/freigabe/{token}")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1), page


async def test_round_trip_and_replay(client, sqlite_engine, catalog, signer, settled):
    occurrence_id = _gate(sqlite_engine, catalog)
    token = _token(sqlite_engine, signer, occurrence_id, "benz")
    before = snapshot(sqlite_engine, occurrence_id)
    csrf, page = await _form(client, token)
    assert snapshot(sqlite_engine, occurrence_id) == before
    assert "approval.viewed" in actions(sqlite_engine, "t-one")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert 'lang="de"' in html and "Freigeben" in html and "Änderungen anfordern" in html
    assert "Ablehnen" in html and "Mastodon" in html or "mastodon" in html
    assert "Alternativtext" in html and "nur die Namen derer" in html
    img = re.search(r'src="(/freigabe/[^"]+/bild/[^"]+)"', html).group(1)
    assert (await client.get(img)).headers["content-type"].startswith("image/")

    done = await client.post(f"/freigabe/{token}", data={
        "csrf": csrf, "decision": "approve", "comment": "Passt so."})
    assert done.status_code == 200 and "freigegeben" in done.text
    assert [s.outcome for s in settled] == [approval.GateOutcome.APPROVED]

    again = await client.post(f"/freigabe/{token}", data={"csrf": csrf, "decision": "reject"})
    assert again.status_code == 409 and "bereits" in again.text
    other = _token(sqlite_engine, signer, occurrence_id, "akdeniz")
    closed = await client.get(f"/freigabe/{other}")
    assert closed.status_code == 409 and "abgeschlossen" in closed.text


async def test_refused_links(client, sqlite_engine, catalog, signer):
    occurrence_id = _gate(sqlite_engine, catalog)
    token = _token(sqlite_engine, signer, occurrence_id, "benz")
    before = snapshot(sqlite_engine, occurrence_id)
    ref, mac = token.split("-", 1)
    forged = (await client.get(f"/freigabe/{ref}-{mac[:-1]}{'B' if mac[-1] == 'A' else 'A'}"))
    assert forged.status_code == 400 and "ungültig" in forged.text
    # A request that does not exist gets the very same page: trying ids learns nothing.
    unknown = await client.get(f"/freigabe/{int(ref) + 1000}-{mac}")
    nonce = re.compile(r'nonce="[^"]+"')
    assert (unknown.status_code, nonce.sub("", unknown.text)) == (400, nonce.sub("", forged.text))
    assert (await client.get("/freigabe/nonsense")).status_code == 400
    request = requests_by_person(sqlite_engine, occurrence_id)["benz"]
    expired, _ = signer.issue(purpose="approval", subject={"request": request.id,
                              "nonce": request.token_nonce}, person="benz",
                              content_hash=request.bundle_hash, ttl=timedelta(hours=1),
                              now=NOW - timedelta(days=2))
    page = await client.get(f"/freigabe/{expired}")
    assert page.status_code == 410 and "abgelaufen" in page.text
    # another person's claim in a token we never signed
    wrong, _ = signer.issue(purpose="approval", subject={"request": request.id,
                            "nonce": request.token_nonce}, person="akdeniz",
                            content_hash=request.bundle_hash, ttl=request.deadline - NOW)
    page = await client.get(f"/freigabe/{wrong}")
    assert page.status_code == 403
    manual, _ = signer.issue(purpose="manual-confirm", subject={}, person="benz",
                             content_hash="x", ttl=request.deadline - NOW)
    assert (await client.get(f"/freigabe/{manual}")).status_code == 400
    assert snapshot(sqlite_engine, occurrence_id) == before
    for html in (forged.text, page.text):
        assert "Traceback" not in html and "Amt für Kommunikation" in html


async def test_csrf_is_required(client, sqlite_engine, catalog, signer):
    occurrence_id = _gate(sqlite_engine, catalog)
    token = _token(sqlite_engine, signer, occurrence_id, "benz")
    before = snapshot(sqlite_engine, occurrence_id)
    assert (await client.post(f"/freigabe/{token}", data={"decision": "approve"})
            ).status_code == 400
    await _form(client, token)
    assert (await client.post(f"/freigabe/{token}", data={"decision": "approve",
                                                          "csrf": "falsch"})).status_code == 400
    assert snapshot(sqlite_engine, occurrence_id) == before


async def test_changed_content_link_explains_and_shows_diff(client, sqlite_engine, catalog,
                                                            signer):
    occurrence_id = _gate(sqlite_engine, catalog, "t-quorum")
    old = _token(sqlite_engine, signer, occurrence_id, "benz")
    csrf, _ = await _form(client, old)
    await client.post(f"/freigabe/{old}", data={"csrf": csrf, "decision": "request_changes",
                                                "comment": "Bitte kürzer"})
    stale = _token(sqlite_engine, signer, occurrence_id, "akdeniz")
    posts = render_occurrence(catalog, "t-quorum", DAY)
    changed = [type(p)(**{**p.__dict__, "text": p.text.replace("Gemeinsamer", "Kurzer")})
               for p in posts]
    with store.session_scope(sqlite_engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id, posts=changed)
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=NOW)
    before = snapshot(sqlite_engine, occurrence_id)
    page = await client.get(f"/freigabe/{stale}")
    assert page.status_code == 410 and "geändert" in page.text and "neuen Link" in page.text
    fresh = _token(sqlite_engine, signer, occurrence_id, "akdeniz")
    page = await client.get(f"/freigabe/{fresh}")
    assert page.status_code == 200 and "geänderte Fassung" in page.text
    # word-level: exactly the changed word, labelled for screen readers, the rest kept
    assert ('<del><span class="visually-hidden">entfernt: </span>Gemeinsamer</del>'
            '<ins><span class="visually-hidden">eingefügt: </span>Kurzer</ins> Aufruf'
            in page.text)
    assert snapshot(sqlite_engine, occurrence_id) == before


TOKENISH = st.from_regex(r"[A-Za-z0-9_-]{10,80}\.[A-Za-z0-9_-]{43}", fullmatch=True)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=st.one_of(st.text(max_size=300), TOKENISH), decision=st.text(max_size=30),
       comment=st.text(max_size=3000), csrf=st.text(max_size=60))
async def test_fuzzed_requests_never_fail_with_500(client, token, decision, comment, csrf):
    path = "/freigabe/" + quote(token, safe="")
    for response in (await client.get(path),
                     await client.post(path, data={"decision": decision, "comment": comment,
                                                   "csrf": csrf})):
        assert response.status_code < 500, (token, response.text[:200])
