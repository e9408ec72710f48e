"""The approval e-mail in real Chromium: the HTML part as it came through a real SMTP
server fits a phone's 390 px and a 1,000 px window without horizontal scroll, its button
is visible and leads to the short link; the short link opens the approval page, and
deciding there works once. Screenshots go to the test's tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from approval_testkit import (
    LABELS_CAMPAIGN,
    LONG_ADDRESS,
    add_labels_campaign,
    build_catalog,
    load,
    store_posts,
)
from mailkit import parts
from webkit import serving

from newsroom import approval, store
from newsroom.notify import AppriseNotifier
from newsroom.settings import Settings
from newsroom.web import create_web_app

pytestmark = pytest.mark.slow


@pytest.fixture
def mailed(tmp_path: Path, sqlite_engine, signer, smtp):
    """The labels campaign's gate opened now and mailed over SMTP with links to a served
    web app; yields (Bürgermeisterin Akdeniz's mail: text, HTML), the engine and the
    occurrence's id."""
    inbox, smtp_url = smtp
    root = build_catalog(tmp_path / "campaigns")
    add_labels_campaign(root)
    catalog = load(root)
    occurrence_id = store_posts(sqlite_engine, catalog, LABELS_CAMPAIGN)
    now = datetime.now(UTC)
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=now)
    app = create_web_app(sqlite_engine, catalog, Settings(), signer=signer)
    with serving(app) as base:
        approval.notify_approvers(
            sqlite_engine, catalog, occurrence_id=occurrence_id,
            notifier=AppriseNotifier.for_directory(catalog.directory, smtp_url),
            signer=signer, base_url=base, now=now)
        [message] = inbox.to("buergermeisterin@example.org")
        yield parts(message), sqlite_engine, occurrence_id


@pytest.mark.parametrize("width", [390, 1000])
def test_the_mail_fits_the_window_and_its_button_leads_to_the_short_link(
        browser, mailed, tmp_path, width):
    (plain, html), _, _ = mailed
    [link] = [word for word in plain.split() if "/freigabe/" in word]
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.set_content(html, wait_until="load")
        widths = page.evaluate("[document.documentElement.scrollWidth,"
                               " document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], widths
        assert page.get_by_text("Sehr geehrte Frau Bürgermeisterin Akdeniz,").is_visible()
        assert page.get_by_text(LONG_ADDRESS).first.is_visible()  # wrapped, not cut
        button = page.get_by_role("link", name="Prüfen und entscheiden")
        assert button.count() == 1 and button.is_visible()
        assert button.get_attribute("href") == link
        assert page.locator(f'a[href="{link}"]').count() == 2  # the button, the link as text
        box = button.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
        assert box["height"] >= 40, box  # a target a thumb can hit
        colour = button.evaluate(
            "element => getComputedStyle(element.parentElement).backgroundColor")
        assert colour == "rgb(0, 84, 159)", colour  # the cell is the button
        shot = tmp_path / f"approval-mail-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 0
    finally:
        page.close()


def test_the_short_link_opens_the_approval_page_and_decides_once(browser, mailed):
    (plain, _), engine, occurrence_id = mailed
    [link] = [word for word in plain.split() if "/freigabe/" in word]
    assert len(link.split("/freigabe/", 1)[1]) < 30
    # Two windows open the link (each its own cookies): both show the page and the form.
    first, second = (browser.new_page(viewport={"width": 390, "height": 900})
                     for _ in range(2))
    try:
        for page in (first, second):
            response = page.goto(link)
            assert response.status == 200
            assert page.get_by_role("heading", name="Freigabe erbeten: Testaufruf t-labels"
                                    ).is_visible()
            assert page.get_by_text("Sehr geehrte Frau Bürgermeisterin Akdeniz, bitte "
                                    "prüfen Sie").is_visible()
        with first.expect_navigation() as decided:
            first.get_by_role("button", name="Freigeben").click()
        assert decided.value.status == 200
        assert first.get_by_role("heading", name="Danke!").is_visible()
        assert "freigegeben" in first.content()
        with second.expect_navigation() as late:
            second.get_by_role("button", name="Ablehnen").click()
        assert late.value.status == 409
        assert second.get_by_role("heading", name="Bereits entschieden").is_visible()
        again = first.goto(link)
        assert again.status == 409
    finally:
        first.close()
        second.close()
    with store.session_scope(engine) as session:
        decided_requests = [(r.person_id, r.status)
                            for r in store.approval_requests(session,
                                                             occurrence_id=occurrence_id)
                            if r.status != "pending"]
    assert decided_requests == [("akdeniz", "approved")]
