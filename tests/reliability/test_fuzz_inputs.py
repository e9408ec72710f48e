"""Bad input: arbitrary template text, template sandbox escapes and resource bombs, and
garbage sent to the approval page (tokens, form bodies, headers).

Beyond tests/catalog/test_fuzz.py (garbled campaign *files*) and
tests/approval/test_approval_page.py (random tokens and form fields with a wrong CSRF
token), this fuzzes the template *text* itself, the escapes people try against Jinja,
and form bodies that pass the CSRF check and reach the decision; and it sends raw bytes
to a real uvicorn server. Never a traceback, never a 500, never Python's internals in
a post or a page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from newsroom import approval, store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.validation import ValidationReport, load_catalog
from newsroom.cli import cli
from newsroom.errors import RenderError
from newsroom.rendering.render import render_occurrence
from newsroom.settings import Settings
from newsroom.signing import Signer
from newsroom.sync import sync_catalog
from newsroom.web import create_web_app

SEED = Path(__file__).resolve().parents[2] / "campaigns"
TODAY = date(2026, 12, 1)
NOW = datetime.now(UTC)
# What must never reach a post, a page or an error message: Python's own descriptions.
INTERNALS = re.compile(r"<(function|class|built-in|bound method|module|TemplateReference)\b|"
                       r" object at 0x|__globals__|__builtins__|\bTraceback \(most recent")

CAMPAIGN = """\
id: fuzz
title: Fuzz
topic: Sport
kind: sports_day
requested_by: {{portfolio: sport}}
approval:
  approvers:
    - portfolio: sport
  mode: one
  deadline: "2027-06-02 12:00"
  on_timeout: cancel
slots:
  - at: "2027-06-04 07:30"
    channels: [mastodon, bluesky, telegram]
content:
  text: {text}
  link: https://www.darmstadt.example.org/fuzz
  hashtags: [Trikottag]
  variables:
    verein: SV Darmstadt 98
