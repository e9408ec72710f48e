"""Secrets: the whole demo path with known, distinctive secret values configured, then a
search of every log and artifact for them. Zero hits.

Configured: NEWSROOM_SECRET_KEY (and the alert hook's token derived from it), every
channel credential (environment variables, and LinkedIn's as a Prefect Secret block),
the SMTP password in NEWSROOM_SMTP_URL (the mail server here requires AUTH), and an
apprise configuration (NEWSROOM_APPRISE_CONFIG) whose services carry the SMTP password
and a webhook token in a header.

Run: a campaign on eight channels through the approval e-mail, the approval page
(GET, POST) and publication on a real Prefect server with the Newsroom worker; then a
campaign whose every token is refused (401, SMTP 535), so the error paths log and alert.

Searched: every Python log record at DEBUG of every logger (newsroom, flows, prefect,
httpx, httpcore, uvicorn, apprise, …; only aiosmtpd's ``mail.log`` is left out: it is the
*receiving* mail server, which sees the login by design), stdout/stderr, the flow-run
logs, artifacts, flow and task runs (states, parameters), deployments, variables and
block documents read back through the Prefect API, every file in the data dir and the
Newsroom database file, every e-mail caught, the stand-ins' recorded requests and
their page, and every web page served. Each secret is searched as is, URL-encoded and
base64-encoded (as SMTP AUTH PLAIN/LOGIN would carry it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote
from uuid import UUID

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flow_testkit import ROOT, run_state, start_campaign, wait_for_state, write_campaign

from newsroom.channels.email import SmtpSettings
from newsroom.orchestration.stack import (
    MailCatcher,
    WebServer,
    WorkerThread,
    apply_deployments,
    free_port,
    run_async,
    text_of,
)
from newsroom.runtime import get_runtime, reset_runtimes
from newsroom.standins import StandinControl, running_standins
from newsroom.standins.config import StandinConfig
from newsroom.timeutil import BERLIN
from newsroom.web.hooks import hook_token

pytestmark = pytest.mark.slow

POOL = "newsroom-secrets"
APPROVER_MAIL = "buergermeisterin@example.org"  # Bürgermeisterin Akdeniz: kinder-jugend
LINK = re.compile(r"http://127\.0\.0\.1:\d+/freigabe/[A-Za-z0-9_\-\.]+")
CHANNELS = "[mastodon, bluesky, linkedin, facebook, threads, telegram, website, presse]"
PRESS = ("redaktion-echo@example.org", "redaktion-hr@example.org", "newsdesk@example.org")
HTTP_NETWORKS = ("mastodon", "bluesky", "linkedin", "facebook", "threads", "telegram", "cms")

# Distinctive values: each occurs nowhere unless leaked.
SECRET_KEY = "nrsk-Qx7v-SECRETKEY-9f3b1c5d7e-long-enough-for-hmac"
SMTP_USER = "newsroom-mailer"
SMTP_PASSWORD = "smtp-Qx7v-SMTPPASS-41d2"
MASTODON = "mstdn-Qx7v-TOKEN-a81f29"
BLUESKY_HANDLE = "darmstadt.standin.test"
BLUESKY_PASSWORD = "bsky-Qx7v-APPPW-77c3"
LINKEDIN = "lnkd-Qx7v-TOKEN-0b6e55"
META = "meta-Qx7v-TOKEN-3c9d01"
THREADS = "thrd-Qx7v-TOKEN-e4a7b2"
TELEGRAM = "9876543210:tg-Qx7v-BOTTOKEN-5f8a"
CMS = "cms-Qx7v-TOKEN-19bd44"
APPRISE_TOKEN = "appr-Qx7v-HOOKTOKEN-c0ffee"
SECRETS = {
    "NEWSROOM_SECRET_KEY": SECRET_KEY, "alert hook token": hook_token(SECRET_KEY),
    "SMTP password": SMTP_PASSWORD, "NEWSROOM_MASTODON_TOKEN": MASTODON,
    "Bluesky app password": BLUESKY_PASSWORD, "LinkedIn (Secret block)": LINKEDIN,
    "NEWSROOM_META_TOKEN": META, "NEWSROOM_THREADS_TOKEN": THREADS,
    "NEWSROOM_TELEGRAM_BOT_TOKEN": TELEGRAM, "the bot token's secret part":
    TELEGRAM.split(":", 1)[1], "NEWSROOM_CMS_TOKEN": CMS, "apprise webhook token":
    APPRISE_TOKEN,
}


def needles() -> dict[str, str]:
    """Every form a secret may take: as is, URL-encoded, base64 (SMTP AUTH)."""
    found: dict[str, str] = {}
    for name, value in SECRETS.items():
        found[value] = name
        found[quote(value, safe="")] = f"{name} (URL-encoded)"
        found[base64.b64encode(value.encode()).decode()] = f"{name} (base64)"
    plain = base64.b64encode(f"\0{SMTP_USER}\0{SMTP_PASSWORD}".encode()).decode()
    found[plain] = "SMTP AUTH PLAIN"
    return found


def hits(where: str, data: str | bytes) -> list[str]:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [f"{name} in {where}" for value, name in needles().items() if value in text]


# --- the parts ----------------------------------------------------------------------------


class AuthMailCatcher(MailCatcher):
    """The stack's mail catcher, but a login is required (and checked)."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.logins: list[bool] = []
        self._controller = Controller(self, hostname=self.host, port=self.port,
                                      authenticator=self._authenticate,
                                      auth_require_tls=False)
        self.refuse = False

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and not self.refuse
              and auth_data.login.decode() == SMTP_USER
              and auth_data.password.decode() == SMTP_PASSWORD)
        self.logins.append(ok)
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        return await super().handle_DATA(server, session, envelope)


