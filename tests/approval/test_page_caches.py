"""The approval page's caches are a security surface: the approver must see exactly what
will be published, and a voided or used link is never served from a cache.

Over real HTTP (uvicorn in a thread) on a real store, the web app reading the catalog as
``newsroom web`` does (a :class:`CatalogKeeper` on a folder this test edits), its caches
warm (each link viewed before the change it must notice):

- the read-only engine (``store.db.make_read_engine``) refuses a write and does not queue
  behind the writer; a page view through it records ``approval.viewed`` once per link and
  minute, through the write engine, committed before the page is answered;
- after the campaign's text is edited and rendered again, the old link answers "gilt nur
  für die alte Fassung" (its images too) and the new link shows exactly the new posts;
- a link used for a decision answers "bereits" afterwards, the others' pages the new tally;
- each link's page names only its own link (the posts' HTML is cached per link);
- a catalog edit (a channel's display name, a person's name) shows within the catalog's
  recheck time, and an image file removed or swapped answers 404, never 500.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from approval_testkit import DAY, build_catalog, load, requests_by_person, store_posts
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from webkit import serving

from newsroom import approval, store
from newsroom.catalog.keeper import CatalogKeeper
from newsroom.rendering.render import render_occurrence
from newsroom.settings import Settings
from newsroom.signing import Signer
from newsroom.store.db import make_read_engine
from newsroom.web import create_web_app
from newsroom.web.approval import viewed_key

pytestmark = pytest.mark.slow
NOW = datetime.now(UTC)
# An edit of the catalog folder reaches the pages within the recheck time (1 s), plus the
# keeper's wait for files being written to settle (0.25 s), plus a load of the catalog.
SEEN_WITHIN = 2.75
BLOCKQUOTE = re.compile(r'<blockquote class="post">(.*?)</blockquote>', re.S)
IMG_SRC = re.compile(r'<img src="([^"]+)"')


@dataclass
class Desk:
    """The web app over ``engine`` and the catalog folder ``root``, served over HTTP."""

    root: Path
    engine: Engine
    signer: Signer
    base: str
    http: httpx.Client

    def token(self, occurrence_id: int, person: str) -> str:
        request = requests_by_person(self.engine, occurrence_id)[person]
        return approval.approval_link(self.signer, request, self.base).rsplit("/", 1)[1]

    def nonce(self, token: str) -> str:
        return approval.check_link(self.engine, self.signer, token).claims.nonce

    def page(self, token: str) -> httpx.Response:
        return self.http.get(f"/freigabe/{token}")

    def gate(self, campaign: str) -> int:
        catalog = load(self.root)
        occurrence_id = store_posts(self.engine, catalog, campaign)
        approval.open_gate(self.engine, catalog, occurrence_id=occurrence_id, now=NOW)
        return occurrence_id


@pytest.fixture
def desk(engine: Engine, signer: Signer, tmp_path: Path) -> Iterator[Desk]:
    root = build_catalog(tmp_path / "campaigns")
    keeper = CatalogKeeper(root, tmp_path / "snapshots")
    app = create_web_app(engine, lambda: keeper.catalog()[0], Settings(), signer=signer)
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        # FastAPI builds its routes at the first request (not while a test's GETs run).
        assert http.get("/freigabe/x").status_code == 400
        yield Desk(root, engine, signer, base, http)


def posts_on(page: httpx.Response) -> list[str]:
    """The posts' texts as the page shows them (in page order)."""
    return [html_lib.unescape(quote.replace("<br>", "\n")) for quote in
            BLOCKQUOTE.findall(page.text)]


def stored_texts(engine: Engine, occurrence_id: int) -> list[str]:
    """The occurrence's current posts' texts, in the page's order: what will be published."""
    with store.session_scope(engine) as session:
        rows = store.current_posts(session, occurrence_id=occurrence_id)
        return [r.text for r in sorted(rows, key=lambda r: (r.publish_at, r.channel))]


def text_of(page: httpx.Response) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


def viewed(engine: Engine, campaign: str, nonce: str) -> list[store.AuditEvent]:
    with store.session_scope(engine) as session:
        return [e for e in store.audit_trail(session, campaign_id=campaign)
                if e.action == "approval.viewed" and e.detail.get("token_nonce") == nonce]


