"""End to end: a campaign approved in three steps (approval.steps) on a real Prefect
server with the Newsroom worker, the mails on a real SMTP server, each link opened in
headless Chromium and "Freigeben" clicked there.

Each step's person is mailed only once the step before is approved; the run suspends
once, stays suspended through the first two steps and is resumed once, when the last
step settles the gate; the posts go out once per channel. Screenshots of every page go
to the test's tmp_path (390 px wide, without horizontal scroll).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flow_testkit import (
    ON_POSTGRES,
    flow_stack,
    run_state,
    start_campaign,
    state_names,
    wait_for,
    wait_for_state,
)

from newsroom import store
from newsroom.orchestration.stack import text_of
from newsroom.runtime import get_runtime
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.slow

POOL = "newsroom-steps-e2e"
CAMPAIGN = "e2e-stufen"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
SPORTAMT = "sportamt-leitung@example.org"  # Petra Kühn, Leiterin des Sportamts: step 1
DEZERNAT = "oberbuergermeister@example.org"  # OB Hanno Benz (portfolio sport): step 2
REDAKTION = "redaktion@example.org"  # Ina Hoffmann, Amt für Kommunikation: step 3
TEXT = "Darmstadt ehrt seine Sportlerinnen und Sportler"
WIDTH = 390  # a phone


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory, request):
    database_url = request.getfixturevalue("postgres_url") if ON_POSTGRES else None
    with flow_stack(tmp_path_factory.mktemp("steps-e2e"), POOL, database_url=database_url,
                    web=True) as ns:
        yield ns


def _write_chain_campaign(catalog: Path, slot: datetime) -> None:
    """A one-off request of the Sportamt at ``slot``, approved in three steps; every step
    is due 10 s before the slot (the chain's deadline_before)."""
    local = slot.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S")
    (catalog / f"{CAMPAIGN}.yaml").write_text(f"""\
id: {CAMPAIGN}
title: Testkampagne {CAMPAIGN}
topic: Sport
kind: sports_day
requested_by: {{office: sportamt}}
approval:
  deadline_before: 10s
  on_timeout: cancel
  steps:
    - name: Sportamt
      approvers:
        - person: sportamt-leitung
    - name: Sportdezernat
      approvers:
        - portfolio: sport
      signs: true
    - name: Schlussredaktion
      approvers:
        - person: hoffmann
slots:
  - at: "{local}"
    channels: [mastodon, bluesky]
content:
  text: "Heute {TEXT} – herzlichen Glückwunsch! {{{{ hashtags }}}}"
  hashtags: [SportInDarmstadt]
""", encoding="utf-8")


def _only_mail(stack, address: str, timeout: float = 30) -> tuple[str, str]:
    """(subject, text) of the one approval mail to ``address``."""
    message = stack.mail.wait_for(address, timeout=timeout)[0]
    return str(message["subject"]), text_of(message)


def _chain(page) -> list[tuple[str, str]]:
    """(class, text) of each step of the page's "Freigabe in Stufen" list."""
    section = page.locator("section.chain")
    assert section.get_by_role("heading", name="Freigabe in Stufen").is_visible()
    steps = section.locator("ol.steps > li")
    return [(steps.nth(i).get_attribute("class") or "",
             " ".join(steps.nth(i).inner_text().split())) for i in range(steps.count())]


def _fits(page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths


def _approve(browser, link: str, shots: Path, name: str,
             outcome: str) -> list[tuple[str, str]]:
    """Open ``link`` at a phone's width, read the chain, click "Freigeben"; the done page
    says ``outcome``. The chain as the page showed it before the click. Screenshots of
    both pages."""
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    try:
        response = page.goto(link)
        assert response.status == 200
        assert page.locator("html").get_attribute("lang") == "de"
        assert TEXT in page.content()
        chain = _chain(page)
        _fits(page)
        page.screenshot(path=str(shots / f"{name}-page-{WIDTH}.png"), full_page=True)
        with page.expect_navigation() as decided:
            page.get_by_role("button", name="Freigeben").click()
        assert decided.value.status == 200
        page.wait_for_selector("text=Danke!")
        assert "freigegeben" in page.content()
        assert page.get_by_text(outcome).is_visible()
        _fits(page)
        page.screenshot(path=str(shots / f"{name}-done-{WIDTH}.png"), full_page=True)
        return chain
    finally:
        page.close()


def _no_mail_yet(stack, *addresses: str) -> None:
    time.sleep(1.5)  # the mails of a step go out with its opening; give a late one a moment
    for address in addresses:
        assert stack.mail.to(address) == [], address


def test_a_three_step_chain_asks_each_step_in_turn_and_resumes_once(stack, browser,
                                                                     tmp_path):
    # The slot close enough to publish in this run (not by a later publication run), far
    # enough for three approvals before the steps' deadline 10 s before it (they take
    # about 10 s here).
    slot = (datetime.now(UTC) + timedelta(seconds=45)).replace(microsecond=0)
    day = slot.astimezone(BERLIN).date().isoformat()
    _write_chain_campaign(stack.catalog, slot)
    run_id = start_campaign(stack, CAMPAIGN, day)

    # Step 1: only the Sportamt is asked.
    assert wait_for_state(run_id, {"Suspended"}, 60) == "Suspended"
    subject, body = _only_mail(stack, SPORTAMT)
    assert "Freigabe erbeten (Stufe 1 von 3)" in subject, subject
    assert "Freigabe in Stufen:" in body
    _no_mail_yet(stack, DEZERNAT, REDAKTION)
    chain = _approve(browser, LINK.search(body).group(0), tmp_path, "stufe-1",
                     "Die Freigabe läuft noch.")
    assert [c for c, _ in chain] == ["step step-current", "step step-to_come",
                                     "step step-to_come"], chain
    assert chain[0][1].startswith("Stufe 1 von 3: Sportamt (Ihre Stufe) – jetzt gefragt, bis")
    assert chain[1][1].startswith("Stufe 2 von 3: Sportdezernat – folgt danach"), chain
    assert chain[2][1].startswith("Stufe 3 von 3: Schlussredaktion – folgt danach"), chain

    # Step 2: the Sportdezernent is asked now; the run still waits.
    subject, body = _only_mail(stack, DEZERNAT)
    assert "Stufe 2 von 3" in subject, subject
    assert "Stufe 1 von 3 – Sportamt: freigegeben" in body, body
    assert "Petra Kühn" in body
    assert run_state(run_id).name == "Suspended"
    _no_mail_yet(stack, REDAKTION)
    assert run_state(run_id).name == "Suspended"
    chain = _approve(browser, LINK.search(body).group(0), tmp_path, "stufe-2",
                     "Die Freigabe läuft noch.")
    assert [c for c, _ in chain] == ["step step-done", "step step-current",
                                     "step step-to_come"], chain
    assert chain[0][1].startswith("Stufe 1 von 3: Sportamt – freigegeben"), chain
    assert "Petra Kühn: freigegeben am" in chain[0][1], chain
    assert chain[1][1].startswith(
        "Stufe 2 von 3: Sportdezernat (Ihre Stufe) – jetzt gefragt, bis"), chain
    assert "Hanno Benz (Sie): noch offen" in chain[1][1], chain
    assert chain[2][1].startswith("Stufe 3 von 3: Schlussredaktion – folgt danach"), chain

    # Step 3: the Schlussredaktion; its approval settles the gate and resumes the run.
    subject, body = _only_mail(stack, REDAKTION)
    assert "Stufe 3 von 3" in subject, subject
    assert "Stufe 2 von 3 – Sportdezernat: freigegeben" in body, body
    assert run_state(run_id).name == "Suspended"
    chain = _approve(browser, LINK.search(body).group(0), tmp_path, "stufe-3",
                     "Die Beiträge sind freigegeben.")
    assert [c for c, _ in chain] == ["step step-done", "step step-done",
                                     "step step-current"], chain
    assert "Petra Kühn: freigegeben am" in chain[0][1], chain
    assert "Hanno Benz: freigegeben am" in chain[1][1], chain
    assert chain[2][1].startswith(
        "Stufe 3 von 3: Schlussredaktion (Ihre Stufe) – jetzt gefragt, bis"), chain

    assert wait_for_state(run_id, {"Completed"}, 120) == "Completed"
    for network in ("mastodon", "bluesky"):
        posts = [p for p in stack.standins.posts(network) if TEXT in str(p)]
        assert len(posts) == 1, (network, posts)

    # Resumed once: one suspension in the run's history, one resume in the audit trail.
    history = state_names(run_id)
    assert history.count("Suspended") == 1, history
    after = history[history.index("Suspended") + 1:]
    assert after[0] == "Resuming" and "Suspended" not in after, history
    assert history[-1] == "Completed", history
    with store.session_scope(get_runtime().engine) as session:
        events = store.audit_trail(session, campaign_id=CAMPAIGN)
    actions = [e.action for e in events]
    assert actions.count("approval.resumed") == 1, actions
    steps = [e.detail["step"] for e in events if e.action == "approval.step_approved"]
    assert steps == [0, 1], actions
    assert actions.count("approval.settled") == 1, actions
    assert actions.count("publication.published") == 2, actions
    # Each person was mailed once, although the run ran twice (before and after resuming).
    for address in (SPORTAMT, DEZERNAT, REDAKTION):
        assert len(stack.mail.to(address)) == 1, address
    assert wait_for(lambda: sorted(p.name for p in tmp_path.glob("*.png")), 5) == sorted(
        f"stufe-{n}-{kind}-{WIDTH}.png" for n in (1, 2, 3) for kind in ("page", "done"))
