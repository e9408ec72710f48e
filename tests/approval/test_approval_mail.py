"""Approval e-mails through apprise to a real SMTP server (aiosmtpd): once per person,
text and HTML parts with the link; reminders at 24h and 2h once each; the deadline
notice to the Amt für Kommunikation and escalate_to."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from approval_testkit import BEFORE, DEADLINE, Outbox, actions, requests_by_person, store_posts

from newsroom import approval, store
from newsroom.notify import AppriseNotifier

LINK = re.compile(r"https://newsroom\.example\.org/freigabe/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [(list(e.rcpt_tos), email.message_from_bytes(e.original_content,
                                                            policy=email.policy.default))
                for e in self.envelopes]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}?from=newsroom@example.org"
    finally:
        controller.stop()


@pytest.mark.slow
def test_notify_twice_sends_one_multipart_mail_each(sqlite_engine, catalog, signer, smtp):
    inbox, smtp_url = smtp
    notifier = AppriseNotifier.for_directory(catalog.directory, smtp_url)
    occurrence_id = store_posts(sqlite_engine, catalog, "t-quorum")
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    kwargs = dict(occurrence_id=occurrence_id, notifier=notifier, signer=signer,
                  base_url="https://newsroom.example.org", now=BEFORE)
    assert approval.notify_approvers(sqlite_engine, catalog, **kwargs) == [
        "benz", "akdeniz", "feldmann"]
    assert approval.notify_approvers(sqlite_engine, catalog, **kwargs) == []
    messages = inbox.messages()
    assert sorted(rcpt[0] for rcpt, _ in messages) == sorted([
        "oberbuergermeister@example.org", "buergermeisterin@example.org",
        "stadtkaemmerer@example.org"])
    _, message = messages[0]
    assert message["Subject"].startswith("Freigabe erbeten: Testaufruf t-quorum – 10. März 2027")
    plain = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    [link] = set(LINK.findall(plain))
    assert link in html, html
    assert "Freigabe bis" in plain
    assert "Mastodon" in plain, plain
    assert "nur die Namen derer" in plain
    token = link.rsplit("/", 1)[1]
    assert approval.check_link(sqlite_engine, signer, token, now=BEFORE).request.person_id in (
        "benz", "akdeniz", "feldmann")
    assert actions(sqlite_engine, "t-quorum").count("approval.notified") == 3


def test_reminders_once_each_and_deadline_notice(sqlite_engine, catalog, signer):
    outbox = Outbox()
    occurrence_id = store_posts(sqlite_engine, catalog, "t-all-escalate")
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                              notifier=outbox, signer=signer, base_url="https://x", now=BEFORE)
    request = requests_by_person(sqlite_engine, occurrence_id)["benz"]
    token = approval.approval_link(signer, request, "https://x", now=BEFORE).rsplit("/", 1)[1]
    approval.decide(sqlite_engine, catalog, token=token, decision="approve", comment="",
                    signer=signer, now=BEFORE)

    def sweep(at):
        return approval.process_deadlines(sqlite_engine, catalog, notifier=outbox,
                                          signer=signer, base_url="https://x", now=at)

    assert sweep(DEADLINE - timedelta(hours=30)) == []
    sweep(DEADLINE - timedelta(hours=23))
    sweep(DEADLINE - timedelta(hours=20))
    sweep(DEADLINE - timedelta(hours=1))
    sweep(DEADLINE - timedelta(minutes=30))
    reminders = [m for m in outbox.sent if m["subject"].startswith("Erinnerung")]
    assert sorted(m["tag"] for m in reminders) == ["akdeniz", "akdeniz", "feldmann", "feldmann"]
    assert not outbox.to("benz")[1:]  # benz decided: only the first message

    [status] = sweep(DEADLINE + timedelta(minutes=1))
    assert status.outcome == approval.GateOutcome.ESCALATED
    assert sweep(DEADLINE + timedelta(hours=1)) == []
    office = outbox.to("amt-kommunikation")
    assert len(office) == 1 and "Frist abgelaufen" in office[0]["subject"]
    assert "Oberbürgermeister Hanno Benz" in office[0]["text"]
    assert len([m for m in outbox.to("benz") if "Frist" in m["subject"]]) == 1
    with store.session_scope(sqlite_engine) as session:
        requests = store.approval_requests(session, occurrence_id=occurrence_id)
    assert {r.person_id: r.reminders_sent for r in requests} == {
        "benz": 0, "akdeniz": 2, "feldmann": 2}
