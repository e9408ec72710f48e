"""The press release by e-mail, sent through apprise to a real local SMTP server."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from channel_testkit import Alerts, make_post, store_post
from pydantic import SecretStr

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.channels import publish_with_retries, publisher_for
from newsroom.channels.email import parse_smtp_url
from newsroom.errors import (
    CredentialRefused,
    PermanentPublishError,
    RecipientsRefused,
    TransientPublishError,
)
from newsroom.notify import ALERT_TAG
from newsroom.publishing import publish_post

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

RECIPIENTS = ["redaktion@echo-online.example", "newsdesk@hr.example", "lokales@fr.example"]
RELEASE = ("Darmstadt, 15. Mai 2026 – Am Freitag tragen Schülerinnen und Schüler an 12 "
           "Darmstädter Schulen das Trikot ihres Lieblingsvereins. Oberbürgermeister "
           "Hanno Benz grüßt alle Teilnehmenden.")


class Inbox:
    """aiosmtpd handler: keeps every message. Refuses as told: a recipient once (a 4xx),
    an address's RCPT TO with a given reply (every time, or once), a recipient's message
    at DATA, every MAIL FROM, every login."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.refuse_once: set[str] = set()
        self.rcpt_replies: dict[str, str] = {}  # address → the answer to its RCPT TO
        self.rcpt_replies_once: dict[str, str] = {}  # the same, for the next RCPT TO only
        self.data_replies: dict[str, str] = {}  # recipient → the answer to DATA
        self.mail_reply: str | None = None  # the answer to every MAIL FROM
        self.auth_reply: str | None = None  # the answer to every AUTH (None: logged in)
        self.mail_froms = 0

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if self.auth_reply is None:
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False, message=self.auth_reply)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        self.mail_froms += 1
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse_once:
            self.refuse_once.discard(address)
            return "450 4.2.1 Mailbox busy, try again later"
        reply = self.rcpt_replies_once.pop(address, None) or self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        refusals = [self.data_replies[r] for r in envelope.rcpt_tos if r in self.data_replies]
        if refusals:
            return refusals[0]
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def received(self) -> list[str]:
        """Every recipient of every stored message (a name twice: mailed twice)."""
        return sorted(r for e in self.envelopes for r in e.rcpt_tos)

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
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=inbox.authenticate, auth_require_tls=False)
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


# --- what the mail server's replies mean (RFC 5321 §4.2.1: 4yz transient, 5yz permanent) ---

UNKNOWN_USER = "550 5.1.1 <newsdesk@hr.example>: Recipient address rejected: User unknown"


