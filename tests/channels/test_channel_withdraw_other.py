"""Recalls on Telegram (deleteMessage), the website (the CMS webhook's withdrawal and the
feed's tombstone), the press e-mail (a correction to exactly the original recipients)
and the manual channels (a person is asked). Over real HTTP to the stand-ins and real
SMTP to a local aiosmtpd."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from channel_testkit import make_account, make_post
from pydantic import SecretStr

import newsroom.standins.telegram as standin_telegram
from newsroom.catalog.models import ChannelAccount
from newsroom.channels import WithdrawResult, publisher_for, withdraw_with_retries
from newsroom.channels.email import correction_text
from newsroom.channels.website import read_entries, read_tombstones
from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    RecipientsRefused,
    TransientPublishError,
)

pytestmark = pytest.mark.anyio

REASON = "Die Veranstaltung wurde abgesagt; die genannten Zeiten gelten nicht."


class Sleeps(list):
    """Stands in for asyncio.sleep: records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _deletions(standins) -> list[dict[str, Any]]:
    return [r for r in standins.requests("telegram") if r["path"].endswith("/deleteMessage")]


def _shown(standins, network: str) -> list[dict[str, Any]]:
    return [p for p in standins.posts(network) if "deleted_at" not in p]


# --- Telegram ------------------------------------------------------------------------------


async def test_telegram_deletes_the_message_once_and_then_finds_it_gone(
        standins, make_publisher) -> None:
    publisher = make_publisher("telegram")
    published = await publisher.publish(make_post("telegram"), idempotency_key="k")

    result = await publisher.withdraw(published.remote_id, remote_url=published.url,
                                      idempotency_key="recall-1")
    assert result.gone and not result.already_gone and not result.manual
    (post,) = standins.posts("telegram")
    assert post["deleted_at"] and post["deletions"] == 1
    (request,) = _deletions(standins)
    assert request["path"] == "/telegram/bot***/deleteMessage"  # the token is not logged
    assert request["body"] == {"chat_id": "@darmstadt",
                               "message_id": int(published.remote_id)}
    assert request["status"] == 200

    again = await publisher.withdraw(published.remote_id, remote_url=published.url,
                                     idempotency_key="recall-1")
    assert again.gone and again.already_gone
    assert standins.posts("telegram")[0]["deletions"] == 1
    assert [r["status"] for r in _deletions(standins)] == [200, 400]


async def test_telegram_deletes_every_photo_of_an_album(standins, make_publisher,
                                                        image) -> None:
    publisher = make_publisher("telegram")
    published = await publisher.publish(make_post("telegram", media=(image(), image())),
                                        idempotency_key="k")
    first, second = published.remote_id.split(",")  # one message per photo
    assert published.url == f"https://t.me/darmstadt/{first}"

    result = await publisher.withdraw(published.remote_id, remote_url=published.url,
                                      idempotency_key="recall-1")
    assert result.gone and not result.already_gone
    assert [r["body"]["message_id"] for r in _deletions(standins)] == [int(first),
                                                                        int(second)]
    assert _shown(standins, "telegram") == []


async def test_telegram_takes_the_message_from_the_url_without_a_remote_id(
        standins, make_publisher) -> None:
    publisher = make_publisher("telegram")
    published = await publisher.publish(make_post("telegram"), idempotency_key="k")
    result = await publisher.withdraw("", remote_url=published.url,
                                      idempotency_key="recall-1")
    assert result.gone and not result.already_gone
    assert _shown(standins, "telegram") == []


async def test_telegram_waits_as_told_after_a_429(standins, make_publisher) -> None:
    publisher = make_publisher("telegram")
    published = await publisher.publish(make_post("telegram"), idempotency_key="k")
    standins.set_faults([{"network": "telegram", "path_contains": "/deleteMessage",
                          "kind": "429", "retry_after": 7}])
    sleeps = Sleeps()

    result = await withdraw_with_retries(publisher, published.remote_id,
                                         remote_url=published.url,
                                         idempotency_key="recall-1", sleep=sleeps)
    assert result.gone and not result.already_gone and result.attempts == 2
    assert sleeps == [7.0]  # parameters.retry_after, exactly
    assert [r["status"] for r in _deletions(standins)] == [429, 200]
    assert standins.posts("telegram")[0]["deletions"] == 1


