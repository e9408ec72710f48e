"""Approval e-mails through apprise to a real SMTP server (aiosmtpd): once per person,
text and HTML parts with the short link; the salutation from the registry, the channels as
people know them, a button; reminders at 24h and 2h once each; the deadline notice to the
Amt für Kommunikation and escalate_to."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from apprise.conversion import convert_between
from approval_testkit import (
    BEFORE,
    DEADLINE,
    DEPUTY_DAY,
    LABELS_CAMPAIGN,
    Outbox,
    actions,
    add_labels_campaign,
    build_catalog,
    load,
    requests_by_person,
    store_posts,
)
from mailkit import parts

from newsroom import approval, store
from newsroom.notify import AppriseNotifier

BASE = "https://newsroom.example.org"
LINK = re.compile(r"https://newsroom\.example\.org/freigabe/\d+-[A-Za-z0-9_-]{22}"
                  r"(?![A-Za-z0-9_-])")
# The button: a table cell with a background colour around a link (bulletproof markup).
BUTTON = re.compile(r'<td[^>]*bgcolor="#[0-9a-f]{6}"[^>]*>\s*<a href="([^"]+)"[^>]*>'
                    r"Prüfen und entscheiden</a>")


@pytest.mark.slow
def test_notify_twice_sends_one_multipart_mail_each(sqlite_engine, catalog, signer, smtp):
    inbox, smtp_url = smtp
    notifier = AppriseNotifier.for_directory(catalog.directory, smtp_url)
    occurrence_id = store_posts(sqlite_engine, catalog, "t-quorum")
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    kwargs = dict(occurrence_id=occurrence_id, notifier=notifier, signer=signer,
                  base_url=BASE, now=BEFORE)
    assert approval.notify_approvers(sqlite_engine, catalog, **kwargs) == [
        "benz", "akdeniz", "feldmann"]
    assert approval.notify_approvers(sqlite_engine, catalog, **kwargs) == []
    messages = inbox.messages()
    assert sorted(rcpt[0] for rcpt, _ in messages) == sorted([
        "oberbuergermeister@example.org", "buergermeisterin@example.org",
        "stadtkaemmerer@example.org"])
    _, message = messages[0]
    assert message["Subject"].startswith("Freigabe erbeten: Testaufruf t-quorum – 10. März 2027")
    plain, html = parts(message)
    [link] = set(LINK.findall(plain))
    assert set(LINK.findall(html)) == {link}, html
    assert "Freigabe bis" in plain
    assert "Mastodon" in plain, plain
    assert "nur die Namen derer" in plain
    token = link.rsplit("/", 1)[1]
    assert approval.check_link(sqlite_engine, signer, token, now=BEFORE).request.person_id in (
        "benz", "akdeniz", "feldmann")
    assert actions(sqlite_engine, "t-quorum").count("approval.notified") == 3


@pytest.fixture
def labels_catalog(tmp_path: Path):
    root = build_catalog(tmp_path / "campaigns")
    add_labels_campaign(root)
    return load(root)


@pytest.mark.slow
def test_the_mail_greets_as_the_registry_says_and_names_channels_as_people_know_them(
        sqlite_engine, labels_catalog, signer, smtp):
    inbox, smtp_url = smtp
    catalog = labels_catalog
    notifier = AppriseNotifier.for_directory(catalog.directory, smtp_url)
    occurrence_id = store_posts(sqlite_engine, catalog, LABELS_CAMPAIGN)
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    assert approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                                     notifier=notifier, signer=signer, base_url=BASE,
                                     now=BEFORE) == ["benz", "akdeniz", "neumann"]
    requests = requests_by_person(sqlite_engine, occurrence_id)
    greetings = {"buergermeisterin@example.org": "Sehr geehrte Frau Bürgermeisterin Akdeniz,",
                 "oberbuergermeister@example.org": "Sehr geehrter Herr Oberbürgermeister Benz,",
                 # no salutation in the registry: the default
                 "neumann@example.org": "Guten Tag Paula Neumann,"}
    for (address, greeting), person in zip(greetings.items(), ["akdeniz", "benz", "neumann"],
                                           strict=True):
        [message] = inbox.to(address)
        plain, html = parts(message)
        assert plain.startswith(greeting), plain[:80]
        assert f">{greeting}</p>" in html
        assert "Guten Tag Bürgermeisterin" not in plain + html
        # The short link, in both parts, and behind the button; it opens this person's request.
        [link] = set(LINK.findall(plain))
        assert len(link) < 70 and set(LINK.findall(html)) == {link}
        assert BUTTON.findall(html) == [link], html
        target = approval.check_link(sqlite_engine, signer, link.rsplit("/", 1)[1], now=BEFORE)
        assert target.request.id == requests[person].id
        # The channels as people know them: network and account, never internal ids.
        channels = ("Kanäle: Wissenschaftsstadt Darmstadt (LinkedIn), Mastodon "
                    "(@darmstadt@social.example.org), E-Mail (Presseverteiler) und Darmstadt "
                    "informiert (Telegram)")
        assert channels in plain, plain
        assert channels.replace("Kanäle:", "<strong>Kanäle:</strong>") in html
        for internal in ("(Darmstadt informiert (Telegram))", "Linkedin", "Presse ",
                         "mastodon ·", "presse ·"):
            assert internal not in plain + html, internal


def test_a_deputy_is_told_for_whom_below_their_own_salutation(sqlite_engine, catalog, signer):
    outbox = Outbox()
    occurrence_id = store_posts(sqlite_engine, catalog, "t-deputy", DEPUTY_DAY)
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                              notifier=outbox, signer=signer, base_url=BASE, now=BEFORE)
    [mail] = outbox.to("bergmann")
    assert mail["text"].startswith("Sehr geehrter Herr Stadtrat Bergmann,\n")
    line = "Sie werden in Vertretung für Stadträtin Miriam Okafor angefragt."
    assert line in mail["text"] and line in mail["html"]


def test_reminders_once_each_and_deadline_notice(sqlite_engine, catalog, signer):
    outbox = Outbox()
    occurrence_id = store_posts(sqlite_engine, catalog, "t-all-escalate")
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                              notifier=outbox, signer=signer, base_url="https://x", now=BEFORE)
    request = requests_by_person(sqlite_engine, occurrence_id)["benz"]
    token = approval.approval_link(signer, request, "https://x").rsplit("/", 1)[1]
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


class _Recording(AppriseNotifier):
    """The real notifier, keeping what Newsroom handed it."""

    sent: list[tuple[str, str, str, str | None]]

    def notify(self, tag, subject, body_text, body_html=None, **kwargs):
        self.sent = [*getattr(self, "sent", []), (tag, subject, body_text, body_html)]
        return super().notify(tag, subject, body_text, body_html, **kwargs)


@pytest.mark.slow
def test_the_text_part_is_newsrooms_own_text_not_a_conversion_of_the_html(
        sqlite_engine, labels_catalog, signer, smtp):
    inbox, smtp_url = smtp
    catalog = labels_catalog
    notifier = _Recording.for_directory(catalog.directory, smtp_url)
    occurrence_id = store_posts(sqlite_engine, catalog, LABELS_CAMPAIGN)
    approval.open_gate(sqlite_engine, catalog, occurrence_id=occurrence_id, now=BEFORE)
    approval.notify_approvers(sqlite_engine, catalog, occurrence_id=occurrence_id,
                              notifier=notifier, signer=signer, base_url=BASE, now=BEFORE)
    [(tag, subject, text, html_body)] = [s for s in notifier.sent if s[0] == "akdeniz"]
    [message] = inbox.to("buergermeisterin@example.org")
    assert message.get_content_type() == "multipart/alternative"
    plain, html = (part.replace("\r\n", "\n") for part in parts(message))
    # Exactly the text Newsroom wrote (apprise's conversion of the HTML would differ:
    # the button's words, the table of facts, the posts' blocks).
    assert plain.rstrip("\n") == text.rstrip("\n")
    assert convert_between("html", "text", html_body).rstrip("\n") != text.rstrip("\n")
    assert html.rstrip("\n") == html_body.replace("\r\n", "\n").rstrip("\n")
    [link] = set(LINK.findall(plain))
    assert f"\n{link}\n" in plain  # the link on a line of its own, whole
    # Mail without HTML, and other apprise users, keep apprise's own behaviour.
    from newsroom import notify

    assert notify._OWN_TEXT == {}
    assert notify._text_of_html("html", "text", "<p>a<br>b</p>") == convert_between(
        "html", "text", "<p>a<br>b</p>")