class Waits(list):
    """Stands in for asyncio.sleep: records the pauses of the run's retries."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def smtp_credential(port: int, user: str = "") -> SecretStr:
    login = f"{user}:pw@" if user else ""
    return SecretStr(f"smtp://{login}127.0.0.1:{port}?from=presse@darmstadt.de")


def failures(engine) -> list[store.AuditEvent]:
    with store.session_scope(engine) as session:
        return [e for e in store.audit_trail(session, campaign_id="trikottag")
                if e.action == "publication.failed"]


async def test_an_address_refused_for_good_is_alerted_once_and_retried_after_the_fix(
        smtp, client, engine) -> None:
    """A 550 to one address: the others get the release once each, the publication fails
    for good with one alert naming the address and the server's words; after the office
    corrects the address in the registry, its retry mails that address alone."""
    inbox, port = smtp
    wrong = RECIPIENTS[1]
    inbox.rcpt_replies[wrong] = UNKNOWN_USER
    alerts, waits = Alerts(), Waits()
    post_id = store_post(engine, make_post("presse", text=RELEASE))

    async def publish(account: ChannelAccount, **options):
        return await publish_post(engine=engine, post_id=post_id, account=account,
                                  client=client, credential=smtp_credential(port),
                                  notifier=alerts, sleep=waits, **options)

    first = await publish(press_account())
    assert first.status == "failed" and first.network_called and first.alerted
    assert waits == []  # refused for good: not retried in the run
    assert wrong in (first.error or "") and UNKNOWN_USER in (first.error or "")
    assert inbox.received() == sorted([RECIPIENTS[0], RECIPIENTS[2]])
    (alert,) = alerts.sent
    assert alert["tag"] == ALERT_TAG
    assert "Presseverteiler: Adresse abgelehnt" in alert["subject"]
    assert f"{wrong} – RCPT TO: {UNKNOWN_USER}" in alert["text"]
    assert "registry/channels.yaml" in alert["text"]
    assert f"newsroom channels retry {first.publication_id}" in alert["text"]
    (failed,) = failures(engine)
    assert failed.detail["retryable"] is False
    assert failed.detail["progress"] == {"delivered": [RECIPIENTS[0], RECIPIENTS[2]]}

    again = await publish(press_account())  # the next run leaves it to the office
    assert again.status == "failed" and not again.network_called and len(alerts.sent) == 1

    corrected = "newsdesk@hr-online.example"
    retried = await publish(press_account(recipients=[RECIPIENTS[0], corrected, RECIPIENTS[2]]),
                            retry_failed=True)
    assert retried.status == "published", retried.error
    assert inbox.received() == sorted([RECIPIENTS[0], RECIPIENTS[2], corrected])  # once each
    assert len(alerts.sent) == 1


async def test_a_passing_failure_is_retried_before_the_refusal_is_reported(
        smtp, client, engine) -> None:
    """One address refused for good, another busy for a moment: the run's retry reaches
    the busy one, then the publication fails for the refused address alone."""
    inbox, port = smtp
    inbox.rcpt_replies[RECIPIENTS[0]] = "553 5.1.3 Mailbox name not allowed"
    inbox.refuse_once.add(RECIPIENTS[1])
    alerts, waits = Alerts(), Waits()
    post_id = store_post(engine, make_post("presse", text=RELEASE))

    outcome = await publish_post(engine=engine, post_id=post_id, account=press_account(),
                                 client=client, credential=smtp_credential(port),
                                 notifier=alerts, sleep=waits)

    assert outcome.status == "failed" and outcome.alerted
    assert len(waits) == 1  # the busy one was retried once, then it had the release
    assert inbox.received() == sorted(RECIPIENTS[1:])
    (alert,) = alerts.sent
    assert f"{RECIPIENTS[0]} – RCPT TO: 553 5.1.3" in alert["text"]
    assert RECIPIENTS[1] not in alert["text"]
    assert failures(engine)[-1].detail["progress"] == {"delivered": RECIPIENTS[1:]}


async def test_a_451_stays_transient_retried_without_an_alert(smtp, client, engine) -> None:
    inbox, port = smtp
    inbox.rcpt_replies[RECIPIENTS[2]] = "451 4.7.1 Greylisted, please try again later"
    alerts, waits = Alerts(), Waits()
    post_id = store_post(engine, make_post("presse", text=RELEASE))

    async def publish():
        return await publish_post(engine=engine, post_id=post_id, account=press_account(),
                                  client=client, credential=smtp_credential(port),
                                  notifier=alerts, sleep=waits, max_attempts=3)

    first = await publish()
    assert first.status == "failed" and not first.alerted and alerts.sent == []
    assert len(waits) == 2  # three attempts in the run
    assert "451 4.7.1 Greylisted" in (first.error or "")
    assert failures(engine)[-1].detail["retryable"] is True
    assert inbox.received() == sorted(RECIPIENTS[:2])

    del inbox.rcpt_replies[RECIPIENTS[2]]  # greylisting passed
    second = await publish()  # the next run, without the office
    assert second.status == "published" and second.network_called
    assert inbox.received() == sorted(RECIPIENTS) and alerts.sent == []


async def test_a_refusal_at_data_refuses_that_recipient_alone(smtp, client) -> None:
    inbox, port = smtp
    inbox.data_replies[RECIPIENTS[1]] = "554 5.7.1 Message rejected by local policy"
    publisher = publisher_for(press_account(), client=client, credential=smtp_credential(port))
    post = make_post("presse", text=RELEASE)

    with pytest.raises(RecipientsRefused) as refused:
        await publisher.publish(post, idempotency_key="k")
    assert refused.value.refused == {
        RECIPIENTS[1]: "DATA: 554 5.7.1 Message rejected by local policy"}
    assert refused.value.status_code == 554
    assert refused.value.progress == {"delivered": [RECIPIENTS[0], RECIPIENTS[2]]}
    assert inbox.received() == sorted([RECIPIENTS[0], RECIPIENTS[2]])

    inbox.data_replies.clear()  # the recipient's administrators let it through now
    await publisher.publish(post, idempotency_key="k")
    assert inbox.received() == sorted(RECIPIENTS)


async def test_a_sender_refused_for_good_stops_for_everyone(smtp, client) -> None:
    inbox, port = smtp
    inbox.mail_reply = "553 5.7.1 <presse@darmstadt.de>: Sender address rejected"
    publisher = publisher_for(press_account(), client=client, credential=smtp_credential(port))

    with pytest.raises(PermanentPublishError, match="refused the sender presse@darmstadt.de"
                       ) as refused:
        await publisher.publish(make_post("presse", text=RELEASE), idempotency_key="k")
    assert not isinstance(refused.value, RecipientsRefused | CredentialRefused)
    assert "MAIL FROM: 553 5.7.1" in str(refused.value)
    assert inbox.mail_froms == 1 and inbox.received() == []  # the others were not tried


async def test_a_421_closes_the_connection_and_the_next_recipient_gets_a_new_one(
        smtp, client) -> None:
    inbox, port = smtp
    inbox.rcpt_replies_once[RECIPIENTS[0]] = "421 4.3.2 Service shutting down"
    publisher = publisher_for(press_account(), client=client, credential=smtp_credential(port))

    with pytest.raises(TransientPublishError, match="1 of 3 recipients"):
        await publisher.publish(make_post("presse", text=RELEASE), idempotency_key="k")
    assert inbox.received() == sorted(RECIPIENTS[1:])


@pytest.mark.parametrize(("reply", "error"), [
    ("454 4.7.0 Temporary authentication failure", TransientPublishError),
    ("535 5.7.8 Authentication credentials invalid", CredentialRefused),
])
async def test_a_login_refused_for_now_or_for_good(smtp, client, reply, error) -> None:
    inbox, port = smtp
    inbox.auth_reply = reply
    publisher = publisher_for(press_account(), client=client,
                              credential=smtp_credential(port, user="presse"))

    with pytest.raises(error, match=reply.split()[0]):
        await publisher.publish(make_post("presse", text=RELEASE), idempotency_key="k")
    assert inbox.mail_froms == 0