async def test_telegram_lost_answer_is_sent_again_and_deletes_once(
        standins, make_publisher) -> None:
    publisher = make_publisher("telegram")
    published = await publisher.publish(make_post("telegram"), idempotency_key="k")
    standins.set_faults([{"network": "telegram", "path_contains": "/deleteMessage",
                          "kind": "drop_after_receive"}])

    result = await withdraw_with_retries(publisher, published.remote_id,
                                         remote_url=published.url,
                                         idempotency_key="recall-1", sleep=Sleeps())
    assert result.gone  # deleted by the first request, whose answer was lost
    deletions = _deletions(standins)
    assert len(deletions) == 2 and deletions[0].get("dropped") is True
    assert standins.posts("telegram")[0]["deletions"] == 1


async def test_telegram_refused_token_is_credential_refused(standins, make_publisher) -> None:
    published = await make_publisher("telegram").publish(make_post("telegram"),
                                                         idempotency_key="k")
    wrong = make_publisher("telegram", secret="123456789:revoked-token")
    sleeps = Sleeps()
    with pytest.raises(CredentialRefused) as refused:
        await withdraw_with_retries(wrong, published.remote_id, remote_url=published.url,
                                    idempotency_key="recall-1", sleep=sleeps)
    assert refused.value.status_code == 401 and "Unauthorized" in str(refused.value)
    assert "revoked-token" not in str(refused.value)
    assert sleeps == [] and len(_shown(standins, "telegram")) == 1


async def test_telegram_message_too_old_to_delete_is_left_to_a_person(
        standins, make_publisher, monkeypatch) -> None:
    publisher = make_publisher("telegram")
    published = await publisher.publish(make_post("telegram"), idempotency_key="k")
    monkeypatch.setattr(standin_telegram, "DELETE_WINDOW", 0.0)  # as if 48 hours passed

    result = await withdraw_with_retries(publisher, published.remote_id,
                                         remote_url=published.url,
                                         idempotency_key="recall-1", sleep=Sleeps())
    assert result.manual and not result.gone and result.attempts == 1
    assert "message can't be deleted" in result.detail
    assert "48 hours" in result.detail
    assert "must delete it by hand in the channel" in result.detail
    assert published.url in result.detail
    assert len(_shown(standins, "telegram")) == 1


