"""The office retries a failed publication (`newsroom channels retry`, newsroom.retries):
checked, audited, published once — however often and from however many places it is
asked for. Real store, real stand-ins over HTTP."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from publishing_testkit import (
    Inbox,
    delivery_runtime,
    free_port,
    publication,
    write_service_campaign,
)

from newsroom import crisis, retries, store
from newsroom.cli import cli
from newsroom.delivery import deliver_occurrence, prepare_occurrence
from newsroom.publishing import resolve_unknown
from newsroom.runtime import Runtime, reset_runtimes
from newsroom.timeutil import BERLIN

pytestmark = pytest.mark.anyio

SECRET = "retry-test-secret-key-0123456789-abcdefgh"


@pytest.fixture
def runtime(tmp_path: Path, standins_url: str, engine, monkeypatch) -> Runtime:
    return delivery_runtime(tmp_path, standins_url, engine, monkeypatch, secret_key=SECRET)


@pytest.fixture
def cli_env(runtime: Runtime, database_url: str, monkeypatch):
    """The CLI in this process sees the same catalog and store as ``runtime``."""
    monkeypatch.setenv("NEWSROOM_CATALOG_DIR", str(runtime.settings.catalog_dir))
    monkeypatch.setenv("NEWSROOM_DATA_DIR", str(runtime.settings.data_dir))
    monkeypatch.setenv("NEWSROOM_DATABASE_URL", database_url)
    monkeypatch.setenv("NEWSROOM_SECRET_KEY", SECRET)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    reset_runtimes()
    yield
    reset_runtimes()


def statuses_with(standins, marker: str) -> list[dict]:
    return [p for p in standins.posts("mastodon") if marker in str(p)]


async def failed_on_mastodon(runtime: Runtime, standins, campaign_id: str, *,
                             slot: datetime | None = None, grace: str = "2h"):
    """Deliver a service campaign while Mastodon refuses the token: Mastodon failed
    (permanent, the office alerted), Telegram published. Returns (occurrence id, the
    Mastodon post's id, its publication)."""
    slot = slot or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    write_service_campaign(runtime, campaign_id, slot, grace=grace)
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "401"}])
    prepared = prepare_occurrence(runtime, campaign_id, slot.astimezone(BERLIN).date())
    # Delivered at its second (the clock says so), whatever the wall clock says.
    report = await deliver_occurrence(runtime, prepared, None, clock=lambda: slot)
    assert set(report.failed) == {"mastodon"} and set(report.published) == {"telegram"}
    assert "newsroom channels open" in report.markdown(runtime.catalog)
    with store.session_scope(runtime.engine) as session:
        [post] = [p for p in store.current_posts(session, occurrence_id=prepared.occurrence_id)
                  if p.channel == "mastodon"]
    failed = publication(runtime.engine, post.id, "mastodon")
    assert failed.status == "failed"
    return prepared.occurrence_id, post.id, failed


def audit(runtime: Runtime, campaign_id: str, action: str) -> list[store.AuditEvent]:
    with store.session_scope(runtime.engine) as session:
        return [e for e in store.audit_trail(session, campaign_id=campaign_id)
                if e.action == action]


def test_a_refused_post_is_retried_by_the_office_and_published_once(
        runtime, standins, cli_env) -> None:
    _, post_id, failed = asyncio.run(failed_on_mastodon(runtime, standins, "wiederholen-cli"))
    [alert] = runtime.notifier.sent
    assert f"newsroom channels retry {failed.id}" in alert["text"]  # the mail says how
    assert statuses_with(standins, "wiederholen-cli") == []
    runner = CliRunner()

    listed = runner.invoke(cli, ["channels", "open"])
    assert listed.exit_code == 0, listed.output
    assert f"{failed.id}  failed   wiederholen-cli" in listed.output, listed.output
    assert "fix the cause, then newsroom channels retry ID" in listed.output
    assert "no publications in state unknown" in runner.invoke(
        cli, ["channels", "unknown"]).output  # failed ones are not "unknown"

    done = runner.invoke(cli, ["channels", "retry", str(failed.id), "--direct", "--by", "hk"])
    assert done.exit_code == 0, done.output
    assert f"publication {failed.id} (mastodon) published" in done.output
    assert len(statuses_with(standins, "wiederholen-cli")) == 1
    stored = publication(runtime.engine, post_id, "mastodon")
    assert stored.status == "published" and stored.remote_url
    [asked] = audit(runtime, "wiederholen-cli", retries.RETRIED)
    assert asked.actor == "hk" and asked.detail["via"] == "cli"
    assert "HTTP 401" in asked.detail["previous_error"]
    assert asked.detail["publication_id"] == failed.id and asked.detail["late"] is None

    again = runner.invoke(cli, ["channels", "retry", str(failed.id), "--direct"])
    assert again.exit_code == 1 and "is published" in again.output, again.output
    assert len(statuses_with(standins, "wiederholen-cli")) == 1
    assert len(audit(runtime, "wiederholen-cli", retries.RETRIED)) == 1  # refused: unaudited
    assert "no publications in state unknown or failed" in runner.invoke(
        cli, ["channels", "open"]).output