def not_at_a_minute_boundary() -> None:
    """At least 10 s left in this minute (``approval.viewed`` is once per minute)."""
    second = datetime.now(UTC).second
    if second >= 50:
        time.sleep(61 - second)


def edit(path: Path, old: str, new: str) -> None:
    content = path.read_text(encoding="utf-8")
    assert old in content, (path, old)
    path.write_text(content.replace(old, new), encoding="utf-8")


def until(deadline_s: float, probe, what: str):
    """Poll ``probe`` until it returns a true value; fail after ``deadline_s`` seconds."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"not within {deadline_s:.2f} s: {what}"
        time.sleep(0.1)


# --- 1. the read-only engine ----------------------------------------------------------------


def test_the_read_engine_refuses_writes_and_does_not_wait_for_the_writer(
        sqlite_engine: Engine) -> None:
    reader = make_read_engine(sqlite_engine)
    assert reader is not sqlite_engine
    try:
        def count() -> int:
            with reader.connect() as connection:
                return connection.execute(text("SELECT count(*) FROM audit_event")).scalar_one()

        before = count()
        with pytest.raises(OperationalError, match="readonly"), \
                store.session_scope(reader) as session:
            store.record_audit_once(session, once_key="x", campaign_id="t-one",
                                    actor="benz", action="approval.viewed", detail={})
        with pytest.raises(OperationalError, match="readonly"), reader.begin() as connection:
            connection.execute(text("CREATE TABLE intruder (a INTEGER)"))
        assert count() == before
        # Deferred: a read does not wait for the write lock (BEGIN IMMEDIATE would, for
        # the 30 s busy timeout); it sees the last committed state.
        with store.session_scope(sqlite_engine) as session:  # commits
            store.record_audit_once(session, once_key="kept", campaign_id="t-one",
                                    actor="benz", action="approval.viewed", detail={})
        assert count() == before + 1
        with Session(sqlite_engine) as writing:  # BEGIN IMMEDIATE: the write lock held
            writing.add(store.AuditEvent(at=datetime.now(UTC), campaign_id="t-one",
                                         actor="benz", action="approval.viewed", detail={}))
            writing.flush()
            took: list[float] = []

            def read() -> None:
                started = time.monotonic()
                took.append(count())
                took.append(time.monotonic() - started)

            thread = threading.Thread(target=read)
            thread.start()
            thread.join(10)
            assert took and took[0] == before + 1 and took[1] < 2.0, took
            writing.rollback()
        assert count() == before + 1
    finally:
        reader.dispose()


def test_the_read_engine_is_the_store_itself_where_it_cannot_be_read_only(
        engine: Engine) -> None:
    if engine.url.get_backend_name() == "sqlite":
        assert make_read_engine(engine) is not engine
        memory = store.make_engine("sqlite://")
        try:
            assert make_read_engine(memory) is memory
        finally:
            memory.dispose()
    else:  # PostgreSQL: one engine (its readers do not block the writer anyway)
        assert make_read_engine(engine) is engine


def test_a_page_view_through_the_read_engine_records_viewed_once(desk: Desk) -> None:
    occurrence_id = desk.gate("t-quorum")
    token = desk.token(occurrence_id, "benz")
    nonce = desk.nonce(token)
    not_at_a_minute_boundary()
    first = desk.page(token)
    assert first.status_code == 200, first.text
    # written through the write engine and committed before the page was answered
    events = viewed(desk.engine, "t-quorum", nonce)
    assert len(events) == 1
    assert events[0].once_key == viewed_key(nonce, events[0].at)
    assert events[0].actor == "benz"
    for _ in range(3):
        assert desk.page(token).status_code == 200
    assert len(viewed(desk.engine, "t-quorum", nonce)) == 1
    # another person's link is another view
    other = desk.token(occurrence_id, "akdeniz")
    assert desk.page(other).status_code == 200
    akdeniz = desk.nonce(other)
    assert len(viewed(desk.engine, "t-quorum", akdeniz)) == 1
    assert len(viewed(desk.engine, "t-quorum", nonce)) == 1


# --- 2. an edited and re-rendered campaign --------------------------------------------------


def test_after_an_edit_the_old_link_is_refused_and_the_new_one_shows_the_new_posts(
        desk: Desk) -> None:
    occurrence_id = desk.gate("t-quorum")
    old = desk.token(occurrence_id, "akdeniz")
    old_page = desk.page(old)  # the caches warm: posts, their HTML, the media paths
    assert old_page.status_code == 200
    old_texts = stored_texts(desk.engine, occurrence_id)
    assert posts_on(old_page) == old_texts and "Gemeinsamer Aufruf" in old_texts[0]
    old_images = IMG_SRC.findall(old_page.text)
    assert old_images and desk.http.get(old_images[0]).status_code == 200

    campaign = desk.root / "t-quorum.yaml"
    edit(campaign, "Gemeinsamer Aufruf", "Geänderter Aufruf")
    edit(campaign, 'alt: "Blaue Grafik', 'alt: "Dunkelblaue Grafik')
    catalog = load(desk.root)
    with store.session_scope(desk.engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id,
                                   posts=render_occurrence(catalog, "t-quorum", DAY))
    approval.open_gate(desk.engine, catalog, occurrence_id=occurrence_id, now=NOW)
    new_texts = stored_texts(desk.engine, occurrence_id)
    assert new_texts != old_texts and "Geänderter Aufruf" in new_texts[0]

    # The old link, in the same process right after its view: refused, not the old posts.
    stale = desk.page(old)
    assert stale.status_code == 410, stale.text
    assert "Dieser Link gilt nur für die alte Fassung" in text_of(stale)
    assert posts_on(stale) == [] and "Gemeinsamer Aufruf" not in stale.text
    assert 'name="decision"' not in stale.text
    image = desk.http.get(old_images[0])
    assert image.status_code == 410 and not image.headers["content-type"].startswith("image/")

    new = desk.token(occurrence_id, "akdeniz")
    assert new != old
    fresh = desk.page(new)
    assert fresh.status_code == 200, fresh.text
    assert posts_on(fresh) == new_texts
    assert "Dunkelblaue Grafik" in fresh.text
    assert "Blaue Grafik" not in fresh.text.replace("Dunkelblaue Grafik", "")
    assert 'name="decision" value="approve"' in fresh.text
    images = IMG_SRC.findall(fresh.text)
    assert images and all(src.startswith(f"/freigabe/{new}/bild/") for src in images)
    assert desk.http.get(images[0]).headers["content-type"].startswith("image/")


# --- 3. a used link, and each page's own link -----------------------------------------------


def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def test_a_used_link_is_not_served_from_the_cache(desk: Desk) -> None:
    occurrence_id = desk.gate("t-quorum")  # 2 of 3: one approval leaves the gate open
    benz, akdeniz = (desk.token(occurrence_id, p) for p in ("benz", "akdeniz"))
    page = desk.page(benz)
    assert page.status_code == 200 and 'name="decision" value="approve"' in page.text
    other = desk.page(akdeniz)
    assert "0 von 3 Angefragten haben freigegeben" in text_of(other)
    done = desk.http.post(f"/freigabe/{benz}", data={"csrf": csrf_of(page),
                                                    "decision": "approve"})
    assert done.status_code == 200, done.text

    again = desk.page(benz)
    assert again.status_code == 409, again.text
    said = text_of(again)
    assert "Sie haben bereits" in said and "freigegeben" in said
    assert 'name="decision"' not in again.text and 'name="csrf"' not in again.text
    assert posts_on(again) == []
    replay = desk.http.post(f"/freigabe/{benz}", data={"csrf": csrf_of(page),
                                                      "decision": "reject"})
    assert replay.status_code == 409
    # The others' pages (cached posts) say where the gate stands now.
    said = text_of(desk.page(akdeniz))
    assert "1 von 3 Angefragten hat freigegeben" in said
    assert "Hanno Benz: hat freigegeben" in said


def test_each_link_s_page_names_only_its_own_link(desk: Desk) -> None:
    occurrence_id = desk.gate("t-quorum")
    for person in ("benz", "akdeniz", "feldmann"):
        token = desk.token(occurrence_id, person)
        page = desk.page(token)
        assert page.status_code == 200
        images = IMG_SRC.findall(page.text)
        assert images and all(src.startswith(f"/freigabe/{token}/bild/") for src in images)
        assert page.text.count("/freigabe/") == page.text.count(f"/freigabe/{token}")


# --- 4. the catalog ---------------------------------------------------------------------------


def test_a_catalog_edit_shows_on_the_page_within_the_recheck_time(desk: Desk) -> None:
    occurrence_id = desk.gate("t-quorum")
    token = desk.token(occurrence_id, "akdeniz")
    posts_before = stored_texts(desk.engine, occurrence_id)
    page = desk.page(token)
    assert "@darmstadt@social.example.org" in page.text and "Jonas Feldmann" in page.text
    desk.page(token)  # the posts' HTML cached for this catalog

    edit(desk.root / "registry" / "channels.yaml", 'display_name: "@darmstadt@social',
         'display_name: "@stadt-darmstadt@social')
    edit(desk.root / "registry" / "people.yaml", "name: Jonas Feldmann",
         "name: Jonas Feldmann-Ohl")
    written = time.monotonic()

    def shown() -> httpx.Response | None:
        page = desk.page(token)
        assert page.status_code == 200, page.text
        said = text_of(page)
        return page if ("@stadt-darmstadt@social.example.org" in said
                        and "Jonas Feldmann-Ohl" in said) else None

    page = until(SEEN_WITHIN, shown, "the new display names on the page")
    assert time.monotonic() - written < SEEN_WITHIN
    assert "@darmstadt@social.example.org" not in page.text
    # The posts themselves are the stored ones: what will be published.
    assert posts_on(page) == posts_before


def test_an_image_removed_or_swapped_answers_404(desk: Desk) -> None:
    occurrence_id = desk.gate("t-one")
    token = desk.token(occurrence_id, "benz")
    page = desk.page(token)
    images = IMG_SRC.findall(page.text)
    assert images
    assert desk.http.get(images[0]).headers["content-type"].startswith("image/")  # cached

    picture = desk.root / "images" / "europawahl.jpg"
    original = picture.read_bytes()
    picture.unlink()
    gone = desk.http.get(images[0])
    assert gone.status_code == 404 and "Bild nicht gefunden" in gone.text
    # The page meanwhile: no error, while the keeper notices the catalog broke and after.
    deadline = time.monotonic() + SEEN_WITHIN
    while time.monotonic() < deadline:
        assert desk.page(token).status_code == 200
        assert desk.http.get(images[0]).status_code == 404
        time.sleep(0.2)

    # Another picture under its name: not what was approved.
    shutil.copyfile(desk.root / "images" / "trikottag.jpg", picture)
    assert desk.http.get(images[0]).status_code == 404
    # A link to a copy outside the catalog: not served either.
    outside = desk.root.parent / "outside.jpg"
    outside.write_bytes((desk.root / "images" / "unwetter.jpg").read_bytes())
    picture.unlink()
    picture.symlink_to(outside)
    assert desk.http.get(images[0]).status_code == 404
    # The approved picture back: served again.
    picture.unlink()
    picture.write_bytes(original)
    back = desk.http.get(images[0])
    assert back.status_code == 200 and back.content == original


def test_an_image_made_to_lead_out_of_the_catalog_is_not_followed(desk: Desk) -> None:
    """Posts stored without their pictures' hashes (rendered while the file was missing,
    or before hashes were kept): only the path keeps the image endpoint in the catalog,
    also when the file turns into a link out of it after it was served."""
    catalog = load(desk.root)
    posts = [replace(p, media=tuple(replace(m, sha256="") for m in p.media))
             for p in render_occurrence(catalog, "t-one", DAY)]
    occurrence_id = store_posts(desk.engine, catalog, "t-one")
    with store.session_scope(desk.engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id, posts=posts)
    approval.open_gate(desk.engine, catalog, occurrence_id=occurrence_id, now=NOW)
    token = desk.token(occurrence_id, "benz")
    images = IMG_SRC.findall(desk.page(token).text)
    assert images and desk.http.get(images[0]).status_code == 200  # its path resolved

    outside = desk.root.parent / "outside.png"
    outside.write_bytes((desk.root / "images" / "unwetter.jpg").read_bytes())
    picture = desk.root / "images" / "europawahl.jpg"
    picture.unlink()
    picture.symlink_to(outside)
    assert desk.http.get(images[0]).status_code == 404
