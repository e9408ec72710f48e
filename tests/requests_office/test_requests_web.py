"""The request form over HTTP (uvicorn, httpx): invitation links, CSRF, German messages with
the values kept, and nothing half-stored on bad input (database and upload folder)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from requests_testkit import SECRET, copy_catalog, png
from sqlalchemy import func
from sqlmodel import select
from webkit import serving

from newsroom import requests as domain
from newsroom import store
from newsroom.catalog.validation import load_catalog
from newsroom.settings import Settings
from newsroom.signing import Signer
from newsroom.store import make_engine, upgrade_database
from newsroom.store.models import CampaignRequest, RequestImage
from newsroom.web.app import create_web_app

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
ERRORS = re.compile(r'<p class="error" id="([a-z_0-9]+)-fehler">([^<]+)</p>')


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SimpleNamespace]:
    root = copy_catalog(tmp_path / "campaigns")
    catalog = load_catalog(root).catalog
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    settings = Settings(catalog_dir=root, data_dir=tmp_path / "var", database_url=url,
                        secret_key=SECRET)
    signer = Signer(SECRET)
    started: list[int] = []
    failing = {"on": False}

    def on_request_submitted(request_id: int) -> None:
        if failing["on"]:
            raise ConnectionError("Prefect is down")
        started.append(request_id)

    app = create_web_app(engine, catalog, settings, signer=signer,
                         on_request_submitted=on_request_submitted)
    with serving(app) as server_url:
        requester = domain.requester_for(catalog, "portfolio", "kinder-jugend")
        link, _ = domain.invite_link(signer, server_url, requester)
        yield SimpleNamespace(url=server_url, link=link, engine=engine, catalog=catalog,
                              signer=signer, started=started, failing=failing,
                              uploads=tmp_path / "var", requester=requester)
    engine.dispose()


def _fields(**changes) -> dict:
    day = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
    values = {"title": "Ferienspiele 2027", "topic": "Kinder und Jugend", "date_from": day,
              "date_to": "", "time": "", "channels": ["mastodon", "facebook"],
              "text": "Die Anmeldung für die Ferienspiele ist offen!", "hashtags": "Ferienspiele",
              "links": "https://www.darmstadt.example.org/ferienspiele", "notes": "",
              "contact_name": "Alex Schmidt", "contact_email": "alex@example.org",
              "alt_1": "Kinder beim Basteln im Jugendzentrum", "alt_2": "", "alt_3": ""}
    values.update(changes)
    return values


def _open(client: httpx.Client, link: str) -> str:
    page = client.get(link)
    assert page.status_code == 200, page.text
    return CSRF.search(page.text).group(1)


def _nothing_stored(site) -> None:
    with store.session_scope(site.engine) as session:
        assert session.exec(select(func.count()).select_from(CampaignRequest)).one() == 0
        assert session.exec(select(func.count()).select_from(RequestImage)).one() == 0
    assert not site.uploads.exists() or not any(p.is_file() for p in site.uploads.rglob("*"))
    assert site.started == []


def test_the_form_is_german_labelled_and_a_get_stores_nothing(site) -> None:
    with httpx.Client() as client:
        page = client.get(site.link)
    assert page.status_code == 200
    html = page.text
    assert '<html lang="de">' in html
    assert "Kinder- und Jugenddezernat" in html and "Bürgermeisterin Barbara Akdeniz" in html
    ids = set(re.findall(r'<(?:input|textarea)[^>]* id="([^"]+)"', html))
    labelled = set(re.findall(r'<label[^>]* for="([^"]+)"', html))
    assert ids and ids <= labelled, ids - labelled
    assert 'enctype="multipart/form-data"' in html
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "newsroom_csrf_anfrage" in page.headers["set-cookie"]
    _nothing_stored(site)


def test_a_complete_request_is_stored_and_its_run_started(site) -> None:
    with httpx.Client() as client:
        csrf = _open(client, site.link)
        done = client.post(site.link, data=_fields(csrf=csrf),
                           files={"bild_1": ("basteln.png", png(), "image/png")})
    assert done.status_code == 200, done.text
    assert "Vielen Dank" in done.text
    row, images = domain.load_request(site.engine, 1)
    assert (row.requester_kind, row.requester_id) == ("portfolio", "kinder-jugend")
    assert row.channels == ["mastodon", "facebook"]
    assert (site.uploads / images[0].stored_path).read_bytes() == png()
    assert site.started == [1]


def test_missing_fields_come_back_in_german_with_the_values_kept(site) -> None:
    with httpx.Client() as client:
        csrf = _open(client, site.link)
        page = client.post(site.link, data=_fields(csrf=csrf, title="", text="",
                                                   channels=[], contact_email="alex"),
                           files={"bild_1": ("basteln.png", png(), "image/png")})
    assert page.status_code == 422
    errors = dict(ERRORS.findall(page.text))
    assert set(errors) == {"title", "text", "channels", "contact_email"}
    assert errors["title"] == "Bitte geben Sie einen Titel an."
    assert 'role="alert"' in page.text and 'aria-invalid="true"' in page.text
    assert 'value="Alex Schmidt"' in page.text  # what was entered stays
    assert 'value="Kinder beim Basteln im Jugendzentrum"' in page.text
    assert "erneut auswählen" in page.text  # files cannot be kept: the page says so
    _nothing_stored(site)


@pytest.mark.parametrize(("upload", "german"), [
    (("riesig.png", png(pad_to=5 * 1024 * 1024 + 10), "image/png"), "höchstens 5,0 MB"),
    (("bild.png", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/png"),
     "kein JPEG-, PNG- oder WebP-Bild"),
])
def test_oversized_or_wrong_type_files_are_refused(site, upload, german) -> None:
    with httpx.Client() as client:
        csrf = _open(client, site.link)
        page = client.post(site.link, data=_fields(csrf=csrf), files={"bild_1": upload})
    assert page.status_code == 422
    errors = dict(ERRORS.findall(page.text))
    assert list(errors) == ["bild_1"] and german in errors["bild_1"]
    assert 'value="Ferienspiele 2027"' in page.text
    _nothing_stored(site)


def test_a_body_beyond_all_limits_is_refused_before_reading_it(site) -> None:
    big = b"\x89PNG\r\n\x1a\n" + b"\x00" * (domain.MAX_IMAGE_BYTES + 10)
    with httpx.Client() as client:
        csrf = _open(client, site.link)
        page = client.post(site.link, data=_fields(csrf=csrf), files={
            f"bild_{n}": (f"{n}.png", big, "image/png") for n in range(1, 6)})
    assert page.status_code == 413
    assert "zu groß" in page.text
    _nothing_stored(site)


def test_without_the_csrf_value_nothing_is_stored(site) -> None:
    with httpx.Client() as client:
        _open(client, site.link)
        page = client.post(site.link, data=_fields(csrf="falsch"))
    assert page.status_code == 400
    assert "Formular abgelaufen" in page.text
    _nothing_stored(site)


def test_expired_and_forged_invitations_get_a_clear_german_page(site) -> None:
    expired, _ = domain.invite_link(site.signer, site.url, site.requester, days=1,
                                    now=datetime.now(UTC) - timedelta(days=2))
    with httpx.Client() as client:
        page = client.get(expired)
        assert page.status_code == 410
        assert "Dieser Einladungslink ist abgelaufen" in page.text
        assert "neuen Link" in page.text
        posted = client.post(expired, data=_fields(csrf="x"),
                             files={"bild_1": ("a.png", png(), "image/png")})
        assert posted.status_code == 410
        forged = client.get(site.link[:-3] + "abc")
        assert forged.status_code == 400 and "ungültig" in forged.text
    _nothing_stored(site)


def test_a_request_is_kept_when_its_run_cannot_be_started(site) -> None:
    site.failing["on"] = True
    with httpx.Client() as client:
        csrf = _open(client, site.link)
        done = client.post(site.link, data=_fields(csrf=csrf, alt_1=""))
    assert done.status_code == 200 and "Vielen Dank" in done.text
    row, _ = domain.load_request(site.engine, 1)
    assert row.status == "submitted" and row.flow_run_id is None  # the sweep starts it


def test_answering_a_question_resubmits_once(site) -> None:
    with httpx.Client() as client:
        csrf = _open(client, site.link)
        client.post(site.link, data=_fields(csrf=csrf, alt_1=""))
    domain.ask_back(site.engine, 1, question="Gibt es ein Foto?", by="admin:ina")
    row, _ = domain.load_request(site.engine, 1)
    link = domain.answer_link(site.signer, site.url, row)
    with httpx.Client() as client:
        page = client.get(link)
        assert page.status_code == 200 and "Gibt es ein Foto?" in page.text
        assert 'value="Ferienspiele 2027"' in page.text  # the request, ready to change
        csrf = CSRF.search(page.text).group(1)
        empty = client.post(link, data=_fields(csrf=csrf, answer=""))
        assert empty.status_code == 422
        assert "Bitte beantworten Sie die Rückfrage." in empty.text
        done = client.post(link, data=_fields(csrf=csrf, answer="Ja, anbei."),
                           files={"bild_1": ("foto.png", png(), "image/png")})
        assert done.status_code == 200 and "Ihre Antwort" in done.text
        again = client.get(link)
        assert again.status_code == 409 and "erledigt" in again.text
    row, images = domain.load_request(site.engine, 1)
    assert (row.status, row.revision, row.answer, len(images)) == ("resubmitted", 2,
                                                                   "Ja, anbei.", 1)
    assert site.started == [1, 1]
