"""Every state of an approval link says what is true, over a real server and store.

An approval of an older version (no longer counts; use the new mail), the quorum met while
signatures are still collected (and a late signature still appears) or met and closed (it
does not), the deadline passed (with the outcome, before and after the sweeper applied it),
published (with the network's links). Each claim the page makes is checked against what
the code does (the signatories rendered, the refused late click), GETs change nothing, and
a link for another person or content learns no more than "expired".
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from approval_testkit import (
    DAY,
    Outbox,
    build_catalog,
    load,
    point_at_standins,
    requests_by_person,
    snapshot,
    store_posts,
    write_campaign,
)
from webkit import serving

from newsroom import approval, store
from newsroom.approval import GateOutcome
from newsroom.approval_messages import local_when
from newsroom.rendering.render import render_occurrence
from newsroom.settings import Settings
from newsroom.timeutil import BERLIN
from newsroom.web import create_web_app

pytestmark = pytest.mark.slow
LINK = re.compile(r"/freigabe/(\d+-[A-Za-z0-9_-]{22})(?![A-Za-z0-9_-])")
# Campaigns whose deadline (48 h before the slot) has passed: the slot is tomorrow.
LATE_SLOT = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
LATE_DEADLINE = LATE_SLOT - timedelta(hours=48)
EARLY = LATE_DEADLINE - timedelta(days=1)  # when the late campaigns' approvers answered
LATE = {
    "late-cancel": dict(mode="quorum", quorum=2, on_timeout="cancel"),
    "late-collect": dict(mode="quorum", quorum=2, on_timeout="publish_if_quorum"),
    "late-escalate": dict(mode="all", quorum=None, on_timeout="escalate"),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_catalog(tmp_path_factory.mktemp("states") / "campaigns")
    for campaign_id, rule in LATE.items():
        write_campaign(root, campaign_id, at=LATE_SLOT, **rule)
    return root


@pytest.fixture(scope="module")
def catalog(root):
    return load(root)


@pytest.fixture
def site(sqlite_engine, catalog, signer):
    """The web app over the store, served by uvicorn; (base URL, HTTP client)."""
    app = create_web_app(sqlite_engine, catalog, Settings(), signer=signer)
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield base, http


def name(catalog, person_id: str) -> str:
    return catalog.index.people[person_id].display


def open_and_mail(engine, catalog, signer, base, occurrence_id, outbox, now=None):
    approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=now)
    approval.notify_approvers(engine, catalog, occurrence_id=occurrence_id, notifier=outbox,
                              signer=signer, base_url=base, now=now)


def link_in_mail(outbox: Outbox, person: str, index: int = -1) -> str:
    return LINK.search(outbox.to(person)[index]["text"]).group(1)


def decide_on_page(http: httpx.Client, token: str, decision: str = "approve") -> httpx.Response:
    form = http.get(f"/freigabe/{token}")
    assert form.status_code == 200, form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return http.post(f"/freigabe/{token}", data={"csrf": csrf, "decision": decision})


def text_of(page: httpx.Response) -> str:
    """The page's words without tags, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", page.text).split())


