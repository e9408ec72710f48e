"""Requests to the communications office, without Prefect: checking the form, storing a
request whole or not at all, the state machine, the campaign file an accepted request
becomes (it validates), the invitation links, and the messages (real SMTP)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pgkit import reset_schema
from requests_testkit import SECRET, copy_catalog, form, png
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import select

from newsroom import requests as domain
from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.cli import cli
from newsroom.notify import AppriseNotifier
from newsroom.orchestration.stack import MailCatcher, free_port, text_of
from newsroom.requests import ImageUpload, InvalidRequest, NotifyContext
from newsroom.signing import APPROVAL, Signer
from newsroom.store import make_engine, upgrade_database
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest, RequestImage, RequestStatus
from newsroom.timeutil import BERLIN


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    report = load_catalog(copy_catalog(tmp_path / "campaigns"))
    assert report.ok and report.catalog is not None
    return report.catalog


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    else:
        url = reset_schema(request.getfixturevalue("postgres_url"))
    upgrade_database(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def signer() -> Signer:
    return Signer(SECRET)


def _problems(excinfo: pytest.ExceptionInfo[InvalidRequest]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for problem in excinfo.value.problems:
        found.setdefault(problem.field, []).append(problem.de)
    return found


def _count(engine: Engine, table) -> int:
    with store.session_scope(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- checking the form ---------------------------------------------------------------


def test_a_complete_form_is_accepted(catalog: Catalog) -> None:
    draft = domain.check_request(form(), catalog)
    assert draft.title == "Stadtlauf 2027"
    assert draft.channels == ("mastodon", "bluesky")
    assert draft.hashtags == ("Stadtlauf", "SportInDarmstadt")
    assert draft.images[0].content_type == "image/png"


def test_missing_fields_are_each_named_in_german(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        domain.check_request(form(title=" ", topic="", date_from="", channels=(), text="",
                                  contact_name="", contact_email=""), catalog)
    problems = _problems(excinfo)
    assert set(problems) == {"title", "topic", "date_from", "channels", "text",
                             "contact_name", "contact_email"}
    assert problems["title"] == ["Bitte geben Sie einen Titel an."]
    assert problems["channels"] == ["Bitte wählen Sie mindestens einen Kanal."]
    assert "the title is missing" in str(excinfo.value)  # English for the command line


@pytest.mark.parametrize(("upload", "field", "german"), [
    (ImageUpload(1, "gross.png", png(pad_to=domain.MAX_IMAGE_BYTES + 1), "Ein großes Bild"),
     "bild_1", "erlaubt sind höchstens 5,0 MB"),
    (ImageUpload(1, "tarnung.png", b"GIF89a" + b"\x00" * 64, "Ein animiertes Bild"),
     "bild_1", "kein JPEG-, PNG- oder WebP-Bild"),
    (ImageUpload(1, "skript.jpg", b"#!/bin/sh\nrm -rf /\n", "Kein Bild, ein Skript"),
     "bild_1", "kein JPEG-, PNG- oder WebP-Bild"),
    (ImageUpload(2, "ohne-alt.png", png(), "  "), "alt_2", "Alternativtext"),
    (ImageUpload(3, "", b"", "Beschreibung ohne Bild"), "bild_3", "fehlt das Bild"),
])
def test_bad_images_are_refused_by_content_not_by_name(catalog: Catalog, upload: ImageUpload,
                                                       field: str, german: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        domain.check_request(form(images=(upload,)), catalog)
    problems = _problems(excinfo)
    assert list(problems) == [field]
    assert german in problems[field][0]


def test_jpeg_and_webp_pass_by_their_magic_bytes(catalog: Catalog) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 32
    webp = b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 32
    draft = domain.check_request(form(images=(ImageUpload(1, "a.bin", jpeg, "Foto vom Lauf"),
                                              ImageUpload(2, "b", webp, "Grafik zum Lauf"))),
                                 catalog)
    assert [i.content_type for i in draft.images] == ["image/jpeg", "image/webp"]


def test_text_too_long_for_a_channel_and_instagram_without_image(catalog: Catalog) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        domain.check_request(form(text="Lauf " * 70, channels=("bluesky", "instagram"),
                                  images=()), catalog)
    messages = " ".join(sum(_problems(excinfo).values(), []))
    assert "zu lang" in messages and "bluesky" in messages.lower()
    assert "mindestens ein Bild" in messages


def test_dates_links_hashtags_and_time(catalog: Catalog) -> None:
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    with pytest.raises(InvalidRequest) as excinfo:
        domain.check_request(form(date_from=yesterday, time="25:00",
                                  links="http://unsicher.example.org", hashtags="stadtlauf",
                                  contact_email="kein-at"), catalog)
    problems = _problems(excinfo)
    assert set(problems) == {"date_from", "time", "links", "hashtags", "contact_email"}
    assert "Vergangenheit" in problems["date_from"][0]
    assert "https://" in problems["links"][0]


# --- storing: whole or not at all ----------------------------------------------------


def test_submit_stores_request_images_and_audit_together(engine: Engine, catalog: Catalog,
                                                         tmp_path: Path) -> None:
    requester = domain.requester_for(catalog, "portfolio", "sport")
    draft = domain.check_request(form(), catalog)
    request_id = domain.submit_request(engine, tmp_path / "var", requester, draft,
                                       invite_nonce="nonce-1")
    row, images = domain.load_request(engine, request_id)
    assert row.status == RequestStatus.SUBMITTED.value and row.revision == 1
    assert [i.alt for i in images] == ["Läuferinnen am Start auf dem Luisenplatz"]
    stored = tmp_path / "var" / images[0].stored_path
    assert stored.read_bytes() == png()
    with store.session_scope(engine) as session:
        actions = [e.action for e in store.audit_trail(session,
                                                      campaign_id=f"request-{request_id}")]
    assert actions == ["request.submitted"]


def test_a_failing_insert_leaves_no_row_and_no_file(engine: Engine, catalog: Catalog,
                                                    tmp_path: Path) -> None:
    """Two images with the same position break the UNIQUE constraint half-way: the
    request, the first image's row and both files are gone again."""
    requester = domain.requester_for(catalog, "portfolio", "sport")
    draft = domain.check_request(form(), catalog)
    clash = domain.CheckedImage(1, "zwei.png", png(5, 5), "Noch ein Bild vom Lauf",
                                "image/png")
    broken = domain.RequestDraft(**{**draft.__dict__, "images": (*draft.images, clash)})
    with pytest.raises(Exception):  # noqa: B017 - the database's own IntegrityError
        domain.submit_request(engine, tmp_path / "var", requester, broken,
                              invite_nonce="nonce-2")
    assert _count(engine, CampaignRequest) == 0
    assert _count(engine, RequestImage) == 0
    assert _files(tmp_path / "var") == []