async def test_telegram_other_refusals_stay_errors() -> None:
    """Only the two descriptions that mean "gone" and "not by the bot" are answers."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"ok": False, "error_code": 400,
                                         "description": "Bad Request: chat not found"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        publisher = publisher_for(make_account("telegram", "https://api.example"),
                                  client=http, credential=SecretStr("1:x"))
        with pytest.raises(PermanentPublishError, match="chat not found"):
            await publisher.withdraw("5", remote_url=None, idempotency_key="recall-1")
        with pytest.raises(PermanentPublishError, match="cannot tell the Telegram message"):
            await publisher.withdraw("", remote_url=None, idempotency_key="recall-1")


# --- website -------------------------------------------------------------------------------


async def test_website_withdrawal_keeps_the_page_and_drops_it_from_the_feeds(
        standins, make_publisher, tmp_path, client) -> None:
    publisher = make_publisher("website")
    published = await publisher.publish(make_post("website"), idempotency_key="k")
    feed = tmp_path / "feed.atom"
    assert [e["id"] for e in read_entries(feed)] == [published.remote_id]

    result = await publisher.withdraw(published.remote_id, remote_url=published.url,
                                      idempotency_key="recall-1",
                                      original={"reason": REASON})
    assert result.gone and not result.already_gone and not result.manual
    assert read_entries(feed) == []
    (tombstone,) = read_tombstones(feed)  # RFC 6721, for readers that have the entry
    assert tombstone["ref"] == published.remote_id
    assert tombstone["comment"] == f"Zurückgezogen: {REASON}"
    base = f"{standins.base_url}/cms"
    assert (await client.get(f"{base}/feed")).json() == {"entries": []}
    page = (await client.get(f"{base}/posts/1")).json()  # still there, with the notice
    assert page["url"] == published.url and page["text"] == make_post("website").text
    assert (page["status"], page["notice"], page["reason"]) == (
        "withdrawn", "Zurückgezogen", REASON)
    (request,) = [r for r in standins.requests("cms") if r["path"] == "/cms/posts/withdraw"]
    assert request["headers"]["authorization"] == "Bearer ***"
    assert request["headers"]["idempotency-key"] == "recall-1"
    assert request["body"]["id"] == published.remote_id
    assert standins.posts("cms")[0]["deletions"] == 1

    again = await publisher.withdraw(published.remote_id, remote_url=published.url,
                                     idempotency_key="recall-1", original={"reason": REASON})
    assert again.gone and again.already_gone
    assert again.raw["cms"]["status"] == "already_withdrawn"
    assert standins.posts("cms")[0]["deletions"] == 1
    assert len(read_tombstones(feed)) == 1


async def test_website_feed_lists_the_others_and_a_new_publication_replaces_the_tombstone(
        standins, make_publisher, tmp_path, client) -> None:
    publisher = make_publisher("website")
    kept = await publisher.publish(make_post("website", campaign="bleibt"),
                                   idempotency_key="k1")
    gone = await publisher.publish(make_post("website"), idempotency_key="k2")
    await publisher.withdraw(gone.remote_id, remote_url=gone.url,
                             idempotency_key="recall-1", original={"reason": REASON})
    feed = tmp_path / "feed.atom"
    assert [e["id"] for e in read_entries(feed)] == [kept.remote_id]
    listed = (await client.get(f"{standins.base_url}/cms/feed")).json()["entries"]
    assert [e["url"] for e in listed] == [kept.url]

    await publisher.publish(make_post("website", text="Berichtigt."), idempotency_key="k3")
    assert sorted(e["id"] for e in read_entries(feed)) == sorted(
        [kept.remote_id, gone.remote_id])
    assert read_tombstones(feed) == []


async def test_website_refused_token_leaves_the_feed_as_it_was(
        standins, make_publisher, tmp_path) -> None:
    published = await make_publisher("website").publish(make_post("website"),
                                                        idempotency_key="k")
    wrong = make_publisher("website", secret="abgelaufen")
    with pytest.raises(CredentialRefused, match="Invalid token"):
        await wrong.withdraw(published.remote_id, remote_url=published.url,
                             idempotency_key="recall-1", original={"reason": REASON})
    assert [e["id"] for e in read_entries(tmp_path / "feed.atom")] == [published.remote_id]
    assert len(_shown(standins, "cms")) == 1


async def test_website_cms_without_the_withdrawal_route_is_never_taken_for_done(
        standins, make_publisher, client, tmp_path) -> None:
    published = await make_publisher("website").publish(make_post("website"),
                                                        idempotency_key="k")
    account = make_account("website", standins.base_url, base_url=f"{standins.base_url}/cms")
    old_cms = publisher_for(account, client=client, credential=SecretStr("standin-cms-token"),
                            feed_path=tmp_path / "feed.atom")
    with pytest.raises(PermanentPublishError) as refused:
        await old_cms.withdraw(published.remote_id, remote_url=published.url,
                               idempotency_key="recall-1")
    assert refused.value.status_code == 404
    assert len(read_entries(tmp_path / "feed.atom")) == 1
    assert len(_shown(standins, "cms")) == 1


async def test_website_feed_only_withdrawal(client, tmp_path) -> None:
    account = ChannelAccount(name="website", type="website", display_name="Darmstadt.de",
                             account_id="https://www.darmstadt.de/newsroom/feed.atom")
    feed = tmp_path / "website.atom"
    publisher = publisher_for(account, client=client, feed_path=feed)
    published = await publisher.publish(make_post("website"), idempotency_key="k")

    result = await publisher.withdraw(published.remote_id, remote_url=None,
                                      idempotency_key="recall-1")
    assert result.gone and not result.already_gone
    assert read_entries(feed) == []
    assert read_tombstones(feed)[0]["comment"] == "Zurückgezogen"
    again = await publisher.withdraw(published.remote_id, remote_url=None,
                                     idempotency_key="recall-1")
    assert again.gone and again.already_gone


# --- press e-mail --------------------------------------------------------------------------

RECIPIENTS = ["redaktion@echo-online.example", "newsdesk@hr.example", "lokales@fr.example"]
RELEASE = ("Darmstadt, 15. Mai 2026 – Am Freitag tragen Schülerinnen und Schüler an 12 "
           "Darmstädter Schulen das Trikot ihres Lieblingsvereins.\n\n"
           "Oberbürgermeister Hanno Benz grüßt alle Teilnehmenden.")


class Inbox:
    """aiosmtpd handler: keeps every message; refuses as told (a recipient's RCPT TO once,
    every MAIL FROM) or cuts the connection after the next message's DATA, before its
    250 (the message is kept)."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.rcpt_replies_once: dict[str, str] = {}
        self.mail_reply: str | None = None
        self.cut_after_data = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if self.mail_reply is not None:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.rcpt_replies_once.pop(address, None)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.envelopes.append(envelope)
        if self.cut_after_data:
            self.cut_after_data -= 1
            server.transport.abort()
        return "250 Message accepted for delivery"

    def messages(self) -> list[tuple[str, email.message.EmailMessage]]:
        return [(rcpt, email.message_from_bytes(e.original_content,
                                                policy=email.policy.default))
                for e in self.envelopes for rcpt in e.rcpt_tos]

    def corrections(self) -> list[tuple[str, email.message.EmailMessage]]:
        return [(rcpt, message) for rcpt, message in self.messages()
                if message["Subject"].startswith("Zurückgezogen: ")]


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


