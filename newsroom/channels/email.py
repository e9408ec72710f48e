"""The press release by e-mail to the account's ``recipients``, over SMTP.

Subject is the post's title, the body its text (plain text, as rendered). Each recipient
gets their own message, so nobody on the press list sees the others' addresses.

The SMTP settings come from the credential, an SMTP URL (see
:mod:`newsroom.channels.credentials`)::

    smtp://user:password@host:25?from=presse@darmstadt.de&name=Stadt%20Darmstadt
    smtp+starttls://…:587   smtps://…:465

or, when the credential is only the password, from the account's ``base_url`` holding
the same URL without it. The sender is ``from=``, else the account's ``account_id``,
else the user name if it is an address.

The messages go out one after the other over one connection (a new one after a break).
Recipients who got the message are remembered per idempotency key, so a retry through
the same publisher only writes to the others. The error carries them too
(``progress={"delivered": [...]}``): the publishing step records that with the failed
attempt and gives it back through :meth:`EmailPublisher.restore_progress` before a later
run (or the office's ``newsroom channels retry ID``) tries again, so even a new publisher
(another run, another worker) writes only to those who did not get it. Nobody is mailed
twice: SMTP itself offers no deduplication (``idempotent_retries = False``).

What the server's replies mean here (RFC 5321 §4.2.1: 4yz transient, 5yz permanent —
repeating the same command will not help; each transaction has one recipient, so the
"too many recipients" 552 of §4.5.3.1.10 cannot arise):

- the connection breaks after a message was handed over in full, before the server
  confirmed it: that recipient is *unsure*; the others are sent first, then the attempt
  raises :class:`AmbiguousPublishError` (the publication becomes "unknown", the office is
  alerted);
- a 5yz to the session itself — the greeting, EHLO, STARTTLS, AUTH or MAIL FROM — holds
  for every recipient: the rest are not tried, :class:`PermanentPublishError` with the
  server's words (to AUTH: :class:`CredentialRefused`, renew the password);
- a 4yz to anything (421, 450, 451, 452; 454 to AUTH), or a server not reached: a passing
  failure for the recipients it hit (:class:`TransientPublishError`, retried in the run
  and by the next run);
- a 5yz to RCPT TO or to DATA refuses that one recipient for good (550 mailbox
  unavailable, 553 mailbox name not allowed, 554 transaction failed): the others still
  get it, each once. While some recipient's failure is only passing the attempt is a
  passing failure (its message names the refused addresses too), so the run's retries
  reach those recipients; a refused address is asked again then, which mails nobody.
  Once everyone else has it, the attempt raises :class:`RecipientsRefused`: the
  publication is failed for good and the office is alerted („Presseverteiler: Adresse
  abgelehnt“) with the addresses and the server's replies, to correct them in the
  account's ``recipients`` (``registry/channels.yaml``) and then retry — which writes
  only to those who did not get it.

A sent e-mail cannot be taken back. A recall (:meth:`EmailPublisher.withdraw`) sends a
correction instead — „Zurückgezogen: <title>“, the reason and the withdrawn text quoted —
to exactly the recipients who received the release (``original["recipients"]``, as the
publication recorded them; never the account's current list), over the same path: one
message each, the same bookkeeping per recipient (per the recall's idempotency key), the
same errors. A repeat would mail again: ``idempotent_withdrawals = False``.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import apprise

with warnings.catch_warnings():
    # apprise's e-mail plugin loads its PGP helper, which imports the stdlib's deprecated
    # `imghdr` (for PGPy) on first use; load it here, once, without that one warning.
    warnings.filterwarnings("ignore", message="'imghdr' is deprecated",
                            category=DeprecationWarning)
    import apprise.utils.pgp  # noqa: F401

from newsroom.catalog.models import ChannelType
from newsroom.channels.base import AccountCheck, Publisher, PublishResult, WithdrawResult
from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    RecipientsRefused,
    TransientPublishError,
)
from newsroom.posts import RenderedPost
from newsroom.timeutil import BERLIN

_SCHEMES = {"smtp": ("mailto", None, 25), "smtp+starttls": ("mailtos", "starttls", 587),
            "smtps": ("mailtos", "ssl", 465)}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    mode: str | None  # None (plain), "starttls" or "ssl"
    user: str
    password: str = field(repr=False)
    sender: str
    sender_name: str = ""

    def apprise_url(self, recipient: str) -> str:
        scheme = "mailtos" if self.mode else "mailto"
        auth = ""
        if self.user:
            auth = quote(self.user, safe="")
            if self.password:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        query = {"from": self.sender, "to": recipient, "smtp": self.host}
        if self.sender_name:
            query["name"] = self.sender_name
        if self.mode:
            query["mode"] = self.mode
        return f"{scheme}://{auth}{self.host}:{self.port}/?{urlencode(query, quote_via=quote)}"


def parse_smtp_url(url: str, *, password: str | None = None, sender: str | None = None
                   ) -> SmtpSettings:
    """Read an ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise ValueError("expected smtp://, smtp+starttls:// or smtps://user:password@host:port")
    _, mode, default_port = _SCHEMES[parts.scheme]
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    user = unquote(parts.username or "")
    from_address = query.get("from") or sender or (user if "@" in user else "")
    if not from_address:
        raise ValueError("name the sender: ?from=presse@example.org in the SMTP URL")
    return SmtpSettings(
        host=parts.hostname, port=parts.port or default_port, mode=mode, user=user,
        password=password if password is not None else unquote(parts.password or ""),
        sender=from_address, sender_name=query.get("name", ""),
    )