class WebhookInbox(ThreadingHTTPServer):
    """Receives apprise's json:// alerts (the destination of the webhook token)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                inbox.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class Capture(logging.Handler):
    """Every log record of every logger, formatted with its exception and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("mail.log"):
            return  # the receiving mail server (aiosmtpd) sees the login by design
        try:
            text = self.format(record)
        except Exception as exc:  # noqa: BLE001 - keep what we can
            text = f"{record.name} {record.msg!r} {record.args!r} ({exc})"
        extra = {k: v for k, v in record.__dict__.items()
                 if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__}
        self.records.append(text + (f" {extra!r}" if extra else ""))


LOGGERS = ("", "newsroom", "flows", "tasks", "prefect", "httpx", "httpcore", "uvicorn",
           "uvicorn.error", "uvicorn.access", "apprise", "fastapi", "starlette", "asyncio")


@contextlib.contextmanager
def capturing_logs() -> Iterator[Capture]:
    capture = Capture()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger, level in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)


def apprise_config(path: Path, mail_port: int, webhook: str) -> Path:
    """One mailto service per person and office (tagged with its id), the office's
    alerts also to a webhook with a token in a header."""
    from newsroom.catalog.validation import load_catalog
    from newsroom.notify import ALERT_TAG, directory_addresses

    directory = load_catalog(ROOT / "campaigns").catalog.directory
    smtp = SmtpSettings(host="127.0.0.1", port=mail_port, mode=None, user=SMTP_USER,
                        password=SMTP_PASSWORD, sender="newsroom@darmstadt.example.org")
    lines = []
    for tag, address in sorted(directory_addresses(directory).items()):
        tags = f"{tag}, {ALERT_TAG}" if tag == directory.communications_office else tag
        lines.append(f"{tags}={smtp.apprise_url(address)}")
    lines.append(f"{ALERT_TAG}=json://{webhook}/alerts?+X-Newsroom-Token={APPRISE_TOKEN}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextlib.contextmanager
def secret_stack(root: Path) -> Iterator[SimpleNamespace]:
    config = StandinConfig(
        mastodon_tokens={MASTODON}, bluesky_accounts={BLUESKY_HANDLE: BLUESKY_PASSWORD},
        linkedin_tokens={LINKEDIN}, graph_tokens={META, THREADS}, telegram_bot_tokens={TELEGRAM},
        cms_tokens={CMS})
    webhook = WebhookInbox()
    webhook.thread.start()
    with running_standins(config) as standins_url, StandinControl(standins_url) as control, \
            pytest.MonkeyPatch.context() as env:
        catalog = root / "campaigns"
        shutil.copytree(ROOT / "campaigns", catalog)
        registry = catalog / "registry" / "channels.yaml"
        text = registry.read_text(encoding="utf-8").replace("http://127.0.0.1:8900",
                                                            standins_url)
        # LinkedIn's token only in a Prefect Secret block.
        text = text.replace("credential: {env: NEWSROOM_LINKEDIN_TOKEN, ",
                            "credential: {")
        registry.write_text(text, encoding="utf-8")
        mail = AuthMailCatcher(port=free_port()).start()
        web_port = free_port()
        smtp_url = (f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:"
                    f"{mail.port}?from=presse@darmstadt.example.org")
        settings = {
            "NEWSROOM_CATALOG_DIR": str(catalog), "NEWSROOM_DATA_DIR": str(root / "var"),
            "NEWSROOM_DATABASE_URL": f"sqlite:///{root / 'newsroom.db'}",
            "NEWSROOM_SMTP_URL": smtp_url, "NEWSROOM_WEB_BASE_URL": f"http://127.0.0.1:{web_port}",
            "NEWSROOM_SECRET_KEY": SECRET_KEY, "NEWSROOM_ENVIRONMENT": "production",
            "NEWSROOM_APPRISE_CONFIG": str(apprise_config(root / "apprise.txt", mail.port,
                                                          webhook.url)),
            "NEWSROOM_MASTODON_TOKEN": MASTODON,
            "NEWSROOM_BLUESKY_CREDENTIAL": f"{BLUESKY_HANDLE}:{BLUESKY_PASSWORD}",
            "NEWSROOM_META_TOKEN": META, "NEWSROOM_THREADS_TOKEN": THREADS,
            "NEWSROOM_TELEGRAM_BOT_TOKEN": TELEGRAM, "NEWSROOM_CMS_TOKEN": CMS,
        }
        for name, value in settings.items():
            env.setenv(name, value)
        env.delenv("NEWSROOM_LINKEDIN_TOKEN", raising=False)
        from prefect.blocks.system import Secret

        Secret(value=LINKEDIN).save("newsroom-linkedin-token", overwrite=True)
        reset_runtimes()
        deployments = run_async(apply_deployments(POOL, schedules=False))
        worker = WorkerThread(POOL, poll_seconds=0.5)
        worker.start()
        server = WebServer(get_runtime(), port=web_port)
        server.start()
        try:
            yield SimpleNamespace(catalog=catalog, mail=mail, standins=control, web=server,
                                  deployments=deployments, worker=worker, root=root,
                                  webhook=webhook)
        finally:
            server.stop()
            worker.stop()
            mail.stop()
            webhook.shutdown()
            reset_runtimes()
            run_async(_delete_secret_block("newsroom-linkedin-token"))


async def _delete_secret_block(name: str) -> None:
    """Leave the session's Prefect server as found (other modules read credentials)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        block = await client.read_block_document_by_name(name, block_type_slug="secret")
        await client.delete_block_document(block.id)


def wait_final(run_id: UUID, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run_state(run_id)
        if state is not None and state.is_final():
            return state
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} not final after {timeout} s: {run_state(run_id)}")


async def prefect_records(run_ids: list[UUID]) -> dict[str, str]:
    """Everything the Prefect API tells about the runs, as text per kind."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    out: dict[str, str] = {}
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=run_ids)))
        out["flow runs"] = "\n".join(r.model_dump_json() for r in runs)
        children = await client.read_flow_runs()  # publication runs, sweeps: all of them
        out["all flow runs"] = "\n".join(r.model_dump_json() for r in children)
        task_runs = await client.read_task_runs()
        out["task runs"] = "\n".join(r.model_dump_json() for r in task_runs)
        logs, offset = [], 0
        while True:
            page = await client.read_logs(offset=offset, limit=200)
            logs += page
            offset += len(page)
            if len(page) < 200:
                break
        out["flow-run logs"] = "\n".join(log.model_dump_json() for log in logs)
        out["flow-run logs of these runs"] = "\n".join(
            log.message for log in await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=run_ids))))
        artifacts = await client.read_artifacts()
        out["artifacts"] = "\n".join(a.model_dump_json() for a in artifacts)
        deployments = await client.read_deployments()
        out["deployments"] = "\n".join(d.model_dump_json() for d in deployments)
        out["variables"] = "\n".join(v.model_dump_json() for v in await client.read_variables())
        blocks = await client.read_block_documents(include_secrets=False)
        out["block documents"] = "\n".join(b.model_dump_json() for b in blocks)
    assert len(logs) > 0 and len(artifacts) > 0, "nothing read back from Prefect"
    return out