"""

# --- templates ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("templates") / "campaigns"
    for part in ("registry", "templates", "images"):
        shutil.copytree(SEED / part, root / part)
    return root


def validate_template(root: Path, text: str) -> ValidationReport:
    """Validate a campaign whose text is ``text``; every issue well-formed, no internals."""
    (root / "fuzz.yaml").write_text(CAMPAIGN.format(text=json.dumps(text)), encoding="utf-8")
    report = load_catalog(root, today=TODAY)  # must not raise
    for issue in report.issues:
        assert issue.file and issue.message.strip(), issue
        assert issue.line >= 1 or issue.message.startswith(("registry", "no such")), issue
        for found in INTERNALS.finditer(issue.format()):  # unless quoting the template
            assert found.group(0) in text, issue.format()
    if report.ok and report.catalog is not None:
        for post in render_occurrence(report.catalog, "fuzz", date(2027, 6, 4)):
            for found in INTERNALS.finditer(post.text):  # unless the text says so itself
                assert found.group(0) in text, post.text[:300]
    return report


JINJA_PIECES = [
    "{{", "}}", "{%", "%}", "{#", "#}", " ", "\n", "title", "link", "hashtags", "verein",
    "signatories_text", "date", "datum", "year", "x", "|", "|upper", "|datum('MMMM')",
    "|join_de", "|attr('__class__')", "|attr('format')", "|format(1)", "|center(99)",
    ".__class__", ".__mro__", "['__globals__']", ".format", "()", "(1)", "[0]", "*", "**",
    "%", "~", "+", " for i in range(3) ", " endfor ", " if x ", " endif ", " else ",
    " set y = ", " macro m() ", " endmacro ", "m()", " raw ", " endraw ", "self", "cycler",
    "lipsum", "namespace", "joiner", "range", "dict", "loop", "'", '"', "10**9", "9", "-1",
    "'a'", "ä", "🎉", "\\", "{{ title }}", "{% if true %}ja{% endif %}",
]
TEMPLATE_TEXT = st.one_of(
    st.lists(st.sampled_from(JINJA_PIECES), max_size=25).map("".join),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=200),
    st.lists(st.one_of(st.sampled_from(JINJA_PIECES), st.text(max_size=5)),
             max_size=20).map("".join),
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=TEMPLATE_TEXT)
def test_any_template_text_gives_issues_never_a_traceback(template_root: Path,
                                                          text: str) -> None:
    validate_template(template_root, text)


def test_json_style_surrogate_escapes_in_a_campaign_file(template_root: Path) -> None:
    """YAML reads "\\ud83c\\udf89" as two half characters; they made the validator crash."""
    path = template_root / "fuzz.yaml"
    path.write_text(CAMPAIGN.format(text='"Trikottag \\ud83c\\udf89 {{ title }}"'),
                    encoding="utf-8")
    report = load_catalog(template_root, today=TODAY)
    assert report.ok, [i.format() for i in report.issues]
    (post, *_) = render_occurrence(report.catalog, "fuzz", date(2027, 6, 4))
    assert post.text.startswith("Trikottag 🎉 Fuzz")
    path.write_text(CAMPAIGN.format(text='"Trikottag \\ud83c allein"'), encoding="utf-8")
    report = load_catalog(template_root, today=TODAY)
    (issue,) = [i for i in report.errors if i.file.endswith("fuzz.yaml")]
    assert issue.line == 16 and "half a character" in issue.message and issue.hint


@pytest.mark.parametrize("text", ["{% if false %}Text{% endif %}", "   ",
                                  "{% set f = ''.format %}{{ f('{0.__class__}', title) }}"])
def test_a_template_that_prints_nothing_is_refused(template_root: Path, text: str) -> None:
    report = validate_template(template_root, text)
    messages = [i.message for i in report.errors if i.file.endswith("fuzz.yaml")]
    assert messages and all("is empty" in m for m in messages), messages


# Each: a template that tries to get out of the sandbox, or to exhaust the machine.
ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ '{0.__class__}'.format(title) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(title) }}",
    "{% set f = '{0.__class__}'.format %}{{ f(title) }}",
    "{{ title|attr('__class__') }}",
    "{{ title|attr('format') }}",
    "{{ ('{0.__class__}'|attr('format'))(title) }}",
    "{{ title.format_map }}",
    "{{ title.upper }}",
    "{{ '%s' % title.__class__ }}",
    "{{ title|format('{0.__class__}') }}",
    "{{ date.__class__ }}",
    "{{ date.replace.__self__ }}",
    "{{ hashtag_list.pop() }}",
    "{{ hashtag_list.append(1) }}",
    "{{ range.__init__ }}",
    "{{ dict.__base__ }}",
    "{{ loop }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../newsroom/settings.py' %}",
    "{% import 'os' as os %}",
    "{% extends '/etc/hostname' %}",
    # Resource bombs: far beyond any post.
    "{{ 'x' * 10**10 }}",
    "{{ [1] * 10**9 }}",
    "{{ 7 ** 1000000000 }}",
    "{{ '%*s' % (10**9, title) }}",
    "{{ '%.999999f' % 1 }}",
    "{{ title|center(10**10) }}",
    "{{ title.center(10**10) }}",
    "{{ title|indent(10**9) }}",
    "{{ title.ljust(10**10) }}",
    "{{ ('x' * 1000)|replace('x', 'x' * 1000) }}",
    "{{ ('x' * 1000).replace('x', 'x' * 1000) }}",
    "{{ range(10**9)|list }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    # Loops that print nothing but run for hours: stopped by the render deadline.
    "{% set xs = range(3000)|list %}{% for a in xs %}{% for b in xs %}{% for c in xs %}"
    "{% endfor %}{% endfor %}{% endfor %}{{ title }}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
]
REFUSALS = ("template tries something templates may not do", "undefined variable",
            "template failed while rendering", "template error", "template syntax error",
            "template file", "calls itself without end", "not found")


@pytest.mark.parametrize("text", ESCAPES)
def test_sandbox_escapes_and_bombs_are_refused_with_a_clear_error(template_root: Path,
                                                                  text: str) -> None:
    started = time.monotonic()
    report = validate_template(template_root, text)
    assert time.monotonic() - started < 20, "refused, but only after a long time"
    errors = [i for i in report.errors if i.file.endswith("fuzz.yaml")]
    assert errors, f"{text!r} was accepted"
    for issue in errors:
        assert issue.field.startswith("content"), issue.format()
        assert any(r in issue.message for r in REFUSALS), issue.format()
        assert issue.hint, issue.format()  # says what to do


@pytest.mark.parametrize(("text", "shown"), [
    ("{{ '{:,}'.format(1500000) }} Besucher", "1,500,000 Besucher"),
    ("{{ 2 ** 20 }} {{ '-' * 20 }} {{ '%05d' % 7 }}", "1048576 -------------------- 00007"),
    ("{{ title|center(12) }}|{{ 'x'.rjust(3) }}", "Fuzz    |  x"),
    ("{{ year * 1000 }} {{ range(3)|join(',') }}", "2027000 0,1,2"),
])
def test_the_guards_leave_ordinary_templates_alone(template_root: Path, text: str,
                                                   shown: str) -> None:
    report = validate_template(template_root, text)
    assert report.ok, [i.format() for i in report.issues]
    (post, *_) = render_occurrence(report.catalog, "fuzz", date(2027, 6, 4))
    assert post.text.strip().startswith(shown.strip()), post.text


def test_the_cli_refuses_an_escape_without_a_traceback(template_root: Path) -> None:
    text = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    (template_root / "fuzz.yaml").write_text(CAMPAIGN.format(text=json.dumps(text)),
                                             encoding="utf-8")
    runner = CliRunner()
    for args in (["validate", str(template_root / "fuzz.yaml")],
                 ["preview", "fuzz", "--on", "2027-06-04", "--catalog", str(template_root)]):
        result = runner.invoke(cli, args, env={"NEWSROOM_CATALOG_DIR": str(template_root)},
                               catch_exceptions=True)
        assert result.exit_code != 0, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, result.exception)
        assert "Traceback" not in result.output and not INTERNALS.search(result.output)
        assert "__globals__" in result.output or "may not" in result.output, result.output


def test_render_raises_only_render_errors(template_root: Path) -> None:
    """The publishing path renders too (without validation first): same refusals."""
    good = validate_template(template_root, "Trikottag! {{ title }}")
    assert good.ok and good.catalog is not None
    catalog = good.catalog
    source = catalog.campaign("fuzz")
    for text in ESCAPES:
        content = source.campaign.content.model_copy(update={"text": text})
        catalog.campaigns["fuzz"] = dataclasses.replace(
            source, campaign=source.campaign.model_copy(update={"content": content}))
        try:
            posts = render_occurrence(catalog, "fuzz", date(2027, 6, 4))
        except RenderError as exc:
            for found in INTERNALS.finditer(str(exc)):  # unless quoting the template
                assert found.group(0) in text, str(exc)
        else:
            raise AssertionError(f"{text!r} rendered: {[p.text[:80] for p in posts]}")


# --- the approval page -------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed_catalog() -> Catalog:
    report = load_catalog(SEED)
    assert report.catalog is not None and report.ok
    return report.catalog


@pytest.fixture
def page_engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'newsroom.db'}"
    store.upgrade_database(url)
    engine = store.make_engine(url)
    yield engine
    engine.dispose()


SIGNER = Signer("reliability-fuzz-secret-key-0123456789abcdef")
GATE_DAY = date(2027, 6, 4)
MANUAL_DAY = date(2030, 1, 1)


def open_gate(engine: Engine, catalog: Catalog, day: date) -> str:
    """The trikottag occurrence of ``day`` waiting for approval; the OB's link token."""
    posts = render_occurrence(catalog, "trikottag", date(2027, 6, 4))
    posts = [type(p)(**{**p.__dict__, "occurrence": day}) for p in posts]
    with store.session_scope(engine) as session:
        sync_catalog(session, catalog)
        occurrence = store.get_or_create_occurrence(
            session, campaign_id="trikottag", occurrence_date=day,
            first_publish_at=min(p.publish_at for p in posts))
        store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=posts)
        occurrence_id = occurrence.id
    approval.open_gate(engine, catalog, occurrence_id=occurrence_id, now=NOW)
    with store.session_scope(engine) as session:
        (request,) = [r for r in store.approval_requests(session, occurrence_id=occurrence_id)
                      if r.status != "void"]
    return approval.approval_link(SIGNER, request, "http://testserver").rsplit("/", 1)[1]


