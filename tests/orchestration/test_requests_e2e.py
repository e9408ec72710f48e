"""End to end: a request from the Kinder- und Jugenddezernat, submitted in headless Chromium
(form filled, image uploaded with alt text), carried by the ``request`` flow on a real
Prefect server: the office is told (real SMTP), accepts in the run's resume form, the
campaign file is written and validates, the Dezernentin approves it from the link in her
e-mail (Chromium), and the posts reach the stand-ins. Also: bad input in the browser is
refused in German with nothing stored, and the command line declines and asks back.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from click.testing import CliRunner
from flow_testkit import (
    ON_POSTGRES,
    flow_stack,
    run_state,
    start_campaign,
    wait_for,
    wait_for_state,
)

from newsroom import requests as domain
from newsroom import store
from newsroom.catalog.validation import load_catalog
from newsroom.cli import cli
from newsroom.orchestration.stack import run_async, text_of
from newsroom.runtime import get_runtime
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

POOL = "newsroom-requests-e2e"
DEZERNENTIN = "buergermeisterin@example.org"  # Bürgermeisterin Akdeniz: kinder-jugend
OFFICE = "kommunikation@example.org"
APPROVAL_LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
ANSWER_LINK = re.compile(r"http://127\.0\.0\.1:\d+/anfrage/antwort/[A-Za-z0-9_\-\.]+")
INVITE_LINK = re.compile(r"http://127\.0\.0\.1:\d+/anfrage/[A-Za-z0-9_\-\.]+")


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory, request):
    database_url = request.getfixturevalue("postgres_url") if ON_POSTGRES else None
    with flow_stack(tmp_path_factory.mktemp("requests-e2e"), POOL, database_url=database_url,
                    web=True) as ns:
        ns.uploads = ns.catalog.parent / "var" / "requests"
        yield ns


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + b"\x20\x90\x40" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _invite(portfolio: str) -> str:
    result = CliRunner().invoke(cli, ["requests", "invite", "--portfolio", portfolio,
                                      "--days", "7"])
    assert result.exit_code == 0, result.output
    return INVITE_LINK.search(result.output).group(0)


def _requests() -> list[CampaignRequest]:
    with store.session_scope(get_runtime().engine) as session:
        return crud.list_requests(session)


def _request(request_id: int) -> CampaignRequest:
    return domain.load_request(get_runtime().engine, request_id)[0]


def _mails(stack, address: str, subject_part: str) -> list:
    return [m for m in stack.mail.to(address) if subject_part in str(m["subject"])]


def _wait_mail(stack, address: str, subject_part: str, count: int = 1, timeout: float = 60):
    return wait_for(lambda: found if len(found := _mails(stack, address, subject_part))
                    >= count else None, timeout)


def _fill(page, tmp_path, *, title: str, text: str, image: bytes) -> None:
    page.get_by_label("Titel *").fill(title)
    page.get_by_label("Thema *").fill("Kinder und Jugend")
    page.get_by_label("Gewünschtes Datum *").fill(datetime.now(BERLIN).date().isoformat())
    page.get_by_label(re.compile(r"^Mastodon")).check()
    page.get_by_label(re.compile(r"^Bluesky")).check()
    page.get_by_label("Textentwurf *").fill(text)
    page.get_by_label("Hashtags (optional)").fill("Ferienspiele")
    page.get_by_label("Links (optional)").fill("https://www.darmstadt.example.org/ferienspiele")
    picture = tmp_path / "basteln.png"
    picture.write_bytes(image)
    page.locator("#bild_1").set_input_files(str(picture))
    page.get_by_label("Alternativtext zu Bild 1").fill("Kinder basteln Laternen im Jugendhaus")
    page.get_by_label("Ansprechperson *").fill("Alex Schmidt")
    page.get_by_label("E-Mail für Rückfragen *").fill("alex.schmidt@example.org")


def test_request_from_chromium_becomes_an_approved_published_campaign(stack, browser,
                                                                      tmp_path):
    link = _invite("kinder-jugend")
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    try:
        page.goto(link)
        assert page.locator("html").get_attribute("lang") == "de"
        assert "Kinder- und Jugenddezernat" in page.content()

        # Bad input first: no title, a "PNG" that is a text file. German messages, the
        # values stay, nothing is stored (database and upload folder).
        _fill(page, tmp_path, title="Ferienspiele", text="Die Ferienspiele beginnen!",
              image=b"not an image at all")
        page.get_by_label("Titel *").fill("")
        page.get_by_role("button", name="Anfrage senden").click()
        summary = page.get_by_role("alert")
        assert "Bitte geben Sie einen Titel an." in summary.inner_text()
        assert "kein JPEG-, PNG- oder WebP-Bild" in summary.inner_text()
        assert page.get_by_label("Textentwurf *").input_value() == "Die Ferienspiele beginnen!"
        assert page.get_by_label("Alternativtext zu Bild 1").input_value() \
            == "Kinder basteln Laternen im Jugendhaus"
        assert _requests() == []
        assert not stack.uploads.exists() or not any(stack.uploads.rglob("*.*"))

        # Now complete, with a real image; sent with the keyboard.
        _fill(page, tmp_path, title="Ferienspiele 2027",
              text="Die Anmeldung für die Ferienspiele ist offen – basteln, toben, entdecken!",
              image=_png())
        page.get_by_role("button", name="Anfrage senden").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("text=Vielen Dank!")
        status = page.get_by_role("status").inner_text()
        request_id = int(re.search(r"#(\d+)", status).group(1))
    finally:
        page.close()

    row, images = domain.load_request(get_runtime().engine, request_id)
    assert (row.requester_kind, row.requester_id, row.status) == ("portfolio", "kinder-jugend",
                                                                 "submitted")
    assert [i.alt for i in images] == ["Kinder basteln Laternen im Jugendhaus"]
    assert (stack.uploads.parent / images[0].stored_path).read_bytes() == _png()

    # The web app started the run; it tells the office and the Dezernentin, and waits.
    run_id = UUID(wait_for(lambda: _request(request_id).flow_run_id, 30))
    assert wait_for_state(run_id, {"Suspended"}, 90) == "Suspended"
    office = _wait_mail(stack, OFFICE, f"Neue Anfrage #{request_id}")[0]
    assert "newsroom requests accept" in text_of(office)
    _wait_mail(stack, DEZERNENTIN, f"Anfrage #{request_id} ist eingegangen")

    # The office accepts in the run's resume form (Prefect UI), naming the time.
    slot = (datetime.now(UTC) + timedelta(seconds=120)).replace(microsecond=0)
    local = slot.astimezone(BERLIN)
    from prefect.flow_runs import aresume_flow_run

    run_async(aresume_flow_run(run_id, run_input={"decision": "accept", "text": "",
                                                  "office_member": ""}))
    time.sleep(1.0)  # without a name nothing is decided: the run waits again
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    assert _request(request_id).status == "submitted"
    run_async(aresume_flow_run(run_id, run_input={
        "decision": "accept", "office_member": "Ina Hoffmann",
        "publish_at": local.strftime("%Y-%m-%d %H:%M:%S")}))
    assert wait_for_state(run_id, {"Completed"}, 60) == "Completed"
    assert "accepted as campaign" in (run_state(run_id).message or "")
    row = _request(request_id)
    campaign_id = row.campaign_id
    assert row.status == "accepted" and row.decided_by == "admin:hoffmann"
    accepted_mail = _wait_mail(stack, DEZERNENTIN, f"Anfrage #{request_id} wurde angenommen")
    assert campaign_id in text_of(accepted_mail[0])

    # The campaign file validates, names the requester and her Dezernat as approver.
    path = stack.catalog / f"{campaign_id}.yaml"
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    campaign = load_catalog(stack.catalog).catalog.campaign(campaign_id).campaign
    assert campaign.requested_by.portfolio == "kinder-jugend"
    assert campaign.approval.approvers[0].portfolio == "kinder-jugend"

    # Its campaign run asks the Dezernentin; she approves from her e-mail in Chromium.
    campaign_run = start_campaign(stack, campaign_id, local.date().isoformat())
    assert wait_for_state(campaign_run, {"Suspended"}, 60) == "Suspended"
    approval_mail = _wait_mail(stack, DEZERNENTIN, "Freigabe")[0]
    approval_link = APPROVAL_LINK.search(text_of(approval_mail)).group(0)
    page = browser.new_page()
    try:
        page.goto(approval_link)
        assert "Die Anmeldung für die Ferienspiele ist offen" in page.content()
        assert "Kinder basteln Laternen im Jugendhaus" in page.content()
        page.get_by_role("button", name="Freigeben").click()
        page.wait_for_selector("text=Danke!")
    finally:
        page.close()
    assert wait_for_state(campaign_run, {"Completed"}, 180) == "Completed"
    for network in ("mastodon", "bluesky"):
        posts = [p for p in stack.standins.posts(network) if "Ferienspiele" in str(p)]
        assert len(posts) == 1, (network, stack.standins.posts(network))

    with store.session_scope(get_runtime().engine) as session:
        actions = [e.action for e in store.audit_trail(session,
                                                      campaign_id=f"request-{request_id}")]
        campaign_actions = [e.action for e in store.audit_trail(session,
                                                               campaign_id=campaign_id)]
    assert actions[:1] == ["request.submitted"]
    for expected in ("request.run_started", "request.notified.office",
                     "request.notified.received", "request.accepted",
                     "request.notified.accepted"):
        assert expected in actions, actions
    for expected in ("request.became_campaign", "approval.decided", "publication.published"):
        assert expected in campaign_actions, campaign_actions
    assert len(_mails(stack, OFFICE, f"Neue Anfrage #{request_id}")) == 1  # told once
    artifact = run_async(_artifact(f"request-{request_id}-r1"))
    assert artifact is not None and "Kinder basteln Laternen im Jugendhaus" in artifact


async def _artifact(key: str) -> str | None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return str(found[0].data) if found else None


def _submit_by_http(link: str, title: str) -> int:
    import httpx

    with httpx.Client() as client:
        page = client.get(link, timeout=10)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        day = (datetime.now(BERLIN) + timedelta(days=30)).date().isoformat()
        done = client.post(link, timeout=30, data={
            "csrf": csrf, "title": title, "topic": "Sport", "date_from": day,
            "channels": ["mastodon"], "text": f"{title}: alle Infos online.",
            "contact_name": "Sam Sport", "contact_email": "sam@example.org"})
    assert done.status_code == 200, done.text
    return int(re.search(r"Anfrage #(\d+) „", done.text).group(1))


def test_the_office_declines_and_asks_back_on_the_command_line(stack):
    link = _invite("sport")
    declined = _submit_by_http(link, "Vereinsfest")
    asked = _submit_by_http(link, "Sportabzeichen")
    for request_id in (declined, asked):
        run_id = UUID(wait_for(lambda rid=request_id: _request(rid).flow_run_id, 30))
        wait_for_state(run_id, {"Suspended"}, 90)

    listing = CliRunner().invoke(cli, ["requests"])
    assert listing.exit_code == 0
    assert "Vereinsfest" in listing.output and "Sportabzeichen" in listing.output

    result = CliRunner().invoke(cli, ["requests", "decline", str(declined), "--reason",
                                      "Das Vereinsfest ist bereits im Kalender.",
                                      "--by", "hoffmann"])
    assert result.exit_code == 0, result.output
    assert "the waiting run was resumed" in result.output
    mail = _wait_mail(stack, "oberbuergermeister@example.org",
                      f"Anfrage #{declined} wird nicht umgesetzt")[0]
    assert "Das Vereinsfest ist bereits im Kalender." in text_of(mail)
    again = CliRunner().invoke(cli, ["requests", "decline", str(declined), "--reason", "x",
                                     "--by", "hoffmann"])
    assert again.exit_code == 1
    assert "declined already" in again.output and "Traceback" not in again.output

    result = CliRunner().invoke(cli, ["requests", "ask", str(asked), "--question",
                                      "Für welche Altersgruppen gilt das Angebot?",
                                      "--by", "wolf"])
    assert result.exit_code == 0, result.output
    mail = _wait_mail(stack, "oberbuergermeister@example.org", f"Rückfrage zu Ihrer Anfrage "
                      f"#{asked}")[0]
    answer_link = ANSWER_LINK.search(text_of(mail)).group(0)
    first_run = _request(asked).flow_run_id
    assert wait_for_state(UUID(first_run), {"Completed"}, 60) == "Completed"

    import httpx

    with httpx.Client() as client:
        page = client.get(answer_link, timeout=10)
        assert "Für welche Altersgruppen gilt das Angebot?" in page.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        day = (datetime.now(BERLIN) + timedelta(days=30)).date().isoformat()
        done = client.post(answer_link, timeout=30, data={
            "csrf": csrf, "answer": "Für alle ab 6 Jahren.", "title": "Sportabzeichen",
            "topic": "Sport", "date_from": day, "channels": ["mastodon"],
            "text": "Sportabzeichen für alle ab 6 Jahren: alle Infos online.",
            "contact_name": "Sam Sport", "contact_email": "sam@example.org"})
    assert done.status_code == 200, done.text
    second_run = wait_for(lambda: (r := _request(asked).flow_run_id) != first_run and r, 30)
    assert wait_for_state(UUID(second_run), {"Suspended"}, 90) == "Suspended"
    office = _wait_mail(stack, OFFICE, f"Antwort auf Rückfrage #{asked}")[0]
    assert "Für alle ab 6 Jahren." in text_of(office)

    missing = CliRunner().invoke(cli, ["requests", "accept", "999", "--by", "hoffmann"])
    assert missing.exit_code == 1 and "no request 999" in missing.output
    result = CliRunner().invoke(cli, ["requests", "accept", str(asked), "--by", "hoffmann"])
    assert result.exit_code == 0, result.output
    assert "it validates" in result.output and "the waiting run was resumed" in result.output
    assert wait_for_state(UUID(second_run), {"Completed"}, 60) == "Completed"
    _wait_mail(stack, "oberbuergermeister@example.org", f"Anfrage #{asked} wurde angenommen")
    shown = CliRunner().invoke(cli, ["requests", "show", str(asked)])
    assert "request.resubmitted" in shown.output and "request.accepted" in shown.output


def _stored_without_run(title: str) -> int:
    runtime = get_runtime()
    requester = domain.requester_for(runtime.catalog, "office", "jugendamt")
    form = domain.RequestForm(
        title=title, topic="Jugend",
        date_from=(datetime.now(BERLIN) + timedelta(days=10)).date().isoformat(),
        channels=("mastodon",), text=f"{title}: kommt vorbei!",
        contact_name="Jo", contact_email="jo@example.org")
    return domain.submit_request(runtime.engine, runtime.settings.data_dir, requester,
                                 domain.check_request(form, runtime.catalog),
                                 invite_nonce="sweep-test")


def test_the_sweep_starts_and_resumes_runs_and_the_resume_form_decides(stack):
    """Stored while Prefect was unreachable: the sweep starts the run. In the resume form
    an invalid acceptance (an Amt's request without approver) is not recorded, the run
    waits again and says why; a decline with a reason is. A decision stored while its
    run could not be resumed is picked up by the sweep."""
    from prefect.flow_runs import aresume_flow_run

    from newsroom.orchestration.request_runs import sweep_requests

    runtime = get_runtime()
    forum, fest = _stored_without_run("Jugendforum"), _stored_without_run("Jugendfest")
    assert _request(forum).flow_run_id is None
    done = run_async(sweep_requests(runtime))
    assert {forum, fest} <= set(done["started"])
    runs = {rid: UUID(_request(rid).flow_run_id) for rid in (forum, fest)}
    for run_id in runs.values():
        assert wait_for_state(run_id, {"Suspended"}, 90) == "Suspended"
    _wait_mail(stack, "jugendamt@example.org", f"Anfrage #{forum} ist eingegangen")
    again = run_async(sweep_requests(runtime))  # both wait for the office: nothing to do
    assert not {forum, fest} & set(again["started"] + again["resumed"])

    run_async(aresume_flow_run(runs[forum], run_input={"decision": "accept",
                                                       "office_member": "Ina Hoffmann"}))
    time.sleep(1.0)
    assert wait_for_state(runs[forum], {"Suspended"}, 60) == "Suspended"
    assert _request(forum).status == "submitted"
    run_async(aresume_flow_run(runs[forum], run_input={
        "decision": "decline", "text": "Dafür gibt es schon eine Kampagne.",
        "office_member": "Ina Hoffmann"}))
    assert wait_for_state(runs[forum], {"Completed"}, 60) == "Completed"
    mail = _wait_mail(stack, "jugendamt@example.org", f"Anfrage #{forum} wird nicht")[0]
    assert "Dafür gibt es schon eine Kampagne." in text_of(mail)
    assert _request(forum).decided_by == "admin:hoffmann"

    domain.accept_request(runtime.engine, runtime.catalog, runtime.settings.data_dir, fest,
                          by="admin:ina", approver="kinder-jugend")
    resumed = run_async(sweep_requests(runtime))
    assert fest in resumed["resumed"]
    assert wait_for_state(runs[fest], {"Completed"}, 60) == "Completed"
    _wait_mail(stack, "jugendamt@example.org", f"Anfrage #{fest} wurde angenommen")