def press(port: int, client: httpx.AsyncClient, recipients: list[str] = RECIPIENTS):
    account = ChannelAccount(name="presse", type="email", display_name="Presseverteiler",
                             recipients=recipients, credential={"env": "X"})
    return publisher_for(account, client=client, credential=SecretStr(
        f"smtp://127.0.0.1:{port}?from=presse@darmstadt.de&name=Stadt%20Darmstadt"))


def original(published, post, **overrides) -> dict[str, Any]:
    """What the recall hands over (newsroom/recall.py ``_original``)."""
    return {"text": post.text, "title": post.title, "reason": REASON,
            "recipients": published.raw["recipients"], "published_at": post.publish_at,
            **overrides}


@pytest.mark.slow
async def test_the_correction_goes_to_exactly_the_original_recipients_once(
        smtp, client) -> None:
    inbox, port = smtp
    post = make_post("presse", text=RELEASE)
    published = await press(port, client).publish(post, idempotency_key="k")
    assert len(inbox.messages()) == 3
    # The press list changed since: a new address, one dropped.
    today = press(port, client, [RECIPIENTS[0], RECIPIENTS[1], "neu@darmstaedter.example"])

    result = await withdraw_with_retries(today, published.remote_id, remote_url=None,
                                         idempotency_key="recall-1",
                                         original=original(published, post))
    assert isinstance(result, WithdrawResult)
    assert not result.gone and not result.manual and result.raw["corrected"] is True
    assert result.detail.startswith("correction sent to 3 original recipients")
    corrections = inbox.corrections()
    assert sorted(rcpt for rcpt, _ in corrections) == sorted(RECIPIENTS)
    for rcpt, message in corrections:
        assert message["To"] == rcpt
        assert message["From"] == "Stadt Darmstadt <presse@darmstadt.de>"
        assert message["Subject"] == "Zurückgezogen: Trikottag an Darmstädter Schulen"
        body = message.get_content().replace("\r\n", "\n")
        assert ("die Pressemitteilung „Trikottag an Darmstädter Schulen“ vom 15. Mai 2026 "
                "zurück") in body
        assert f"Grund: {REASON}" in body
        assert ("> Darmstadt, 15. Mai 2026 – Am Freitag tragen Schülerinnen und Schüler an "
                "12 Darmstädter Schulen das Trikot ihres Lieblingsvereins.\n>\n"
                "> Oberbürgermeister Hanno Benz grüßt alle Teilnehmenden.") in body
    assert not any(rcpt == "neu@darmstaedter.example" for rcpt, _ in inbox.messages())

    again = await today.withdraw(published.remote_id, remote_url=None,
                                 idempotency_key="recall-1",
                                 original=original(published, post))
    assert again.raw["sent_now"] == 0 and again.raw["sent_before"] == 3
    assert len(inbox.corrections()) == 3  # nobody mailed twice


@pytest.mark.slow
async def test_without_the_original_recipients_no_correction_goes_out(smtp, client) -> None:
    inbox, port = smtp
    post = make_post("presse", text=RELEASE)
    publisher = press(port, client)
    published = await publisher.publish(post, idempotency_key="k")
    with pytest.raises(PermanentPublishError, match="original recipients"):
        await publisher.withdraw(published.remote_id, remote_url=None,
                                 idempotency_key="recall-1",
                                 original=original(published, post, recipients=[]))
    assert inbox.corrections() == []  # not the account's list either


@pytest.mark.slow
async def test_a_sender_refused_for_good_fails_the_correction(smtp, client) -> None:
    inbox, port = smtp
    post = make_post("presse", text=RELEASE)
    publisher = press(port, client)
    published = await publisher.publish(post, idempotency_key="k")
    inbox.mail_reply = "553 5.7.1 <presse@darmstadt.de>: Sender address rejected"

    with pytest.raises(PermanentPublishError) as refused:
        await withdraw_with_retries(publisher, published.remote_id, remote_url=None,
                                    idempotency_key="recall-1",
                                    original=original(published, post), sleep=Sleeps())
    assert not isinstance(refused.value, RecipientsRefused | CredentialRefused)
    assert "3 of 3 recipients did not get the correction" in str(refused.value)
    assert refused.value.progress == {"correction": True, "delivered": []}
    assert inbox.corrections() == []