def check_page(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    assert not INTERNALS.search(response.text), response.text[:500]
    if response.headers.get("content-type", "").startswith("text/html"):
        assert 'lang="de"' in response.text


class PageClient:
    """A synchronous face on httpx's ASGI client (hypothesis runs sync tests only)."""

    def __init__(self, app) -> None:
        self.app = app

    def __enter__(self) -> PageClient:
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                        base_url="http://testserver")
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)


# Hundreds of fuzzed requests a minute from one client over one link: the rate limits
# (tested in tests/security) would answer most of them with 429 before the routes.
UNLIMITED = {f"rate_limit_{name}": "" for name in (
    "address", "address_posts", "link_views", "link_posts", "invitation_posts", "hooks")}


@pytest.fixture
def web_app(page_engine: Engine, seed_catalog: Catalog):
    return create_web_app(page_engine, seed_catalog, Settings(**UNLIMITED), signer=SIGNER)


# Hypothesis replays an example to shrink it and to check it fails the same way: an example
# must depend on nothing an earlier one did. So every example gets its own web app on its
# own copy of one database prepared before the first (a gate waiting for the OB, a manual
# post waiting for its owner); what it decides or breaks, the next never sees.


@dataclass(frozen=True)
class Prepared:
    database: Path
    gate_token: str  # the OB's approval link for the trikottag gate of GATE_DAY
    manual_token: str  # the WhatsApp owner's confirmation link of MANUAL_DAY


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, seed_catalog: Catalog) -> Prepared:
    database = tmp_path_factory.mktemp("prepared") / "newsroom.db"
    url = f"sqlite:///{database}"
    store.upgrade_database(url)
    engine = store.make_engine(url)
    try:
        gate_token = open_gate(engine, seed_catalog, GATE_DAY)
        manual_token = manual_link(engine, seed_catalog, MANUAL_DAY)
    finally:
        engine.dispose()
    return Prepared(database, gate_token, manual_token)