def test_an_approval_of_an_older_version_says_it_no_longer_counts(site, sqlite_engine,
                                                                    catalog, signer):
    base, http = site
    outbox = Outbox()
    occurrence_id = store_posts(sqlite_engine, catalog, "t-quorum-collect")
    open_and_mail(sqlite_engine, catalog, signer, base, occurrence_id, outbox)
    old = link_in_mail(outbox, "benz")
    assert decide_on_page(http, old).status_code == 200
    posts = render_occurrence(catalog, "t-quorum-collect", DAY)
    edited = [type(p)(**{**p.__dict__, "text": p.text.replace("Gemeinsamer", "Kurzer")})
              for p in posts]
    with store.session_scope(sqlite_engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id, posts=edited)
    open_and_mail(sqlite_engine, catalog, signer, base, occurrence_id, outbox)
    assert len(outbox.to("benz")) == 2  # the gate asked again, with a new link

    before = snapshot(sqlite_engine, occurrence_id)
    page = http.get(f"/freigabe/{old}")
    said = text_of(page)
    assert page.status_code == 409
    assert "Sie haben eine frühere Fassung freigegeben" in said
    assert "für die geänderte zählt sie nicht" in said
    assert "eine neue E-Mail mit einem neuen Link geschickt" in said
    assert "Sie haben bereits freigegeben" not in said
    assert snapshot(sqlite_engine, occurrence_id) == before
    # ... and the new mail's link is the way to decide on the edited version
    new = link_in_mail(outbox, "benz")
    fresh = http.get(f"/freigabe/{new}")
    assert fresh.status_code == 200 and "geänderte Fassung" in fresh.text
    assert decide_on_page(http, new).status_code == 200
    said = text_of(http.get(f"/freigabe/{old}"))
    assert "Zur geänderten Fassung haben Sie am" in said and "bereits freigegeben" in said


def test_quorum_met_while_collecting_says_a_signature_before_the_deadline_appears(
        site, sqlite_engine, catalog, signer):
    base, http = site
    outbox = Outbox()
    occurrence_id = store_posts(sqlite_engine, catalog, "t-quorum-collect")
    open_and_mail(sqlite_engine, catalog, signer, base, occurrence_id, outbox)
    for person in ("benz", "akdeniz"):
        assert decide_on_page(http, link_in_mail(outbox, person)).status_code == 200
    late = link_in_mail(outbox, "feldmann")
    before = snapshot(sqlite_engine, occurrence_id)
    page = http.get(f"/freigabe/{late}")
    said = text_of(page)
    assert page.status_code == 200 and 'name="decision" value="approve"' in page.text
    assert "Quorum erreicht" in said
    assert "2 von 3 Angefragten haben freigegeben; nötig sind 2." in said
    assert (f"Unterzeichnet haben: {name(catalog, 'benz')} und {name(catalog, 'akdeniz')}."
            in said)
    assert "steht Ihr Name in der veröffentlichten Erklärung" in said
    assert snapshot(sqlite_engine, occurrence_id) == before
    # What the page promised: the late signature is accepted and named in the post.
    assert decide_on_page(http, late).status_code == 200
    status = approval.evaluate_gate(sqlite_engine, catalog, occurrence_id=occurrence_id)
    assert status.outcome == GateOutcome.APPROVED
    names = status.signatory_names(catalog)
    assert name(catalog, "feldmann") in names
    signed = render_occurrence(catalog, "t-quorum-collect", DAY, signatories=names)
    assert all(name(catalog, "feldmann") in post.text for post in signed)


def test_quorum_met_and_closed_says_a_late_signature_does_not_appear(site, sqlite_engine,
                                                                     catalog, signer):
    base, http = site
    outbox = Outbox()
    occurrence_id = store_posts(sqlite_engine, catalog, "t-quorum")
    open_and_mail(sqlite_engine, catalog, signer, base, occurrence_id, outbox)
    for person in ("benz", "akdeniz"):
        assert decide_on_page(http, link_in_mail(outbox, person)).status_code == 200
    late = link_in_mail(outbox, "feldmann")
    before = snapshot(sqlite_engine, occurrence_id)
    page = http.get(f"/freigabe/{late}")
    said = text_of(page)
    assert page.status_code == 409 and 'name="decision"' not in page.text
    assert "Das Quorum ist erreicht: 2 von 3 Angefragten haben freigegeben; nötig waren 2." in said
    assert f"Unterzeichnet haben: {name(catalog, 'benz')} und {name(catalog, 'akdeniz')}." in said
    assert "Ihr Name steht nicht in der veröffentlichten Erklärung" in said
    assert snapshot(sqlite_engine, occurrence_id) == before
    # What the page said: a late click is refused and the name is not in the post.
    csrf = "x"
    assert http.post(f"/freigabe/{late}", data={"csrf": csrf, "decision": "approve"}
                     ).status_code == 409
    status = approval.evaluate_gate(sqlite_engine, catalog, occurrence_id=occurrence_id)
    assert name(catalog, "feldmann") not in status.signatory_names(catalog)