# --- the test -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(prefect_server, tmp_path_factory):
    with secret_stack(tmp_path_factory.mktemp("secrets")) as ns:
        yield ns


def test_no_secret_in_any_log_or_artifact(stack, capfd) -> None:
    pages: list[tuple[str, str]] = []
    with capturing_logs() as capture:
        # 1. A campaign on eight channels: approval by e-mail and page, publication.
        slot = (datetime.now(UTC) + timedelta(seconds=40)).replace(microsecond=0)
        day = slot.astimezone(BERLIN).date().isoformat()
        write_campaign(stack.catalog, "geheim-gut", slot, channels=CHANNELS)
        good = start_campaign(stack, "geheim-gut", day)
        assert wait_for_state(good, {"Suspended"}, 90) == "Suspended"
        message = stack.mail.wait_for(APPROVER_MAIL, timeout=60)[0]
        link = LINK.search(text_of(message)).group(0)
        with httpx.Client(timeout=15) as browser:
            page = browser.get(link)
            assert page.status_code == 200, page.text[:300]
            pages.append((link, page.text))
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            done = browser.post(link, data={"csrf": csrf, "decision": "approve",
                                            "comment": "Passt."})
            assert done.status_code == 200, done.text[:300]
            pages += [("decision", done.text), ("again", browser.get(link).text),
                      ("forged", browser.get(link[:-3] + "xyz").text),
                      ("404", browser.get(stack.web.url + "/nichts").text)]
        state = wait_final(good, 180)
        assert state.is_completed(), state.message
        for network in HTTP_NETWORKS:
            assert len(stack.standins.posts(network)) == 1, network
        for address in PRESS:
            assert len(stack.mail.to(address)) == 1, address
        assert all(stack.mail.logins), "a login was refused"

        # 2. Every token refused: the error paths log, the office is alerted.
        stack.standins.set_faults([{"network": n, "kind": "401", "times": 1000}
                                   for n in ("mastodon", "bluesky", "linkedin", "graph",
                                             "telegram", "cms")])
        slot = (datetime.now(UTC) + timedelta(seconds=20)).replace(microsecond=0)
        write_campaign(stack.catalog, "geheim-abgelehnt", slot, channels=CHANNELS,
                       pre_approved=True)
        stack.mail.refuse = True  # the press list's SMTP login too (535)
        bad = start_campaign(stack, "geheim-abgelehnt",
                             slot.astimezone(BERLIN).date().isoformat())
        state = wait_final(bad, 180)
        stack.mail.refuse = False
        assert state.is_failed(), (state.name, state.message)
        refused = {r["network"] for r in stack.standins.requests() if r.get("fault") == "401"}
        assert refused == {"mastodon", "bluesky", "linkedin", "graph", "telegram", "cms"}, (
            refused, state.message)
        assert not all(stack.mail.logins), "the SMTP login was not refused"
        # The office was told (the mail login is refused: by the webhook with its token).
        alerts = [json.loads(r["body"]) for r in stack.webhook.received]
        assert any("fehlgeschlagen" in str(a) for a in alerts), alerts
        assert all(r["headers"].get("X-Newsroom-Token") == APPRISE_TOKEN
                   for r in stack.webhook.received)

        # 3. Read back everything that was recorded.
        prefect = run_async(prefect_records([good, bad]))
        stand_in_page = httpx.get(stack.standins.base_url + "/", timeout=10).text
    out, err = capfd.readouterr()

    found: list[str] = []
    for number, record in enumerate(capture.records):
        found += hits(f"log record {number}: {record[:160]!r}", record)
    found += hits("stdout", out) + hits("stderr", err)
    for kind, text in prefect.items():
        found += hits(f"Prefect API: {kind}", text)
    files = [p for p in stack.root.rglob("*") if p.is_file()
             and p.name != "apprise.txt"  # the secret's configured home
             and "campaigns" not in p.parts]
    assert any(p.suffix == ".db" for p in files)
    for path in files:
        found += hits(f"file {path.relative_to(stack.root)}", path.read_bytes())
    for message in stack.mail.messages:
        found += hits(f"e-mail {message['subject']!r}", message.as_bytes())
    found += hits("stand-in requests", json.dumps(stack.standins.requests()))
    found += hits("stand-in page", stand_in_page)
    for name, html in pages:
        found += hits(f"web page {name}", html)
    assert len(capture.records) > 1000, len(capture.records)  # DEBUG was on
    assert not found, "\n".join(sorted(set(found)))
    print(json.dumps({"log_records": len(capture.records), "files": len(files),
                      "emails": len(stack.mail.messages),
                      "prefect_bytes": sum(len(t) for t in prefect.values()),
                      "secret_forms": len(needles()), "hits": 0}))