@contextmanager
def fresh_app(prepared: Prepared, catalog: Catalog) -> Iterator[PageClient]:
    """A client of a new web app on a new copy of the prepared database."""
    with tempfile.TemporaryDirectory() as folder:
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{prepared.database}{suffix}").exists():
                shutil.copyfile(
                    f"{prepared.database}{suffix}", Path(folder) / f"newsroom.db{suffix}"
                )
        engine = store.make_engine(f"sqlite:///{Path(folder) / 'newsroom.db'}")
        try:
            app = create_web_app(engine, catalog, Settings(**UNLIMITED), signer=SIGNER)
            with PageClient(app) as client:
                yield client
        finally:
            engine.dispose()


EXAMPLES = settings(deadline=None,  # real requests and a database: a busy machine is slow
                    suppress_health_check=[HealthCheck.too_slow])


FORM_TEXT = st.one_of(st.text(max_size=40), st.sampled_from(
    ["approve", "reject", "request_changes", "APPROVE", "approve ", "approve\x00", "",
     "ápprove", "approve&decision=reject", "null", "0", "[]", "{}", "%00", "%ZZ"]))
BODIES = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.lists(st.tuples(st.sampled_from(["decision", "comment", "csrf", "x", "", "decision[]",
                                        "comment\x00", "ü"]), FORM_TEXT),
             max_size=15).map(lambda pairs: "&".join(
                 f"{quote(k)}={quote(v)}" for k, v in pairs).encode()),
    st.sampled_from([b"%", b"%%%", b"=&=&=", b"a=%E2%82", b"decision=%FF%FE", b"&&&&",
                     b"x" * 20000, b"comment=" + b"a" * 17000,
                     b"decision=approve&" * 2000]),
)
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=latin-1",
    "multipart/form-data; boundary=x", "application/json", "text/plain", "",
    "application/x-www-form-urlencoded; boundary=\x7f", "APPLICATION/X-WWW-FORM-URLENCODED",
])


@settings(EXAMPLES, max_examples=60)
@given(body=BODIES, content_type=CONTENT_TYPES)
def test_garbage_form_bodies_never_fail(prepared: Prepared, seed_catalog: Catalog,
                                        body: bytes, content_type: str) -> None:
    token = prepared.gate_token
    with fresh_app(prepared, seed_catalog) as client:
        check_page(client.get(f"/freigabe/{token}"))
        response = client.post(f"/freigabe/{token}", content=body,
                               headers={"content-type": content_type})
    check_page(response)


