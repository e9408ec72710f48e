"""The press release by e-mail, sent through apprise to a real local SMTP server."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from channel_testkit import make_post, store_post
from pydantic import SecretStr

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.channels.email import parse_smtp_url
from newsroom.errors import PermanentPublishError, TransientPublishError
from newsroom.publishing import publish_post

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECIPIENTS = ["redaktion@echo-online.example", "newsdesk@hr.example", "lokales@fr.example"]
RELEASE = ("Darmstadt, 15. Mai 2026 – Am Freitag tragen Schülerinnen und Schüler an 12 "
           "Darmstädter Schulen das Trikot ihres Lieblingsvereins. Oberbürgermeister "
           "Hanno Benz grüßt alle Teilnehmenden.")


class Inbox:
    """aiosmtpd handler: keeps every message; may refuse a recipient once (a 4xx)."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse_once: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse_once:
            self.refuse_once.discard(address)
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[tuple[list[str], email.message.EmailMessage]]:
        return [(list(e.rcpt_tos), email.message_from_bytes(e.original_content,
                                                            policy=email.policy.default))
                for e in self.envelopes]


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def press_account(**overrides) -> ChannelAccount:
    return ChannelAccount(**{"name": "presse", "type": "email", "display_name": "Presseverteiler",
                             "recipients": RECIPIENTS, "credential": {"env": "X"},
                             **overrides})


async def test_each_recipient_gets_the_press_release(smtp, client) -> None:
    inbox, port = smtp
    credential = SecretStr(f"smtp://127.0.0.1:{port}?from=presse@darmstadt.de"
                           "&name=Stadt%20Darmstadt")
    publisher = publisher_for(press_account(), client=client, credential=credential)
    post = make_post("presse", text=RELEASE)

    result = await publish_with_retries(publisher, post, "k")

    messages = inbox.messages()
    assert sorted(r for rcpt, _ in messages for r in rcpt) == sorted(RECIPIENTS)
    for rcpt, message in messages:
        assert len(rcpt) == 1  # nobody sees the rest of the press list
        assert message["To"] == rcpt[0]
        assert message["Subject"] == "Trikottag an Darmstädter Schulen"
        assert message["From"] == "Stadt Darmstadt <presse@darmstadt.de>"
        assert message.get_content().strip() == RELEASE
    assert result.raw["recipients"] == RECIPIENTS


async def test_a_refused_recipient_is_retried_alone(smtp, client) -> None:
    inbox, port = smtp
    inbox.refuse_once.add(RECIPIENTS[1])
    publisher = publisher_for(press_account(), client=client,
                              credential=SecretStr(f"smtp://127.0.0.1:{port}?from=p@darmstadt.de"))
    post = make_post("presse", text=RELEASE)
    with pytest.raises(TransientPublishError, match="1 of 3 recipients"):
        await publisher.publish(post, idempotency_key="k")
    await publisher.publish(post, idempotency_key="k")
    received = [r for rcpt, _ in inbox.messages() for r in rcpt]
    assert sorted(received) == sorted(RECIPIENTS)  # everyone exactly once


async def test_a_retried_publication_mails_only_those_who_did_not_get_it(
        smtp, client, engine) -> None:
    """The publication fails for one recipient; a later run (a new publisher, as after a
    restart) sends to that one only: the delivered recipients live in the store."""
    inbox, port = smtp
    inbox.refuse_once.add(RECIPIENTS[1])
    account = press_account()
    credential = SecretStr(f"smtp://127.0.0.1:{port}?from=presse@darmstadt.de")
    post_id = store_post(engine, make_post("presse", text=RELEASE))

    first = await publish_post(engine=engine, post_id=post_id, account=account,
                               client=client, credential=credential, max_attempts=1)
    assert first.status == "failed" and first.network_called
    assert "1 of 3 recipients" in (first.error or "")
    assert sorted(r for rcpt, _ in inbox.messages() for r in rcpt) == sorted(
        [RECIPIENTS[0], RECIPIENTS[2]])

    second = await publish_post(engine=engine, post_id=post_id, account=account,
                                client=client, credential=credential)
    assert second.status == "published" and second.network_called
    received = [r for rcpt, _ in inbox.messages() for r in rcpt]
    assert sorted(received) == sorted(RECIPIENTS)  # everyone exactly once
    assert received[-1] == RECIPIENTS[1]

    third = await publish_post(engine=engine, post_id=post_id, account=account,
                               client=client, credential=credential)
    assert third.status == "published" and not third.network_called
    assert len(inbox.messages()) == 3
    with store.session_scope(engine) as session:
        failed = [e for e in store.audit_trail(session, campaign_id="trikottag")
                  if e.action == "publication.failed"]
    assert failed[-1].detail["progress"] == {"delivered": [RECIPIENTS[0], RECIPIENTS[2]]}


async def test_restored_progress_ignores_what_is_not_a_recipient(client) -> None:
    publisher = publisher_for(press_account(), client=client,
                              credential=SecretStr("smtp://127.0.0.1:25?from=p@darmstadt.de"))
    publisher.restore_progress("k", {"delivered": [RECIPIENTS[2], "fremd@example.org", 7]})
    publisher.restore_progress("k", {"delivered": "kaputt"})
    assert publisher._progress("k") == {"delivered": [RECIPIENTS[2]]}
    assert publisher._progress("other") == {"delivered": []}


async def test_check_talks_to_the_mail_server(smtp, client) -> None:
    _, port = smtp
    publisher = publisher_for(press_account(base_url=f"smtp://127.0.0.1:{port}",
                                            account_id="presse@darmstadt.de"),
                              client=client, credential=SecretStr("unused-password"))
    check = await publisher.check()
    assert check.ok and check.identity == f"presse@darmstadt.de via 127.0.0.1:{port}"


async def test_an_unreachable_mail_server_is_transient(client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens here
    publisher = publisher_for(press_account(), client=client,
                              credential=SecretStr(f"smtp://127.0.0.1:{port}?from=p@x.de"))
    with pytest.raises(TransientPublishError):
        await publisher.publish(make_post("presse"), idempotency_key="k")


def test_smtp_urls() -> None:
    smtp = parse_smtp_url("smtp+starttls://presse%40darmstadt.de:p%40ss:w@mail.darmstadt.de"
                          "?name=Stadt%20Darmstadt")
    assert (smtp.host, smtp.port, smtp.mode, smtp.user, smtp.password, smtp.sender) == (
        "mail.darmstadt.de", 587, "starttls", "presse@darmstadt.de", "p@ss:w",
        "presse@darmstadt.de")
    assert "p@ss" not in repr(smtp)
    url = smtp.apprise_url("a@b.example")
    assert url.startswith("mailtos://presse%40darmstadt.de:p%40ss%3Aw@mail.darmstadt.de:587/?")
    assert "mode=starttls" in url
    assert parse_smtp_url("smtps://u:p@h?from=x@y.de").port == 465
    with pytest.raises(ValueError, match="sender"):
        parse_smtp_url("smtp://mail.example")


async def test_bad_settings_are_permanent(client) -> None:
    with pytest.raises(PermanentPublishError, match="SMTP settings"):
        publisher_for(press_account(), client=client, credential=SecretStr("only-a-password"))
    with pytest.raises(PermanentPublishError, match="recipients"):
        publisher_for(press_account(recipients=[]), client=client,
                      credential=SecretStr("smtp://h?from=a@b.de"))