@pytest.mark.parametrize(("campaign_id", "approvers", "expected", "absent"), [
    ("late-cancel", ["benz"],
     ["1 von 3 Angefragten hat freigegeben; nötig waren 2.",
      "Die Veröffentlichung wurde deshalb abgesagt; es wird nichts veröffentlicht.",
      "Freigegeben hat: Oberbürgermeister Hanno Benz."],
     ["Unterzeichnet", "Ihr Name"]),
    ("late-collect", ["benz", "akdeniz"],
     ["Das Quorum ist erreicht: 2 von 3 Angefragten haben freigegeben; nötig waren 2.",
      "Die Beiträge sind freigegeben.",
      "Ihr Name steht nicht in der veröffentlichten Erklärung"],
     ["abgesagt"]),
    ("late-escalate", ["benz"],
     ["1 von 3 Angefragten hat freigegeben; nötig waren alle.",
      "Das Amt für Kommunikation entscheidet nun, ob veröffentlicht wird.",
      "steht Ihr Name nicht unter der Erklärung"],
     ["abgesagt", "Die Beiträge sind freigegeben"]),
])
def test_after_the_deadline_the_link_says_the_outcome(site, sqlite_engine, catalog, signer,
                                                      campaign_id, approvers, expected, absent):
    base, http = site
    outbox = Outbox()
    day = LATE_SLOT.astimezone(BERLIN).date()
    occurrence_id = store_posts(sqlite_engine, catalog, campaign_id, day)
    open_and_mail(sqlite_engine, catalog, signer, base, occurrence_id, outbox, now=EARLY)
    for person in approvers:
        approval.decide(sqlite_engine, catalog, token=link_in_mail(outbox, person),
                        decision="approve", comment="", signer=signer, now=EARLY)
    silent = link_in_mail(outbox, "feldmann")
    deadline = local_when(LATE_DEADLINE)

    # Before the deadline sweeper ran: the page reads the outcome, and stores nothing.
    before = snapshot(sqlite_engine, occurrence_id)
    first = http.get(f"/freigabe/{silent}")
    assert snapshot(sqlite_engine, occurrence_id) == before
    approval.process_deadlines(sqlite_engine, catalog, notifier=outbox, signer=signer,
                               base_url=base)
    after = http.get(f"/freigabe/{silent}")
    for page in (first, after):
        said = text_of(page)
        assert page.status_code == 410, said
        assert f"Die Frist für diese Freigabe ist am {deadline} abgelaufen" in said
        assert "Sie haben bis dahin nicht geantwortet" in said
        for sentence in expected:
            assert sentence in said, (sentence, said)
        for words in absent:
            assert words not in said, (words, said)
    assert text_of(first) == text_of(after)
    # One who answered in time is told their answer and the outcome.
    said = text_of(http.get(f"/freigabe/{link_in_mail(outbox, 'benz', 0)}"))
    assert "Sie haben bereits am" in said and "freigegeben" in said
    assert expected[0] in said