@settings(EXAMPLES, max_examples=40)
@given(decision=FORM_TEXT, comment=st.one_of(
    st.text(max_size=300), st.text(min_size=1990, max_size=2100),
    st.sampled_from(["\x00" * 50, "<script>alert(1)</script>", "{{ 7*7 }}", "\u202e\u2066",
                     "ä" * 2000, "👩‍👩‍👧" * 300, "\r\n" * 500])),
       extra=st.dictionaries(st.text(max_size=8), st.text(max_size=30), max_size=4))
def test_a_valid_csrf_with_garbled_fields_never_fails(
        prepared: Prepared, seed_catalog: Catalog, decision: str, comment: str,
        extra: dict[str, str]) -> None:
    """Past the CSRF check, right into the decision: an undecided gate each time, any fields."""
    token = prepared.gate_token
    with fresh_app(prepared, seed_catalog) as client:
        page = client.get(f"/freigabe/{token}")
        check_page(page)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {**extra, "csrf": csrf, "decision": decision, "comment": comment}
        response = client.post(f"/freigabe/{token}", data=form)
    check_page(response)
    if response.status_code == 200:
        assert decision in ("approve", "reject", "request_changes")
        assert "<script>" not in response.text  # the comment is escaped
    else:  # 413: the form's body passed its 16 KiB (a long comment of emoji, %-encoded)
        assert response.status_code in (400, 413), response.status_code


def same_bytes(token: str, real: str) -> bool:
    """Whether ``token`` decodes to the signed link ``real`` (base64 has spare bits)."""
    def decode(value: str) -> list[bytes]:
        return [base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
                for part in value.split(".")]
    try:
        return decode(token) == decode(real)
    except (ValueError, binascii.Error):
        return False


def manual_link(engine: Engine, catalog: Catalog, day: date) -> str:
    """A post for the WhatsApp channel (manual), published: its owner's confirmation token."""
    from newsroom.posts import RenderedPost
    from newsroom.publishing import manual_confirm_url, publish_post

    post = RenderedPost(campaign_id="trikottag", occurrence=day, channel="whatsapp",
                        channel_type="manual", text="Heute ist Trikottag! #Trikottag",
                        publish_at=datetime(day.year, day.month, day.day, 8, tzinfo=UTC),
                        title="Trikottag")
    with store.session_scope(engine) as session:
        sync_catalog(session, catalog)
        occurrence = store.get_or_create_occurrence(
            session, campaign_id="trikottag", occurrence_date=day,
            first_publish_at=post.publish_at)
        (row,) = store.store_rendered_posts(session, occurrence_id=occurrence.id, posts=[post])
        post_id = row.id
    sent: list[str] = []

    class Owner:
        def notify(self, tag, subject, body_text, body_html=None, *, attachments=()):
            sent.append(body_text)
            return True

    async def publish():
        async with httpx.AsyncClient() as client:
            return await publish_post(
                engine=engine, post_id=post_id, account=catalog.accounts["whatsapp"],
                client=client, notifier=Owner(), signer=SIGNER,
                confirm_url_for=manual_confirm_url("http://testserver"))

    outcome = asyncio.run(publish())
    assert outcome.status == "awaiting_manual", outcome
    return re.search(r"http://testserver/manual/([A-Za-z0-9_.-]+)", sent[0]).group(1)


@settings(EXAMPLES, max_examples=30)
@given(url=st.one_of(
    st.text(max_size=80),
    st.builds("{}://{}{}".format, st.sampled_from(["http", "https", "HTTPS", "ftp", ""]),
              st.sampled_from(["[", "[::1", "[zz]", "[::1]", "a b", "\x00x", "höst.de",
                               "x" * 3000, "", "www.facebook.com", "@", ":99999"]),
              st.text(max_size=20))))
@example(url="http://[")
@example(url="https://[zz]/x")
@example(url="http://\x00x")
def test_manual_confirmation_with_any_address_never_fails(prepared: Prepared,
                                                          seed_catalog: Catalog,
                                                          url: str) -> None:
    """Past the CSRF check of /manual/{token}: the optional address of the post."""
    token = prepared.manual_token
    with fresh_app(prepared, seed_catalog) as client:
        page = client.get(f"/manual/{token}")
        check_page(page)
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        response = client.post(f"/manual/{token}", data={"csrf": csrf, "url": url})
    check_page(response)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 200:
        assert not url.strip() or url.strip().lower().startswith(("http://", "https://"))