@pytest.mark.slow
async def test_a_passing_refusal_is_retried_for_that_recipient_alone(smtp, client) -> None:
    inbox, port = smtp
    post = make_post("presse", text=RELEASE)
    publisher = press(port, client)
    published = await publisher.publish(post, idempotency_key="k")
    inbox.rcpt_replies_once[RECIPIENTS[1]] = "450 4.2.1 Mailbox busy, try again later"

    with pytest.raises(TransientPublishError, match="correction for 1 of 3 recipients") as err:
        await publisher.withdraw(published.remote_id, remote_url=None,
                                 idempotency_key="recall-1",
                                 original=original(published, post))
    assert err.value.progress == {"correction": True,
                                  "delivered": [RECIPIENTS[0], RECIPIENTS[2]]}
    # Another process takes the recall over with what the first one achieved.
    other = press(port, client)
    other.restore_progress("recall-1", err.value.progress)
    result = await other.withdraw(published.remote_id, remote_url=None,
                                  idempotency_key="recall-1",
                                  original=original(published, post))
    assert result.raw["sent_now"] == 1
    assert sorted(rcpt for rcpt, _ in inbox.corrections()) == sorted(RECIPIENTS)


@pytest.mark.slow
async def test_an_address_refused_for_good_is_reported_after_the_others_have_it(
        smtp, client) -> None:
    inbox, port = smtp
    post = make_post("presse", text=RELEASE)
    publisher = press(port, client)
    published = await publisher.publish(post, idempotency_key="k")
    inbox.rcpt_replies_once[RECIPIENTS[2]] = "550 5.1.1 Mailbox unavailable"

    with pytest.raises(RecipientsRefused) as refused:
        await withdraw_with_retries(publisher, published.remote_id, remote_url=None,
                                    idempotency_key="recall-1",
                                    original=original(published, post), sleep=Sleeps())
    assert refused.value.refused == {RECIPIENTS[2]: "RCPT TO: 550 5.1.1 Mailbox unavailable"}
    assert "Tell them of the withdrawal another way" in str(refused.value)
    assert sorted(rcpt for rcpt, _ in inbox.corrections()) == sorted(RECIPIENTS[:2])


@pytest.mark.slow
async def test_a_correction_cut_off_after_its_data_is_ambiguous_and_not_repeated(
        smtp, client) -> None:
    inbox, port = smtp
    post = make_post("presse", text=RELEASE)
    publisher = press(port, client)
    published = await publisher.publish(post, idempotency_key="k")
    inbox.cut_after_data = 1
    sleeps = Sleeps()

    with pytest.raises(AmbiguousPublishError, match="may have arrived") as cut:
        await withdraw_with_retries(publisher, published.remote_id, remote_url=None,
                                    idempotency_key="recall-1",
                                    original=original(published, post), sleep=sleeps)
    assert sleeps == []  # a repeat would mail again
    assert RECIPIENTS[0] in str(cut.value)
    assert sorted(rcpt for rcpt, _ in inbox.corrections()) == sorted(RECIPIENTS)


def test_the_correction_text_leaves_out_a_date_it_does_not_know() -> None:
    text = correction_text(title="Trikottag", reason="", text="Zeile eins\nZeile zwei",
                           published=None, sender="Stadt Darmstadt")
    assert "die Pressemitteilung „Trikottag“ zurück" in text
    assert "Grund: nicht angegeben" in text
    assert "> Zeile eins\n> Zeile zwei" in text
    assert text.rstrip().endswith("Mit freundlichen Grüßen\nStadt Darmstadt")
    assert "vom 15. Mai 2026" in correction_text(
        title="T", reason="r", text="x", published="2026-05-14T23:30:00+00:00")  # Darmstadt


# --- manual channels -----------------------------------------------------------------------


async def test_a_manual_channel_asks_its_owner_to_delete_the_post(client) -> None:
    account = ChannelAccount(name="whatsapp", type="manual", display_name="Stadt Darmstadt",
                             network="whatsapp", owner="amt-kommunikation")
    publisher = publisher_for(account, client=client)
    result = await withdraw_with_retries(
        publisher, "", remote_url="https://whatsapp.com/channel/abc/42",
        idempotency_key="recall-1", original={"title": "Trikottag", "reason": REASON})
    assert result.manual and not result.gone and result.attempts == 1
    assert result.detail == (
        "WhatsApp has no API to take a post down: amt-kommunikation (the channel's owner) "
        "must delete the post „Trikottag“ at https://whatsapp.com/channel/abc/42 by hand "
        "in WhatsApp (Stadt Darmstadt) (channel whatsapp)")