# --- the state machine ----------------------------------------------------------------


def _submitted(engine: Engine, catalog: Catalog, data_dir: Path, **changes) -> int:
    kind, requester_id = changes.pop("requester", ("portfolio", "sport"))
    requester = domain.requester_for(catalog, kind, requester_id)
    return domain.submit_request(engine, data_dir, requester,
                                 domain.check_request(form(**changes), catalog),
                                 invite_nonce="n")


def test_ask_back_answer_then_accept(engine: Engine, catalog: Catalog, tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    request_id = _submitted(engine, catalog, data_dir)
    domain.ask_back(engine, request_id, question="Gibt es ein Foto vom Ziel?", by="admin:ina")
    with pytest.raises(domain.WrongState, match="waits for the requester"):
        domain.decline_request(engine, request_id, reason="x", by="admin:ina")
    answer = form(text="Am Sonntag ist Stadtlauf! Ziel ist der Luisenplatz.",
                  images=(ImageUpload(1, "ziel.png", png(6, 6), "Zielbogen am Luisenplatz"),))
    row = domain.resubmit_request(engine, data_dir, request_id,
                                  domain.check_request(answer, catalog, existing_images=1),
                                  answer="Ja, anbei.")
    assert (row.status, row.revision, row.answer) == ("resubmitted", 2, "Ja, anbei.")
    _, images = domain.load_request(engine, request_id)
    assert [i.position for i in images] == [1, 2]
    accepted = domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina")
    assert accepted.request.status == "accepted"
    with pytest.raises(domain.WrongState, match="accepted already"):
        domain.decline_request(engine, request_id, reason="zu spät", by="admin:ina")
    with store.session_scope(engine) as session:
        actions = [e.action for e in store.audit_trail(session,
                                                      campaign_id=f"request-{request_id}")]
        became = store.audit_trail(session, campaign_id=accepted.campaign_id)
    assert actions == ["request.submitted", "request.asked_back", "request.resubmitted",
                       "request.accepted"]
    assert became[0].action == "request.became_campaign"


def test_decline_needs_a_reason_and_is_final(engine: Engine, catalog: Catalog,
                                             tmp_path: Path) -> None:
    request_id = _submitted(engine, catalog, tmp_path / "var")
    with pytest.raises(InvalidRequest, match="reason is empty"):
        domain.decline_request(engine, request_id, reason="  ", by="admin:ina")
    row = domain.decline_request(engine, request_id, reason="Thema ist schon geplant.",
                                 by="admin:ina")
    assert (row.status, row.reason) == ("declined", "Thema ist schon geplant.")
    with pytest.raises(domain.WrongState):
        domain.ask_back(engine, request_id, question="Doch?", by="admin:ina")


# --- the campaign file ----------------------------------------------------------------


def test_accepted_request_becomes_a_campaign_that_validates(engine: Engine, catalog: Catalog,
                                                            tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    request_id = _submitted(engine, catalog, data_dir,
                            text="Preise in {{ Klammern }} bleiben, wie sie sind.")
    accepted = domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina")
    root = catalog.root
    assert accepted.path == root / f"{accepted.campaign_id}.yaml"
    assert accepted.campaign_id == f"anfrage-{request_id}-stadtlauf-2027"
    report = load_catalog(root)
    assert report.ok, [i.format() for i in report.errors]
    campaign = report.catalog.campaign(accepted.campaign_id).campaign
    assert campaign.requested_by.portfolio == "sport"
    assert [a.portfolio for a in campaign.approval.approvers] == ["sport"]
    assert campaign.content.images[0].alt == "Läuferinnen am Start auf dem Luisenplatz"
    assert (root / "images" / campaign.content.images[0].file).read_bytes() == png()
    from newsroom.rendering.render import render_occurrence

    local = accepted.publish_at.astimezone(BERLIN)
    posts = render_occurrence(report.catalog, accepted.campaign_id, local.date())
    assert "Preise in {{ Klammern }} bleiben" in posts[0].text
    assert "#SportInDarmstadt" in posts[0].text
    result = CliRunner().invoke(cli, ["validate", str(accepted.path)])
    assert result.exit_code == 0, result.output
    assert not (root / domain.DRAFTS_DIR).exists()


def test_the_requesters_text_never_runs_as_a_template(engine: Engine, catalog: Catalog,
                                                      tmp_path: Path) -> None:
    from newsroom.rendering.render import render_occurrence

    text = "Rabatt {%endraw%}{{ 7 * 7 }} {# kein Kommentar #} {% if true %}x{% endif %}"
    request_id = _submitted(engine, catalog, tmp_path / "var", text=text,
                            contact_name="Kim\nid: boese", hashtags="")
    accepted = domain.accept_request(engine, catalog, tmp_path / "var", request_id,
                                     by="admin:ina\nkind: crisis")
    report = load_catalog(catalog.root)
    assert report.ok, [i.format() for i in report.errors]
    day = accepted.publish_at.astimezone(BERLIN).date()
    post = render_occurrence(report.catalog, accepted.campaign_id, day)[0]
    assert post.text.startswith(text)
    header = accepted.path.read_text(encoding="utf-8").split("\nid: ")[0]
    assert "Kim id: boese" in header and all(line.startswith("#")
                                              for line in header.splitlines())


def test_an_amts_request_needs_an_approver_the_office_names(engine: Engine, catalog: Catalog,
                                                            tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    request_id = _submitted(engine, catalog, data_dir, requester=("office", "wahlamt"))
    before = _files(catalog.root)
    with pytest.raises(InvalidRequest, match="name the approver"):
        domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina")
    assert _files(catalog.root) == before
    accepted = domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina",
                                     approver="ordnung-sicherheit")
    campaign = load_catalog(catalog.root).catalog.campaign(accepted.campaign_id).campaign
    assert campaign.requested_by.office == "wahlamt"
    assert campaign.approval.approvers[0].portfolio == "ordnung-sicherheit"


def test_a_draft_that_does_not_validate_writes_nothing(engine: Engine, catalog: Catalog,
                                                       tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    request_id = _submitted(engine, catalog, data_dir)
    before = _files(catalog.root)
    with pytest.raises(domain.DraftInvalid, match="does not validate"):
        domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina",
                              kind="party")  # not a campaign kind
    assert _files(catalog.root) == before
    with pytest.raises(InvalidRequest, match="exists already"):
        domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina",
                              campaign_id="trikottag")
    with pytest.raises(InvalidRequest, match="has passed"):
        domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina",
                              publish_at=datetime.now(UTC) - timedelta(hours=1))
    assert _files(catalog.root) == before
    row, _ = domain.load_request(engine, request_id)
    assert row.status == "submitted"


