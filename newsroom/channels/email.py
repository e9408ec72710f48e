"""The press release by e-mail to the account's ``recipients``, sent through apprise.

Subject is the post's title, the body its text (plain text, as rendered). Each recipient
gets their own message (apprise sends one per target), so nobody on the press list sees
the others' addresses.

The SMTP settings come from the credential, an SMTP URL (see
:mod:`newsroom.channels.credentials`)::

    smtp://user:password@host:25?from=presse@darmstadt.de&name=Stadt%20Darmstadt
    smtp+starttls://…:587   smtps://…:465

or, when the credential is only the password, from the account's ``base_url`` holding
the same URL without it. The sender is ``from=``, else the account's ``account_id``,
else the user name if it is an address.

Each recipient is its own apprise service with a tag of its own and a common tag, and
``notify`` is always called with the common tag (apprise notifies *every* service when
called without a tag). A failed send raises :class:`TransientPublishError`; recipients
who got the message are remembered per idempotency key, so a retry through the same
publisher only writes to the others. The error carries them too
(``progress={"delivered": [...]}``): the publishing step records that with the failed
attempt and gives it back through :meth:`EmailPublisher.restore_progress` before a
later run tries again, so even a new publisher (another run, another worker) writes only
to those who did not get it. Nobody is mailed twice. SMTP itself offers no
deduplication: ``idempotent_retries = False`` (an attempt cut off mid-send becomes
"unknown").
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
from newsroom.errors import PermanentPublishError, TransientPublishError
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

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
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
            sent, failed = await asyncio.to_thread(self._send, post, pending)
            delivered.update(sent)
            if failed and not sent and self.smtp.user:
                await self._refuse_if_login_fails(idempotency_key)
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

    async def _refuse_if_login_fails(self, idempotency_key: str) -> None:
        """Nothing went out: if the server refuses the login, that is no passing fault
        (apprise does not say why it failed), but a credential to renew."""
        try:
            await asyncio.to_thread(self._login)
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentPublishError(
                f"{self.channel}: the mail server {self.smtp.host}:{self.smtp.port} refused "
                f"the login of {self.smtp.user} "
                f"({exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}); the "
                "credential was refused: renew the SMTP password",
                channel=self.channel, status_code=exc.smtp_code,
                progress=self._progress(idempotency_key)) from None
        except (OSError, smtplib.SMTPException):
            return

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

    def _send(self, post: RenderedPost, recipients: list[str]) -> tuple[list[str], list[str]]:
        notifier = apprise.Apprise()
        by_tag = {}
        for index, recipient in enumerate(recipients):
            own_tag = f"{self.tag}-{index}"
            if not notifier.add(self.smtp.apprise_url(recipient), tag=[self.tag, own_tag]):
                raise PermanentPublishError(
                    f"{self.channel}: apprise refused the e-mail settings for {recipient}",
                    channel=self.channel)
            by_tag[own_tag] = recipient
        result = notifier.notify(body=post.text, title=post.title, tag=self.tag,
                                 body_format=apprise.NotifyFormat.TEXT)
        sent: list[str] = []
        for service in result.results:
            recipient = next((by_tag[t] for t in service.tag if t in by_tag), None)
            if recipient is not None and bool(service):
                sent.append(recipient)
        return sent, [r for r in recipients if r not in sent]

    def _login(self) -> None:
        smtp = self.smtp
        context = ssl.create_default_context()
        server = (smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=15, context=context)
                  if smtp.mode == "ssl" else smtplib.SMTP(smtp.host, smtp.port, timeout=15))
        with server:
            if smtp.mode == "starttls":
                server.starttls(context=context)
            if smtp.user:
                server.login(smtp.user, smtp.password)
            server.noop()

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
