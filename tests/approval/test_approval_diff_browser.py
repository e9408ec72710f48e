"""The approval page's change diff in real Chromium: word-level, labelled, lines kept, and no
horizontal scroll at a phone's 390 px and a 1,000 px window (the page's strict CSP on)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from approval_testkit import DAY, Outbox, store_posts
from webkit import serving

from newsroom import approval, store
from newsroom.rendering.render import render_occurrence
from newsroom.settings import Settings
from newsroom.web import create_web_app

pytestmark = pytest.mark.slow
LONG_URL = "https://www.darmstadt.de/aktuelles/" + "gemeinsamer-aufruf-" * 12 + "?quelle=mail"
LONG_LINE = "Darmstadt " * 80  # one paragraph far wider than any window


def _edited(posts, text):
    return [type(p)(**{**p.__dict__, "text": text(p.text)}) for p in posts]


@pytest.fixture
def diff_link(sqlite_engine, catalog, signer):
    """A gate asked again after an edit of one word; akdeniz's link to the new version."""
    occurrence_id = store_posts(sqlite_engine, catalog, "t-quorum")
    rendered = render_occurrence(catalog, "t-quorum", DAY)

    def old_text(text: str) -> str:
        return f"{text}\n{LONG_LINE.strip()}\n{LONG_URL}"

    with store.session_scope(sqlite_engine) as session:
        store.store_rendered_posts(session, occurrence_id=occurrence_id,
                                   posts=_edited(rendered, old_text))
    now = datetime.now(UTC)
    outbox = Outbox()
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=now)
    app = create_web_app(sqlite_engine, catalog, Settings(), signer=signer)
    with serving(app) as base:
        approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                                  notifier=outbox, signer=signer, base_url=base, now=now)
        token = outbox.to("benz")[0]["text"].split("/freigabe/")[1].split()[0]
        approval.decide(sqlite_engine, catalog, token=token, decision="request_changes",
                        comment="Bitte kürzer", signer=signer, now=now)
        with store.session_scope(sqlite_engine) as session:
            store.store_rendered_posts(session, occurrence_id=occurrence_id, posts=_edited(
                rendered, lambda t: old_text(t).replace("Gemeinsamer", "Kurzer")))
        approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=now)
        approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                                  notifier=outbox, signer=signer, base_url=base, now=now)
        link = outbox.to("akdeniz")[-1]["text"].split("/freigabe/")[1].split()[0]
        yield f"{base}/freigabe/{link}"


@pytest.mark.parametrize("width", [390, 1000])
def test_diff_is_word_level_and_fits_the_window(browser, diff_link, width):
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    try:
        response = page.goto(diff_link)
        assert response.status == 200
        assert "geänderte Fassung" in page.content()
        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], widths
        diffs = page.locator(".diff")
        assert diffs.count() == 2  # Bluesky and Mastodon
        for index in range(diffs.count()):
            diff = diffs.nth(index)
            # exactly the changed word, labelled for screen readers
            assert diff.locator("del").all_text_contents() == ["entfernt: Gemeinsamer"]
            assert diff.locator("ins").all_text_contents() == ["eingefügt: Kurzer"]
            style = diff.evaluate("""element => {
                const del = element.querySelector('del'), ins = element.querySelector('ins');
                const label = element.querySelector('.visually-hidden').getBoundingClientRect();
                return [getComputedStyle(element).whiteSpace,
                        getComputedStyle(del).textDecorationLine,
                        getComputedStyle(ins).textDecorationLine,
                        label.width <= 1 && label.height <= 1,
                        element.scrollWidth <= element.clientWidth];
            }""")
            # lines kept; struck and underlined, not colour alone; label hidden; no scroll
            assert style == ["pre-wrap", "line-through", "underline", True, True], style
            lines = diff.inner_text().split("\n")
            assert any(line.startswith("Es rufen auf:") for line in lines), lines
            # the long URL is all there, wrapped onto several lines of the box
            url_lines = diff.evaluate("""(element, url) => {
                const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
                let node;
                while ((node = walker.nextNode())) {
                    const at = node.textContent.indexOf(url);
                    if (at < 0) continue;
                    const range = document.createRange();
                    range.setStart(node, at);
                    range.setEnd(node, at + url.length);
                    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
                }
                return 0;
            }""", LONG_URL)
            assert url_lines > 1, url_lines
        assert not [e for e in errors if "Content Security Policy" in e], errors
    finally:
        page.close()