# The command a refusal answered, by smtplib's error (a plain SMTPResponseException comes
# from STARTTLS, the one other command that _connect sends).
_COMMANDS: tuple[tuple[type[smtplib.SMTPResponseException], str], ...] = (
    (smtplib.SMTPAuthenticationError, "AUTH"), (smtplib.SMTPSenderRefused, "MAIL FROM"),
    (smtplib.SMTPDataError, "DATA"), (smtplib.SMTPConnectError, "greeting"),
    (smtplib.SMTPHeloError, "EHLO"))


@dataclass(frozen=True)
class _Reply:
    """A negative reply of the mail server, as people read it: ``RCPT TO: 550 5.1.1 …``."""

    command: str
    code: int
    text: str

    @classmethod
    def of(cls, command: str, code: int, words: bytes | str) -> _Reply:
        text = words.decode("utf-8", "replace") if isinstance(words, bytes) else words
        return cls(command, code, " ".join(text.split()))  # a multiline reply on one line

    @classmethod
    def to(cls, exc: smtplib.SMTPResponseException) -> _Reply:
        command = next((name for kind, name in _COMMANDS if isinstance(exc, kind)),
                       "STARTTLS")
        return cls.of(command, exc.smtp_code, exc.smtp_error)

    @property
    def permanent(self) -> bool:
        """5yz, "permanent negative completion" (RFC 5321 §4.2.1): repeating the same
        command will not help; 4yz is transient."""
        return 500 <= self.code <= 599

    def __str__(self) -> str:
        return f"{self.command}: {self.code} {self.text}"


@dataclass
class _Delivery:
    """What one pass over the pending recipients came to."""

    sent: list[str] = field(default_factory=list)
    # Not reached, or refused for now (4yz): address → why. A retry may reach them.
    passing: dict[str, str] = field(default_factory=dict)
    # Refused for good (5yz to RCPT TO or to DATA): address → the reply.
    refused: dict[str, _Reply] = field(default_factory=dict)
    # Handed over in full, then the connection broke before the answer: may have arrived.
    unsure: list[str] = field(default_factory=list)
    # A 5yz to the session itself (greeting, EHLO, STARTTLS, AUTH, MAIL FROM): nobody can
    # be mailed; the recipients after it were not tried.
    stopped: _Reply | None = None

    def answered(self, recipient: str, reply: _Reply) -> None:
        if reply.permanent:
            self.refused[recipient] = reply
        else:
            self.passing[recipient] = str(reply)

    def why_not(self, recipient: str) -> str:
        if recipient in self.refused:
            return str(self.refused[recipient])
        return self.passing.get(recipient, "not tried")


def _listing(why: Mapping[str, object]) -> str:
    """``a@x (RCPT TO: 550 …), b@y (not reached …)``."""
    return ", ".join(f"{address} ({reason})" for address, reason in why.items())


