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
A recipient the server refused, or who was not reached, is a passing failure
(:class:`TransientPublishError`); recipients who got the message are remembered per
idempotency key, so a retry through the same publisher only writes to the others. The
error carries them too (``progress={"delivered": [...]}``): the publishing step records
that with the failed attempt and gives it back through
:meth:`EmailPublisher.restore_progress` before a later run tries again, so even a new
publisher (another run, another worker) writes only to those who did not get it. Nobody
is mailed twice: SMTP itself offers no deduplication (``idempotent_retries = False``), so
when the connection breaks after a message was handed over in full but before the
server confirmed it, that recipient is *unsure* and the attempt raises
:class:`AmbiguousPublishError` (the publication becomes "unknown"; the others are sent
first). A refused login is a :class:`PermanentPublishError` (a credential to renew).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
from newsroom.channels.base import AccountCheck, Publisher, PublishResult
from newsroom.errors import AmbiguousPublishError, PermanentPublishError, TransientPublishError
from newsroom.posts import RenderedPost

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


class EmailPublisher(Publisher):
    channel_type: ClassVar[ChannelType] = ChannelType.EMAIL
    idempotent_retries: ClassVar[bool] = False

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
            try:
                sent, failed, unsure = await asyncio.to_thread(self._send, post, pending)
            except smtplib.SMTPAuthenticationError as exc:
                raise PermanentPublishError(
                    f"{self.channel}: the mail server {self.smtp.host}:{self.smtp.port} "
                    f"refused the login of {self.smtp.user} ({exc.smtp_code} "
                    f"{exc.smtp_error.decode('utf-8', 'replace')}); the credential was "
                    "refused: renew the SMTP password", channel=self.channel,
                    status_code=exc.smtp_code,
                    progress=self._progress(idempotency_key)) from None
            delivered.update(sent)
            if unsure:
                missing = (f"; {', '.join(failed)} did not get it (a retry after "
                           "`--not-published` writes to them too)" if failed else "")
                raise AmbiguousPublishError(
                    f"{self.channel}: the connection to the mail server broke after the "
                    f"press release for {', '.join(unsure)} was handed over, before the "
                    f"server confirmed it: it may have arrived{missing}",
                    channel=self.channel, progress=self._progress(idempotency_key))
            if failed:
                raise TransientPublishError(
                    f"{self.channel}: the mail server did not accept the press release for "
                    f"{len(failed)} of {len(self.account.recipients)} recipients "
                    f"({', '.join(failed)}); a retry writes only to those",
                    channel=self.channel, progress=self._progress(idempotency_key))
        return PublishResult(
            remote_id=idempotency_key, url=None,
            raw={"recipients": list(self.account.recipients), "subject": post.title,
                 "sent_now": len(pending), "sent_before": earlier},
        )

    def restore_progress(self, idempotency_key: str, progress: Mapping[str, Any]) -> None:
        """Remember the recipients an earlier attempt reached (``progress["delivered"]``)."""
        delivered = progress.get("delivered") or ()
        if isinstance(delivered, str) or not isinstance(delivered, Iterable):
            return
        known = set(self.account.recipients)
        self._delivered.setdefault(idempotency_key, set()).update(
            r for r in delivered if isinstance(r, str) and r in known)

    def _progress(self, idempotency_key: str) -> dict[str, Any]:
        delivered = self._delivered.get(idempotency_key, set())
        return {"delivered": [r for r in self.account.recipients if r in delivered]}

    def _message(self, post: RenderedPost, recipient: str) -> EmailMessage:
        message = EmailMessage()
        sender = self.smtp.sender
        message["From"] = formataddr((self.smtp.sender_name, sender)) if (
            self.smtp.sender_name) else sender
        message["To"] = recipient
        message["Subject"] = post.title or ""
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(post.text)
        return message

    def _send(self, post: RenderedPost, recipients: list[str]
              ) -> tuple[list[str], list[str], list[str]]:
        """One message per recipient over one connection (a new one after a break):
        (accepted, refused or not tried, unsure). Unsure: the message was handed over
        in full, then the connection broke or timed out before the server's answer.
        A refused login raises SMTPAuthenticationError."""
        sent: list[str] = []
        failed: list[str] = []
        unsure: list[str] = []
        server: smtplib.SMTP | None = None
        try:
            for index, recipient in enumerate(recipients):
                handed_over = False
                if server is None:
                    try:
                        server = self._connect()
                    except smtplib.SMTPAuthenticationError:
                        raise
                    except OSError:  # unreachable: the rest need not wait for it too
                        failed.extend(recipients[index:])
                        break

                    def tracking_send(data: Any, send: Any = server.send) -> None:
                        nonlocal handed_over
                        send(data)
                        if isinstance(data, bytes) and data.endswith(b"\r\n.\r\n"):
                            handed_over = True  # the end of DATA is out

                    server.send = tracking_send  # type: ignore[method-assign]
                try:
                    server.send_message(self._message(post, recipient),
                                        from_addr=self.smtp.sender, to_addrs=[recipient])
                    sent.append(recipient)
                except OSError as exc:  # smtplib's errors are OSErrors too
                    # The server answered (a refusal): nothing ambiguous about it.
                    answered = isinstance(exc, (smtplib.SMTPResponseException,
                                                smtplib.SMTPRecipientsRefused))
                    (unsure if handed_over and not answered else failed).append(recipient)
                    if not answered or getattr(exc, "smtp_code", 0) == 421:
                        server = _close(server)  # the connection is gone: a new one
        finally:
            _close(server)
        return sent, failed, unsure

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
            return AccountCheck(channel=self.channel, ok=False, identity=identity,
                                message=exc.smtp_error.decode("utf-8", "replace"))
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientPublishError(
                f"{self.channel}: cannot reach the mail server {self.smtp.host}:"
                f"{self.smtp.port} ({type(exc).__name__})", channel=self.channel) from exc
        return AccountCheck(channel=self.channel, ok=True, identity=identity,
                            raw={"recipients": len(self.account.recipients)})


def _close(server: smtplib.SMTP | None) -> None:
    """Say goodbye if the connection still stands; always None (the new state)."""
    if server is None:
        return None
    try:
        server.quit()
    except (OSError, smtplib.SMTPException):
        server.close()
    return None
