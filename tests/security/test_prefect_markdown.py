"""What people typed reaches Prefect's Markdown as text: no link, image, autolink or HTML.

The security test found a requester's Markdown image (on an outside host) fetched by the
admin's browser in the Prefect UI, and a fake "Jetzt freigeben" link rendered. Here the
hostile inputs go through the real builders of what Newsroom writes into Prefect (the gate
summary, the request summary, the publication report, newsroom.markdown itself) and then

- through two real Markdown renderers (markdown-it-py, CommonMark; Python-Markdown): no
  ``<a>``, ``<img>`` or any other HTML element than text containers results, and the
  visible text is what was typed;
- past the patterns by which the UI's renderer (marked, GFM) links bare URLs and e-mail
  addresses: none is left unescaped;
- (slow) into the real Prefect UI in Chromium, against the session's Prefect server with
  authentication on: the artifact shows the text, has no link or image, and the browser
  asks no outside host. The same Markdown unescaped, as a control, does render the image
  and the link there, so the check can fail.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import httpx
import markdown as python_markdown
import pytest
from markdown_it import MarkdownIt

from newsroom.approval import GateOutcome, GateStatus, gate_summary_markdown
from newsroom.catalog.validation import load_catalog
from newsroom.delivery import DeliveryReport
from newsroom.markdown import md_link, md_quote, md_text
from newsroom.posts import MediaItem, RenderedPost
from tasks.office_requests import _summary

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "evil.example"

HOSTILE = [
    f"![Logo](https://{OUTSIDE}/pixel.png)",
    f"[Jetzt freigeben](https://{OUTSIDE}/freigeben)",
    f"[Jetzt freigeben][1]\n\n[1]: https://{OUTSIDE}/ref",
    f"<https://{OUTSIDE}/autolink>",
    f"https://{OUTSIDE}/bare-url und www.{OUTSIDE}/www",
    f"schreiben Sie an chef@{OUTSIDE} oder mailto:chef@{OUTSIDE}",
    f'<img src="https://{OUTSIDE}/raw.png" onerror="alert(1)">',
    f"<a href='https://{OUTSIDE}/'>Jetzt freigeben</a>",
    "<script>alert(1)</script><iframe src=//x></iframe>",
    "`code` und ``mehr`` ```\nblock\n```",
    "&lt;img src=x&gt; &#60;b&#62; &amp;",
    "# Überschrift\n===\n---\n> Zitat\n1. Liste\n- Punkt\n| a | b |\n|---|---|",
    f"Text\n\n    eingerückt ![x](https://{OUTSIDE}/indented.png)",
    f"![](//{OUTSIDE}/protocol-relative.png) [x](javascript:alert(1))",
    f"\\![escaped](https://{OUTSIDE}/backslash.png) \\\\[x](https://{OUTSIDE}/double)",
    f"[![nested](https://{OUTSIDE}/n.png)](https://{OUTSIDE}/n)",
    "*fett* _kursiv_ ~~durch~~ {{ contact }} {% if true %}x{% endif %}",
    f"\u202eneblegierf tzteJ\u202c \x00\x1b[31m ![a](https://{OUTSIDE}/bidi.png)",
]

# Elements that only hold text; anything else (a, img, script, code, table …) is a finding.
TEXT_ELEMENTS = {"p", "blockquote", "ul", "ol", "li", "h1", "h2", "h3", "strong", "em",
                 "br", "hr", "table", "thead", "tbody", "tr", "th", "td"}
# How marked (GFM) finds links in plain text: URLs with a scheme, www., e-mail addresses.
AUTOLINKS = [re.compile(r"(?:https?|ftp)://", re.I), re.compile(r"\bwww\.", re.I),
             re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9_-]+\.[A-Za-z0-9]"),
             re.compile(r"mailto:", re.I)]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _render(source: str) -> list[tuple[str, str, _Elements]]:
    out = []
    for name, html in (("markdown-it", MarkdownIt("commonmark").enable("table").render(source)),
                       ("python-markdown", python_markdown.markdown(source,
                                                                    extensions=["tables"]))):
        parser = _Elements()
        parser.feed(html)
        out.append((name, html, parser))
    return out


def _assert_inert(source: str) -> None:
    for name, html, parsed in _render(source):
        found = [t for t, _ in parsed.tags if t not in TEXT_ELEMENTS]
        assert not found, f"{name} made {found} of:\n{source}\n→ {html}"
        assert OUTSIDE not in " ".join(str(a) for _, a in parsed.tags), (name, html)
    for pattern in AUTOLINKS:
        assert not pattern.search(source), f"{pattern.pattern} would link in:\n{source}"


def _visible(html_text: list[str]) -> str:
    return " ".join(" ".join(html_text).split())


@pytest.mark.parametrize("hostile", HOSTILE)
def test_typed_text_renders_as_the_same_text_and_nothing_else(hostile: str) -> None:
    inline = md_text(hostile)
    _assert_inert(inline)
    quoted = "\n".join(md_quote(hostile))
    _assert_inert(quoted)
    expected = " ".join("".join(c for c in hostile if c.isprintable() or c in "\n\t")
                        .replace("\u202e", "").replace("\u202c", "").split())
    # CommonMark (as marked in the UI) hides every backslash escape; Python-Markdown
    # knows fewer escapes and would show some backslashes: text only, still no element.
    name, _, parsed = _render(inline)[0]
    assert _visible(parsed.text) == expected, name


@pytest.mark.parametrize("hostile", HOSTILE[:9])
def test_the_renderers_do_render_the_raw_input(hostile: str) -> None:
    """The control: unescaped, the same input does make links, images or HTML (in at least
    one renderer, or by the UI's autolink patterns) — so the checks above can fail."""
    made = any(t not in TEXT_ELEMENTS for _, _, parsed in _render(hostile)
               for t, _ in parsed.tags)
    linked = any(p.search(hostile) for p in AUTOLINKS)
    assert made or linked


def test_a_link_newsroom_writes_itself_stays_a_link_only_when_it_is_http() -> None:
    assert md_link("live post", "https://social.example/@stadt/1") == (
        "[live post](<https://social.example/@stadt/1>)")
    for bad in ("javascript:alert(1)", "https://x.example/a b", "https://x.example/<img>",
                "data:text/html,<b>x</b>", "https://x.example/\n![i](https://x.example/i)"):
        written = md_link("live post", bad)
        for _, html, parsed in _render(written):
            assert not [t for t, _ in parsed.tags if t not in TEXT_ELEMENTS], html
    # An http URL with Markdown in it is one link to that URL, never an image.
    odd = f"https://{OUTSIDE}/x)![i](https://{OUTSIDE}/i"
    for _, html, parsed in _render(md_link("live post", odd)):
        assert [t for t, _ in parsed.tags if t not in TEXT_ELEMENTS] == ["a"], html


@pytest.fixture(scope="module")
def catalog():
    report = load_catalog(ROOT / "campaigns")
    assert report.catalog is not None, [i.format() for i in report.errors]
    return report.catalog


def _hostile_request() -> tuple[SimpleNamespace, list[SimpleNamespace]]:
    evil = " ".join(HOSTILE)
    request = SimpleNamespace(
        id=7, title=HOSTILE[1], topic=HOSTILE[0], desired_from=date(2027, 6, 4),
        desired_to=None, desired_time="10:00", channels=["mastodon"],
        contact_name=HOSTILE[6], contact_email=f"chef@{OUTSIDE}",
        hashtags=["Sport"], links=[f"https://{OUTSIDE}/x/{{% endraw %}}{{{{7*7}}}}",
                                   f"https://{OUTSIDE}/y)![i](https://{OUTSIDE}/i.png"],
        notes=HOSTILE[7], answer=HOSTILE[4], question=HOSTILE[3], text=evil)
    images = [SimpleNamespace(position=1, filename=f"![f](https://{OUTSIDE}/f.png).jpg",
                              alt=HOSTILE[0])]
    return request, images


def _hostile_summaries(catalog) -> dict[str, str]:
    request, images = _hostile_request()
    when = datetime(2027, 6, 4, 8, 0, tzinfo=UTC)
    post = RenderedPost(campaign_id="trikottag", occurrence=when.date(), channel="mastodon",
                        channel_type="mastodon", publish_at=when, text="\n".join(HOSTILE),
                        media=(MediaItem(source="x.jpg", alt=" ".join(HOSTILE)),))
    status = GateStatus(occurrence_id=1, campaign_id="trikottag", occurrence_date=when.date(),
                        bundle_hash="ab" * 32, mode="one", needed=1, deadline=when,
                        asked=("benz", HOSTILE[1]), approved=(), rejected=(),
                        changes_requested=(), pending=("benz",),
                        outcome=GateOutcome.PENDING, reason=HOSTILE[5],
                        decided_by_admin=HOSTILE[0])
    report = DeliveryReport(occurrence_id=1, campaign_id="trikottag",
                            occurrence_date=when.date(),
                            published={"mastodon": f"javascript:x//{OUTSIDE}/![i](//{OUTSIDE}/i)",
                                       "website": "https://darmstadt.example/news/1"},
                            failed={"bluesky": HOSTILE[6] + HOSTILE[1]},
                            skipped={HOSTILE[0]: HOSTILE[2]})
    return {"request": _summary(request, images, HOSTILE[7]),
            "gate": gate_summary_markdown(status, catalog, [post]),
            "report": report.markdown(catalog)}


def test_what_newsroom_writes_into_prefect_has_no_link_image_or_html(catalog) -> None:
    for name, source in _hostile_summaries(catalog).items():
        for renderer, html, parsed in _render(source):
            tags = [t for t, _ in parsed.tags if t not in TEXT_ELEMENTS]
            if name == "report":  # the one link Newsroom writes: the live post's URL
                links = [a.get("href") for t, a in parsed.tags if t == "a"]
                assert links == ["https://darmstadt.example/news/1"], (renderer, html)
                tags = [t for t in tags if t != "a"]
            assert not tags, (name, renderer, html)
            assert OUTSIDE not in " ".join(str(a) for _, a in parsed.tags), (name, html)
            assert "Jetzt freigeben" in " ".join(parsed.text), name
        unescaped = [p.pattern for p in AUTOLINKS if p.search(source.replace(
            "https://darmstadt.example/news/1", ""))]
        assert not unescaped, (name, unescaped)


# --- the real Prefect UI ---------------------------------------------------------------


def _post_artifact(server, key: str, markdown_text: str) -> str:
    token = base64.b64encode(server.auth_string.encode()).decode()
    response = httpx.post(f"{server.api_url}/artifacts/", timeout=30,
                          headers={"Authorization": f"Basic {token}"},
                          json={"key": key, "type": "markdown", "data": markdown_text,
                                "description": md_text(HOSTILE[0])})
    response.raise_for_status()
    return response.json()["id"]


@pytest.mark.slow
def test_the_prefect_ui_shows_the_text_and_fetches_nothing_outside(prefect_server, browser,
                                                                   catalog) -> None:
    server = prefect_server
    escaped = _hostile_summaries(catalog)["request"]
    raw = (f"## Kontrolle\n\n![Logo](https://{OUTSIDE}/raw-pixel.png)\n\n"
           f"[Jetzt freigeben](https://{OUTSIDE}/raw-freigeben)\n")
    escaped_id = _post_artifact(server, "security-escaped", escaped)
    raw_id = _post_artifact(server, "security-raw", raw)
    base = server.api_url.removesuffix("/api")
    token = base64.b64encode(server.auth_string.encode()).decode()

    def visit(artifact_id: str) -> tuple[list[str], int, int, str]:
        context = browser.new_context()
        context.add_init_script(f"localStorage.setItem('prefect-password', '{token}')")
        asked: list[str] = []
        context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"),
                      lambda route: (asked.append(route.request.url), route.abort()))
        page = context.new_page()
        try:
            page.goto(f"{base}/artifacts/artifact/{artifact_id}")
            # The artifact's data and its description are each a rendered article.
            page.wait_for_function(
                "document.querySelectorAll('article.markdown-renderer').length >= 2",
                timeout=30_000)
            page.wait_for_timeout(500)  # images start loading once rendered
            articles = page.locator("article.markdown-renderer")
            return (asked, articles.locator("a").count(), articles.locator("img").count(),
                    "\n".join(articles.all_inner_texts()))
        finally:
            context.close()

    asked, links, images, text = visit(raw_id)
    assert images == 1 and links == 1, "the control must render in the UI"
    assert any(OUTSIDE in url for url in asked), asked

    asked, links, images, text = visit(escaped_id)
    assert (links, images) == (0, 0)
    assert not [url for url in asked if OUTSIDE in url], asked
    assert "Jetzt freigeben" in text and f"https://{OUTSIDE}/freigeben" in text
    assert "<img" in text  # the raw HTML is shown as text