def test_two_retries_at_once_publish_once(runtime, standins) -> None:
    """Two shells (two event loops, two threads) retry the same publication at the same
    moment, the network slow to answer: the store's locked transition lets one send."""
    _, post_id, failed = asyncio.run(failed_on_mastodon(runtime, standins,
                                                        "wiederholen-doppelt"))
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "slow", "delay": 1.0}])
    start = threading.Barrier(2)
    results: list[object] = []

    def shell(name: str) -> None:
        start.wait()
        try:
            results.append(asyncio.run(retries.retry_publication(
                runtime, failed.id, by=name)))
        except retries.RetryRefused as exc:  # the other one was quicker and is done
            results.append(exc)

    threads = [threading.Thread(target=shell, args=(n,)) for n in ("hk", "wolf")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 2, results
    assert len(statuses_with(standins, "wiederholen-doppelt")) == 1
    # One create went out (not a second one that the Idempotency-Key then caught): the
    # other retry found it under way and left it, as it would on any network.
    creates = [r for r in standins.requests("mastodon")
               if r["path"].endswith("/api/v1/statuses") and r["method"] == "POST"]
    assert len(creates) == 2, creates  # the 401 at delivery, the retry
    outcomes = [r for r in results if not isinstance(r, Exception)]
    assert [o.status for o in outcomes].count("published") == 1, results
    said = [retries.describe_outcome(o) for o in outcomes]
    assert all(done for done, _ in said), said
    assert publication(runtime.engine, post_id, "mastodon").status == "published"


async def test_an_unknown_publication_is_resolved_before_it_is_retried(runtime, standins
                                                                       ) -> None:
    _, post_id, failed = await failed_on_mastodon(runtime, standins, "wiederholen-unklar")
    with store.session_scope(runtime.engine) as session:
        store.mark_publishing(session, publication_id=failed.id)
        store.mark_unknown(session, publication_id=failed.id, error="mastodon: no answer")
    with pytest.raises(retries.RetryRefused, match=f"channels resolve {failed.id}"):
        await retries.retry_publication(runtime, failed.id, by="hk")
    resolve_unknown(runtime.engine, failed.id, outcome="not_published", by="hk")
    assert f"channels retry {failed.id}" in publication(runtime.engine, post_id,
                                                        "mastodon").last_error
    outcome = await retries.retry_publication(runtime, failed.id, by="hk")
    assert outcome.status == "published"
    assert len(statuses_with(standins, "wiederholen-unklar")) == 1


async def test_a_late_post_needs_the_office_to_say_so(runtime, standins) -> None:
    slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=50)
    _, _, failed = await failed_on_mastodon(runtime, standins, "wiederholen-spaet",
                                            slot=slot, grace="30m")
    # It failed at its second; now it is 50 min later, past its 30 min grace window.
    with pytest.raises(retries.RetryRefused, match="--even-if-late"):
        await retries.retry_publication(runtime, failed.id, by="hk")
    assert retries.plan_retry(runtime, failed.id, now=slot + timedelta(minutes=29)).late is None
    outcome = await retries.retry_publication(runtime, failed.id, by="hk", even_if_late=True)
    assert outcome.status == "published"
    [asked] = audit(runtime, "wiederholen-spaet", retries.RETRIED)
    assert "grace window" in asked.detail["late"]


async def test_no_retry_while_a_crisis_holds_other_posts(runtime, standins) -> None:
    _, _, failed = await failed_on_mastodon(runtime, standins, "wiederholen-krise")
    start = crisis.start_crisis(runtime, "unwetterwarnung",
                                {"ereignis": "Sturm wiederholen-krise"}, by="wolf")
    try:
        with pytest.raises(retries.RetryRefused, match="crisis is active"):
            await retries.retry_publication(runtime, failed.id, by="hk")
    finally:
        crisis.end_crisis(runtime.engine, by="wolf")
    assert start.crisis_id
    assert statuses_with(standins, "wiederholen-krise") == []
    outcome = await retries.retry_publication(runtime, failed.id, by="hk")
    assert outcome.status == "published"


async def test_a_failure_again_stays_failed_and_can_be_retried_once_more(runtime, standins
                                                                         ) -> None:
    _, post_id, failed = await failed_on_mastodon(runtime, standins, "wiederholen-zweimal")
    standins.set_faults([{"network": "mastodon", "path_contains": "/api/v1/statuses",
                          "kind": "401"}])
    outcome = await retries.retry_publication(runtime, failed.id, by="hk")
    done, said = retries.describe_outcome(outcome)
    assert not done and outcome.status == "failed" and "failed again" in said
    assert publication(runtime.engine, post_id, "mastodon").attempts == 2
    outcome = await retries.retry_publication(runtime, failed.id, by="hk")
    assert outcome.status == "published"
    assert len(statuses_with(standins, "wiederholen-zweimal")) == 1
    assert len(audit(runtime, "wiederholen-zweimal", retries.RETRIED)) == 2