def test_links_for_another_person_or_content_learn_nothing_more(site, sqlite_engine, catalog,
                                                                 signer):
    base, http = site
    outbox = Outbox()
    day = LATE_SLOT.astimezone(BERLIN).date()
    occurrence_id = store_posts(sqlite_engine, catalog, "late-cancel", day)
    open_and_mail(sqlite_engine, catalog, signer, base, occurrence_id, outbox, now=EARLY)
    approval.decide(sqlite_engine, catalog, token=link_in_mail(outbox, "benz"),
                    decision="approve", comment="", signer=signer, now=EARLY)
    approval.process_deadlines(sqlite_engine, catalog, notifier=outbox, signer=signer,
                               base_url=base)
    request = requests_by_person(sqlite_engine, occurrence_id)["feldmann"]
    subject = {"request": request.id, "nonce": request.token_nonce}
    other_person, _ = signer.issue(purpose="approval", subject=subject, person="akdeniz",
                                   content_hash=request.bundle_hash, ttl=timedelta(hours=1),
                                   now=EARLY)
    other_content, _ = signer.issue(purpose="approval", subject=subject, person="feldmann",
                                    content_hash="0" * 64, ttl=timedelta(hours=1), now=EARLY)
    other_nonce, _ = signer.issue(purpose="approval", subject={**subject, "nonce": "x"},
                                  person="feldmann", content_hash=request.bundle_hash,
                                  ttl=timedelta(hours=1), now=EARLY)
    genuine = link_in_mail(outbox, "feldmann")
    ref, mac = genuine.split("-", 1)
    altered = f"{ref}-{mac[:-1]}{'B' if mac[-1] == 'A' else 'A'}"
    for token, status in ((other_person, 410), (other_content, 410), (other_nonce, 410),
                          (altered, 400), (f"{int(ref) + 1000}-{mac}", 400)):
        page = http.get(f"/freigabe/{token}")
        said = text_of(page)
        assert page.status_code == status, said
        for secret in ("abgesagt", "von 3", "Testaufruf", name(catalog, "benz"),
                       "nicht geantwortet"):
            assert secret not in said, (token, secret)
    assert "abgesagt" in text_of(http.get(f"/freigabe/{genuine}"))


def test_published_says_so_with_the_networks_links(tmp_path, sqlite_engine, signer,
                                                   standins_url, monkeypatch):
    """The whole path through the stand-ins: approved by quorum at the deadline, delivered
    at its second; every link then names the published posts and their addresses."""
    from newsroom.delivery import deliver_occurrence, prepare_occurrence
    from newsroom.runtime import Runtime
    from newsroom.standins.config import STANDIN_CREDENTIAL_ENV

    for key, value in STANDIN_CREDENTIAL_ENV.items():
        monkeypatch.setenv(key, value)
    slot = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
    early = slot - timedelta(hours=72)
    root = build_catalog(tmp_path / "campaigns")
    point_at_standins(root, standins_url)
    write_campaign(root, "late-published", at=slot)
    settings = Settings(catalog_dir=root, data_dir=tmp_path / "var",
                        secret_key="test-secret-key-for-approval-links-0123456789")
    runtime = Runtime(settings=settings, engine=sqlite_engine, signer=signer)
    outbox = runtime.notifier_override = Outbox()
    catalog = runtime.catalog
    prepared = prepare_occurrence(runtime, "late-published", slot.astimezone(BERLIN).date())
    app = create_web_app(sqlite_engine, catalog, Settings(), signer=signer)
    with serving(app) as base, httpx.Client(base_url=base, timeout=30) as http:
        open_and_mail(sqlite_engine, catalog, signer, base, prepared.occurrence_id, outbox,
                      now=early)
        for person in ("benz", "akdeniz"):
            approval.decide(sqlite_engine, catalog, token=link_in_mail(outbox, person),
                            decision="approve", comment="", signer=signer, now=early)
        status = approval.evaluate_gate(sqlite_engine, catalog,
                                        occurrence_id=prepared.occurrence_id)
        assert status.outcome == GateOutcome.APPROVED

        async def deliver():
            async with httpx.AsyncClient(timeout=30) as client:
                return await deliver_occurrence(runtime, prepared, status, client=client)

        report = asyncio.run(deliver())
        assert sorted(report.published) == ["bluesky", "mastodon"], report
        for person, code in (("feldmann", 410), ("benz", 410)):
            page = http.get(f"/freigabe/{link_in_mail(outbox, person, 0)}")
            said = text_of(page)
            assert page.status_code == code, said
            assert "Veröffentlicht" in said
            for channel, url in report.published.items():
                assert url and url.startswith(("https://", standins_url))  # the post
                assert f'<a href="{url}" rel="noopener noreferrer">{url}</a>' in page.text
                assert (f"{approval.channel_label(catalog, channel)}: veröffentlicht am"
                        in said)
            assert "geplant" not in said