def test_a_near_slot_gets_a_deadline_before_it(engine: Engine, catalog: Catalog,
                                               tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    request_id = _submitted(engine, catalog, data_dir)
    soon = datetime.now(UTC) + timedelta(minutes=10)
    accepted = domain.accept_request(engine, catalog, data_dir, request_id, by="admin:ina",
                                     publish_at=soon)
    campaign = load_catalog(catalog.root).catalog.campaign(accepted.campaign_id).campaign
    seconds = int(campaign.approval.deadline_before.rstrip("s"))
    assert 240 <= seconds <= 300


# --- links ----------------------------------------------------------------------------


def test_invite_links_name_their_requester_and_expire(catalog: Catalog, signer: Signer) -> None:
    requester = domain.requester_for(catalog, "office", "wahlamt")
    link, expires = domain.invite_link(signer, "https://newsroom.example.org/", requester,
                                       days=90)
    token = link.rsplit("/", 1)[1]
    assert link.startswith("https://newsroom.example.org/anfrage/")
    found, nonce = domain.check_invite(signer, catalog, token)
    assert (found.kind.value, found.id, found.approver) == ("office", "wahlamt", None)
    with pytest.raises(domain.InviteRefused) as expired:
        domain.check_invite(signer, catalog, token, now=expires + timedelta(seconds=1))
    assert expired.value.reason == "expired"
    with pytest.raises(domain.InviteRefused) as forged:
        domain.check_invite(signer, catalog, token[:-2] + "xx")
    assert forged.value.reason == "forged"
    approval_token, _ = signer.issue(purpose=APPROVAL, subject={}, person="benz",
                                     content_hash="", ttl=timedelta(days=1))
    with pytest.raises(domain.InviteRefused):
        domain.check_invite(signer, catalog, approval_token)
    other = Signer("another-secret-key-0123456789-0123456789-abc")
    with pytest.raises(domain.InviteRefused):
        domain.check_invite(other, catalog, token)


# --- messages over real SMTP ------------------------------------------------------------


def test_each_step_is_told_once_in_german(engine: Engine, catalog: Catalog, signer: Signer,
                                          tmp_path: Path) -> None:
    mail = MailCatcher(port=free_port()).start()
    try:
        notifier = AppriseNotifier.for_directory(catalog.directory, mail.smtp_url)
        ctx = NotifyContext(engine=engine, catalog=catalog, notifier=notifier, signer=signer,
                            base_url="http://127.0.0.1:8100", data_dir=tmp_path / "var")
        request_id = _submitted(engine, catalog, tmp_path / "var")
        row, _ = domain.load_request(engine, request_id)
        assert domain.pending_step(row) == "office"
        assert domain.notify_step(ctx, request_id, "office") is True
        assert domain.notify_step(ctx, request_id, "office") is False  # once
        assert domain.notify_step(ctx, request_id, "received") is True
        office = mail.wait_for("kommunikation@example.org")
        assert len(office) == 1
        assert "Neue Anfrage" in str(office[0]["subject"])
        body = text_of(office[0])
        assert "newsroom requests accept" in body and "Läuferinnen am Start" in body
        attached = [part.get_content() for part in office[0].iter_attachments()]
        assert attached == [png()]  # the office sees the image itself
        dezernent = mail.wait_for("oberbuergermeister@example.org")  # sport: OB Benz
        assert "ist eingegangen" in str(dezernent[0]["subject"])
        domain.ask_back(engine, request_id, question="Wann genau ist der Start?",
                        by="admin:ina")
        row, _ = domain.load_request(engine, request_id)
        assert domain.pending_step(row) == "asked"
        domain.notify_step(ctx, request_id, "asked")
        asked = mail.wait_for("oberbuergermeister@example.org", count=2)[-1]
        text = text_of(asked)
        assert "Wann genau ist der Start?" in text
        link = next(line for line in text.splitlines() if "/anfrage/antwort/" in line).strip()
        checked, _ = domain.check_answer_link(signer, engine, link.rsplit("/", 1)[1])
        assert checked.id == request_id
        row, _ = domain.load_request(engine, request_id)
        assert domain.pending_step(row) is None
        with store.session_scope(engine) as session:
            row = crud.get_request(session, request_id=request_id)
            assert row.notified == ["office:1", "received:1", "asked:1"]
    finally:
        mail.stop()