def test_audit_shows_who_decided_what_with_which_words_and_where(runtime, standins,
                                                                 cli_env) -> None:
    """`newsroom audit`: the details of each event (decision, comment, error, address),
    as a table and as JSON."""
    import json

    from newsroom import approval

    _, _, failed = asyncio.run(failed_on_mastodon(runtime, standins, "wiederholen-akte"))
    asyncio.run(retries.retry_publication(runtime, failed.id, by="hk"))
    day = datetime(2027, 2, 10).date()
    ready = prepare_occurrence(runtime, "tag-der-kinderhospizarbeit", day)
    approval.open_gate(runtime.engine, runtime.catalog, occurrence_id=ready.occurrence_id)
    approval.admin_decision(runtime.engine, runtime.catalog, occurrence_id=ready.occurrence_id,
                            decision="request_changes", comment="Bitte das Datum prüfen.",
                            admin="wolf", via="cli")
    runner = CliRunner()

    table = runner.invoke(cli, ["audit", "wiederholen-akte"])
    assert table.exit_code == 0, table.output
    [retry_line] = [line for line in table.output.splitlines() if "publication.retry" in line]
    assert "hk" in retry_line and "HTTP 401" in retry_line, table.output
    [published] = [line for line in table.output.splitlines()
                   if "publication.published" in line and "channel=mastodon" in line]
    url = publication(runtime.engine, failed.post_id, "mastodon").remote_url
    assert f"urls={url}" in published, table.output

    decided = runner.invoke(cli, ["audit", "tag-der-kinderhospizarbeit", "--occurrence",
                                  day.isoformat()])
    [line] = [line for line in decided.output.splitlines() if "approval.admin_decided" in line]
    assert "wolf" in line and "request_changes" in line and "Bitte das Datum prüfen." in line

    as_json = json.loads(runner.invoke(cli, ["audit", "wiederholen-akte", "--json"]).output)
    [event] = [e for e in as_json if e["action"] == retries.RETRIED]
    assert event["actor"] == "hk" and event["detail"]["publication_id"] == failed.id
    assert datetime.fromisoformat(event["at"]).tzinfo is not None
    bad = runner.invoke(cli, ["audit", "wiederholen-akte", "--occurrence", "10.02.2027"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


class PressServer(Inbox):
    """aiosmtpd handler: keeps every message, refuses the addresses in ``unknown`` (550)."""

    def __init__(self, unknown: set[str]) -> None:
        super().__init__()
        self.unknown = unknown

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def received(self) -> list[str]:
        return sorted(r for rcpt, _ in self.messages() for r in rcpt)


@pytest.mark.slow
def test_a_refused_press_address_is_corrected_in_the_registry_and_retried(
        runtime, monkeypatch) -> None:
    """The press list holds an address its mail server refuses for good: the others get
    the release, the office is told which address and what to do; it corrects the
    address in registry/channels.yaml and retries: the corrected address alone is mailed."""
    wrong, corrected = "redaktion-hr@example.org", "redaktion@hr.example.org"
    others = ["newsdesk@example.org", "redaktion-echo@example.org"]
    inbox = PressServer({wrong})
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("NEWSROOM_SMTP_URL", f"smtp://127.0.0.1:{port}?from=presse@example.org")
        slot = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        write_service_campaign(runtime, "presse-adresse", slot, channels=("presse",))
        prepared = prepare_occurrence(runtime, "presse-adresse", slot.astimezone(BERLIN).date())
        report = asyncio.run(deliver_occurrence(runtime, prepared, None, clock=lambda: slot))
        assert set(report.failed) == {"presse"}
        assert inbox.received() == others
        with store.session_scope(runtime.engine) as session:
            [post] = store.current_posts(session, occurrence_id=prepared.occurrence_id)
        failed = publication(runtime.engine, post.id, "presse")
        (alert,) = runtime.notifier_override.sent
        assert "Presseverteiler: Adresse abgelehnt" in alert["subject"]
        assert f"{wrong} – RCPT TO: 550 5.1.1" in alert["text"]
        assert f"newsroom channels retry {failed.id}" in alert["text"]

        registry = runtime.settings.catalog_dir / "registry" / "channels.yaml"
        registry.write_text(registry.read_text(encoding="utf-8").replace(wrong, corrected),
                            encoding="utf-8")
        settled = time.time() - 60  # written a minute ago: the catalog need not wait for it
        os.utime(registry, (settled, settled))
        outcome = asyncio.run(retries.retry_publication(runtime, failed.id, by="pressestelle"))

        assert outcome.status == "published", outcome.error
        assert inbox.received() == sorted([*others, corrected])  # each exactly once
        assert len(runtime.notifier_override.sent) == 1
    finally:
        controller.stop()