@dataclass(frozen=True)
class _Mailing:
    """What one sending is, for its errors: the release or a recall's correction."""

    what: str  # "press release", "correction"
    recipients: tuple[str, ...]  # everyone it is for
    progress: dict[str, Any]  # who has it, for PublishError.progress
    # What to do about an address refused for good: once the others have it, and while
    # some recipient's failure is only passing.
    fix_refused: str
    fix_refused_later: str
    retry_unsure: str  # how a retry reaches those a cut connection left out


class EmailPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.EMAIL
    idempotent_retries: ClassVar[bool] = False
    # A correction that is sent twice reaches everyone twice: an ambiguous one is not
    # repeated (withdraw_with_retries), and each key mails each recipient once.
    idempotent_withdrawals: ClassVar[bool] = False
    journals_sends: ClassVar[bool] = False  # SMTP, not _request: a killed send stays unknown

    def __init__(self, *args: Any, smtp_timeout: float = 15.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.smtp_timeout = smtp_timeout  # seconds for each answer of the mail server
        if not self.account.recipients:
            raise PermanentPublishError(
                f"{self.channel}: the account has no `recipients`; list the press "
                "distribution addresses in the channel registry", channel=self.channel)
        secret = self._secret()
        try:
            if secret.startswith(tuple(f"{scheme}://" for scheme in _SCHEMES)):
                self.smtp = parse_smtp_url(secret, sender=self.account.account_id)
            else:
                self.smtp = parse_smtp_url(self.account.base_url or "", password=secret,
                                           sender=self.account.account_id)
        except ValueError as exc:
            raise PermanentPublishError(
                f"{self.channel}: cannot read the SMTP settings ({exc}); see "
                "newsroom.channels.credentials for the format", channel=self.channel) from None
        self.tag = f"newsroom-email-{self.account.name}"
        self._delivered: dict[str, set[str]] = {}
        self._corrected: dict[str, set[str]] = {}  # a recall's key -> who has its correction

    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        self._check_post(post)
        if not post.title:
            raise PermanentPublishError(
                f"{self.channel}: a press release needs a title (the subject); set the "
                "campaign's title", channel=self.channel)
        delivered = self._delivered.setdefault(idempotency_key, set())
        pending = [r for r in self.account.recipients if r not in delivered]
        earlier = len(self.account.recipients) - len(pending)
        if pending:
            delivery = await asyncio.to_thread(
                self._send, lambda recipient: self._message(post, recipient), pending)
            delivered.update(delivery.sent)
            self._raise_for(delivery, pending, idempotency_key)
        return PublishResult(
            remote_id=idempotency_key, url=None,
            raw={"recipients": list(self.account.recipients), "subject": post.title,
                 "sent_now": len(pending), "sent_before": earlier},
        )

    def _release(self, idempotency_key: str) -> _Mailing:
        return _Mailing(
            "press release", tuple(self.account.recipients), self._progress(idempotency_key),
            fix_refused="Correct or remove the address in the account's `recipients` "
                        "(registry/channels.yaml), then retry: only those who did not get "
                        "it are written to",
            fix_refused_later="fix that in the account's `recipients`; reported once the "
                              "others have it",
            retry_unsure="a retry after `--not-published` writes to them too")

    def _raise_for(self, delivery: _Delivery, pending: list[str], idempotency_key: str,
                   mailing: _Mailing | None = None) -> None:
        """The error for everyone in ``pending`` who did not get the release (or the
        correction: ``mailing``), if anyone did not: unsure before a refusal of the
        session, before a passing failure, before refused addresses (see the module's
        docstring)."""
        mailing = mailing or self._release(idempotency_key)
        progress, what = mailing.progress, mailing.what
        total = len(mailing.recipients)
        missing = {r: delivery.why_not(r) for r in pending
                   if r not in delivery.sent and r not in delivery.unsure}
        if delivery.unsure:
            also = (f"; {_listing(missing)} did not get it ({mailing.retry_unsure})"
                    if missing else "")
            raise AmbiguousPublishError(
                f"{self.channel}: the connection to the mail server broke after the "
                f"{what} for {', '.join(delivery.unsure)} was handed over, before the "
                f"server confirmed it: it may have arrived{also}",
                channel=self.channel, progress=progress)
        if delivery.stopped is not None:
            raise self._session_refused(delivery.stopped, len(missing), progress,
                                        total=total, what=what)
        if delivery.passing:
            refused = (f"; refused for good: {_listing(delivery.refused)} "
                       f"({mailing.fix_refused_later})" if delivery.refused else "")
            raise TransientPublishError(
                f"{self.channel}: the mail server did not accept the {what} for "
                f"{len(delivery.passing)} of {total} recipients "
                f"({_listing(delivery.passing)}); a retry writes only to those who did not "
                f"get it{refused}", channel=self.channel, progress=progress)
        if delivery.refused:
            first = next(iter(delivery.refused.values()))
            raise RecipientsRefused(
                f"{self.channel}: the mail server refused the {what} for good for "
                f"{len(delivery.refused)} of {total} recipients ({_listing(delivery.refused)}); "
                f"everyone else got it. {mailing.fix_refused}", channel=self.channel,
                status_code=first.code,
                network_message=first.text, progress=progress,
                refused={address: str(reply) for address, reply in delivery.refused.items()})

    def _session_refused(self, reply: _Reply, not_sent: int, progress: dict[str, Any], *,
                         total: int | None = None, what: str = "press release"
                         ) -> PermanentPublishError:
        """A 5yz to the session itself: nobody further can be mailed until it is fixed."""
        server = f"the mail server {self.smtp.host}:{self.smtp.port}"
        total = len(self.account.recipients) if total is None else total
        nobody = f"{not_sent} of {total} recipients did not get the {what}"
        details: dict[str, Any] = {"channel": self.channel, "status_code": reply.code,
                                   "network_message": reply.text, "progress": progress}
        if reply.command == "AUTH":
            return CredentialRefused(
                f"{self.channel}: {server} refused the login of {self.smtp.user} "
                f"({reply.code} {reply.text}); the credential was refused: renew the SMTP "
                "password", **details)
        if reply.command == "MAIL FROM":
            return PermanentPublishError(
                f"{self.channel}: {server} refused the sender {self.smtp.sender} for good "
                f"({reply}); {nobody}. Check the sender (`from=` in the SMTP URL, else the "
                "account's `account_id`) and that the SMTP account may send as it, then "
                "retry", **details)
        return PermanentPublishError(
            f"{self.channel}: {server} refused the session for good ({reply}); {nobody}. "
            "Check the SMTP settings (host, port, smtp+starttls:// or smtps://) with the mail "
            "server's administrators, then retry", **details)

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Send the correction (see the module's docstring) to ``original["recipients"]``.

        The answer, when nobody is left without it: ``gone=False`` (the e-mails are out
        there), ``manual=False`` (nobody has to do anything more), ``raw["corrected"]``
        True and ``detail`` "correction sent to N original recipients" — the recall's
        "corrected". A failure is never an answer: it raises, as publishing does
        (:class:`TransientPublishError` for a passing one — a retry with the same key
        writes only to those who did not get it; :class:`RecipientsRefused`,
        :class:`PermanentPublishError`, :class:`CredentialRefused`;
        :class:`AmbiguousPublishError` when the connection broke after a correction was
        handed over: it may have arrived, and is not sent again). Each recipient gets the
        correction once per ``idempotency_key`` in this publisher (``restore_progress``
        takes the error's ``progress`` back for another). Without the original recipients
        nothing is sent: the account's list of today may name others."""
        original = original or {}
        recipients = _addresses(original.get("recipients"))
        if not recipients:
            raise PermanentPublishError(
                f"{self.channel}: the recall does not say who received the press release "
                "(original recipients); a correction goes to exactly them, never to the "
                "account's current list. Find the recipients in the publication's audit "
                "(publication.published) and send the correction by hand",
                channel=self.channel)
        title = str(original.get("title") or "").strip() or "Pressemitteilung"
        subject = f"Zurückgezogen: {title}"
        body = correction_text(title=title, reason=str(original.get("reason") or ""),
                               text=str(original.get("text") or ""),
                               published=original.get("published_at", original.get("date")),
                               sender=self.smtp.sender_name or self.account.display_name)
        delivered = self._corrected.setdefault(idempotency_key, set())
        pending = [r for r in recipients if r not in delivered]
        if pending:
            delivery = await asyncio.to_thread(
                self._send, lambda recipient: self._compose(recipient, subject, body),
                pending)
            delivered.update(delivery.sent)
            self._raise_for(delivery, pending, idempotency_key, _Mailing(
                "correction", tuple(recipients),
                {"correction": True, "delivered": [r for r in recipients if r in delivered]},
                fix_refused="Tell them of the withdrawal another way: the correction "
                            "cannot reach that address (a retry writes only to those who "
                            "did not get it)",
                fix_refused_later="tell them another way; reported once the others have it",
                retry_unsure="send the correction to them by hand"))
        return WithdrawResult(
            gone=False, manual=False,
            detail=f"correction sent to {len(recipients)} original recipients "
                   f"(„{subject}“); the press release itself cannot be taken back",
            raw={"corrected": True, "recipients": recipients, "subject": subject,
                 "sent_now": len(pending), "sent_before": len(recipients) - len(pending)})

    def restore_progress(self, idempotency_key: str, progress: Mapping[str, Any]) -> None:
        """Remember the recipients an earlier attempt reached (``progress["delivered"]``):
        of the release (only the account's recipients count), or with
        ``progress["correction"]`` of a recall's correction (its original recipients)."""
        delivered = progress.get("delivered") or ()
        if isinstance(delivered, str) or not isinstance(delivered, Iterable):
            return
        if progress.get("correction") is True:
            self._corrected.setdefault(idempotency_key, set()).update(
                r for r in delivered if isinstance(r, str) and "@" in r)
            return
        known = set(self.account.recipients)
        self._delivered.setdefault(idempotency_key, set()).update(
            r for r in delivered if isinstance(r, str) and r in known)

    def _progress(self, idempotency_key: str) -> dict[str, Any]:
        delivered = self._delivered.get(idempotency_key, set())
        return {"delivered": [r for r in self.account.recipients if r in delivered]}

    def _message(self, post: RenderedPost, recipient: str) -> EmailMessage:
        return self._compose(recipient, post.title or "", post.text)

    def _compose(self, recipient: str, subject: str, text: str) -> EmailMessage:
        message = EmailMessage()
        sender = self.smtp.sender
        message["From"] = formataddr((self.smtp.sender_name, sender)) if (
            self.smtp.sender_name) else sender
        message["To"] = recipient
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(text)
        return message

    def _send(self, compose: Callable[[str], EmailMessage], recipients: list[str]
              ) -> _Delivery:
        """One message per recipient (``compose(recipient)``) over one connection (a new
        one after a break); what came of each (see :class:`_Delivery`)."""
        delivery = _Delivery()
        server: smtplib.SMTP | None = None
        try:
            for index, recipient in enumerate(recipients):
                handed_over = False
                if server is None:
                    try:
                        server = self._connect()
                    except smtplib.SMTPResponseException as exc:  # greeting, EHLO, AUTH, …
                        reply = _Reply.to(exc)
                        if reply.permanent:
                            delivery.stopped = reply
                        else:  # the rest need not wait for it too
                            delivery.passing.update(dict.fromkeys(recipients[index:],
                                                                  str(reply)))
                        break
                    except OSError as exc:  # unreachable: the rest need not wait for it too
                        delivery.passing.update(dict.fromkeys(
                            recipients[index:], f"not reached ({type(exc).__name__})"))
                        break

                    # ``s``: the name of SMTP.send's parameter, which it stands in for.
                    def tracking_send(s: Any, send: Any = server.send) -> None:
                        nonlocal handed_over
                        send(s)
                        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
                            handed_over = True  # the end of DATA is out

                    # Wrapping a method of this one connection on purpose.
                    server.send = tracking_send  # type: ignore[method-assign]
                try:
                    server.send_message(compose(recipient),
                                        from_addr=self.smtp.sender, to_addrs=[recipient])
                    delivery.sent.append(recipient)
                except smtplib.SMTPRecipientsRefused as exc:  # to RCPT TO: this address
                    code, words = exc.recipients[recipient]
                    delivery.answered(recipient, _Reply.of("RCPT TO", code, words))
                except smtplib.SMTPDataError as exc:  # to DATA: this recipient's message
                    delivery.answered(recipient, _Reply.to(exc))
                except smtplib.SMTPResponseException as exc:  # to MAIL FROM: the sender
                    reply = _Reply.to(exc)
                    if reply.permanent:  # for everyone: the rest are not tried
                        delivery.stopped = reply
                        break
                    delivery.passing[recipient] = str(reply)
                except OSError as exc:  # no answer (smtplib's own errors are OSErrors too)
                    if handed_over:
                        delivery.unsure.append(recipient)
                    else:
                        delivery.passing[recipient] = f"not reached ({type(exc).__name__})"
                    _close(server)  # the connection is gone: a new one
                    server = None
                    continue
                if server.sock is None:  # smtplib closed it after a 421: a new one
                    server = None
        finally:
            _close(server)
        return delivery

    def _connect(self) -> smtplib.SMTP:
        smtp = self.smtp
        context = ssl.create_default_context()
        timeout = self.smtp_timeout
        server = (smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
                  if smtp.mode == "ssl" else smtplib.SMTP(smtp.host, smtp.port, timeout=timeout))
        try:
            if smtp.mode == "starttls":
                server.starttls(context=context)
            if smtp.user:
                server.login(smtp.user, smtp.password)
        except BaseException:
            _close(server)
            raise
        return server

    def _login(self) -> None:
        server = self._connect()
        try:
            server.noop()
        finally:
            _close(server)

    async def _check(self) -> AccountCheck:
        identity = f"{self.smtp.sender} via {self.smtp.host}:{self.smtp.port}"
        try:
            await asyncio.to_thread(self._login)
        except smtplib.SMTPAuthenticationError as exc:
            words = exc.smtp_error  # bytes as smtplib raises it (typed bytes | str)
            return AccountCheck(channel=self.channel, ok=False, identity=identity,
                                message=words.decode("utf-8", "replace")
                                if isinstance(words, bytes) else words)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientPublishError(
                f"{self.channel}: cannot reach the mail server {self.smtp.host}:"
                f"{self.smtp.port} ({type(exc).__name__})", channel=self.channel) from exc
        return AccountCheck(channel=self.channel, ok=True, identity=identity,
                            raw={"recipients": len(self.account.recipients)})


def _addresses(value: Any) -> list[str]:
    """The addresses in ``value`` (a list of strings), each once, in their order."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        return []
    seen: dict[str, None] = {}
    for item in value:
        if isinstance(item, str) and "@" in item.strip():
            seen.setdefault(item.strip(), None)
    return list(seen)


def _german_date(value: Any) -> str:
    """``15. Mai 2026`` for a date, a datetime (naive: UTC; the day in Darmstadt) or an
    ISO 8601 string; "" for anything else."""
    from babel.dates import format_date

    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            try:
                value = date.fromisoformat(value)
            except ValueError:
                return ""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(BERLIN).date()
    if not isinstance(value, date):
        return ""
    return format_date(value, "d. MMMM yyyy", locale="de_DE")


def correction_text(*, title: str, reason: str, text: str, published: Any = None,
                    sender: str = "") -> str:
    """The German body of a recall's correction: the release of ``published`` (a date,
    datetime or ISO string; left out if unknown) is withdrawn, why, and its text quoted."""
    when = _german_date(published)
    release = f"die Pressemitteilung „{title}“" + (f" vom {when}" if when else "")
    quoted = "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines())
    parts = [
        "Sehr geehrte Damen und Herren,",
        f"hiermit ziehen wir {release} zurück. Bitte veröffentlichen Sie sie nicht "
        "und verwenden Sie sie nicht weiter.",
        f"Grund: {reason.strip() or 'nicht angegeben'}",
    ]
    if quoted:
        parts.append(f"Zurückgezogen ist diese Pressemitteilung:\n\n{quoted}")
    parts.append("Mit freundlichen Grüßen" + (f"\n{sender}" if sender else ""))
    return "\n\n".join(parts) + "\n"


def _close(server: smtplib.SMTP | None) -> None:
    """Say goodbye if the connection still stands."""
    if server is None:
        return
    try:
        server.quit()
    except (OSError, smtplib.SMTPException):
        server.close()