TOKENS = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"[A-Za-z0-9_-]{0,300}\.[A-Za-z0-9_-]{0,60}", fullmatch=True),
    st.sampled_from(["", ".", "..", "../..", "%2e%2e%2f", "a" * 5000, "." * 4097,
                     "eyJhbGciOiJub25lIn0.e30.", "\x00", "%00", "%FF%FE", "ä.ö", "null"]),
)


# Every route that takes a token, each with the garbled one ({t}).
ROUTES = (("GET", "/freigabe/{t}"), ("POST", "/freigabe/{t}"),
          ("GET", "/freigabe/{t}/bild/mastodon/0"),
          ("GET", "/freigabe/{t}/bild/{t}/99999999999999999999"),
          ("GET", "/manual/{t}"), ("POST", "/manual/{t}"),
          ("GET", "/manual/{t}/bild/-1"), ("POST", "/hooks/alert"),
          ("GET", "/anfrage/{t}"), ("POST", "/anfrage/{t}"),
          ("GET", "/anfrage/antwort/{t}"), ("POST", "/anfrage/antwort/{t}"))


@settings(EXAMPLES, max_examples=60)
@given(token=TOKENS, mangle=st.sampled_from(["as-is", "truncate", "flip", "append"]),
       cut=st.integers(1, 80))
def test_garbled_tokens_on_every_route_never_fail(prepared: Prepared, seed_catalog: Catalog,
                                                  token: str, mangle: str, cut: int) -> None:
    real = prepared.gate_token
    if mangle != "as-is":  # start from a real link and damage it
        token = {"truncate": real[:-cut], "append": real + token[:cut],
                 "flip": real[:cut] + ("A" if real[cut:cut + 1] != "A" else "B")
                 + real[cut + 1:]}[mangle]
    path = quote(token, safe="")
    with fresh_app(prepared, seed_catalog) as client:
        for method, route in ROUTES:
            url = route.format(t=path)
            bearer = f"Bearer {token[:100]}".encode()
            response = client.request(method, url, data={"csrf": token[:50]},
                                      headers={"authorization": bearer})
            check_page(response)
            if mangle != "as-is" and url.startswith("/freigabe/") and "bild" not in url:
                if response.status_code == 200:  # only the same bytes in another spelling
                    assert same_bytes(token, real), token
                else:
                    assert response.status_code in (400, 403, 404, 409, 410)


# --- raw bytes to a real server ----------------------------------------------------------


@pytest.fixture
def real_server(web_app) -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web_app, host="127.0.0.1", port=port,
                                           lifespan="off", log_level="warning",
                                           log_config=None, ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the web app did not start"
        time.sleep(0.01)
    yield port
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        try:
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


RAW_REQUESTS = [
    b"GET /freigabe/\xff\xfe\x00abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /freigabe/" + b"A" * 60000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /freigabe/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
    b"\r\nContent-Length: 5\r\nConnection: close\r\n\r\n\xff\xfe\x00\x01\x02",
    b"POST /freigabe/abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n"
    b"4\r\na=b&\r\nZZ\r\n",
    b"POST /freigabe/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\nshort",
    b"GET /freigabe/abc HTTP/1.1\r\nHost: x\r\nCookie: newsroom_csrf=" + b"\xff" * 300
    + b"\r\nConnection: close\r\n\r\n",
    b"GET /freigabe/abc HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000
    + b"\r\nConnection: close\r\n\r\n",
    b"BREW /freigabe/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"GET /freigabe/%ZZ%00%C0%AF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
]


@pytest.mark.parametrize("request_bytes", RAW_REQUESTS,
                         ids=[f"raw{n}" for n in range(len(RAW_REQUESTS))])
def test_raw_garbage_over_http_never_fails(real_server: int, request_bytes: bytes) -> None:
    answer = raw(real_server, request_bytes)
    if not answer:  # the server may close a connection it cannot parse
        return
    status_line = answer.split(b"\r\n", 1)[0]
    status = int(status_line.split()[1])
    assert status < 500, answer[:300]
    assert not INTERNALS.search(answer.decode("latin-1")), answer[:500]
