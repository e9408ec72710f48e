"""The shared base of every channel publisher, the error mapping and the retry helper.

A :class:`Publisher` sends one :class:`~newsroom.posts.RenderedPost` to one
:class:`~newsroom.catalog.models.ChannelAccount` over an ``httpx.AsyncClient`` it is
handed (and does not close). It never renders: the text, media and alt text arrive
finished.

Every failure leaves a publisher as one of three typed errors (see :mod:`newsroom.errors`)::

    TransientPublishError   the post was not made; trying again later is safe
                            (429, 5xx, Meta codes 1/2/4/17/32/341/613 and Instagram's
                            -1/-2/9007, connection refused …)
    PermanentPublishError   the post was not made; trying again will not help
                            (400/401/403/404/422, a missing credential …)
      CredentialRefused     … because the credential was refused: 401, 403, Meta codes
                            102/190/10/200-299, or a 422 that speaks of the token or login
                            (newsroom/channels/responses.py)
    AmbiguousPublishError   the request that creates the post was sent but no answer came,
                            or a gateway answered 502/504 to it: the post may exist. Repeat
                            it only if the network deduplicates
                            (``Publisher.idempotent_retries``).

A 502 (Bad Gateway) or 504 (Gateway Timeout) means a proxy in front of the network gave
up on the upstream: the request body went through it, and the upstream may well have
made the post. For a request that creates a post on a network that does not deduplicate
(LinkedIn, Facebook, Instagram, Threads, Telegram) it is therefore ambiguous, not
transient; where a repeat is harmless (Mastodon's Idempotency-Key, Bluesky's
deterministic record key, the website's keyed webhook) it stays transient and is
retried. Other 5xx, and 502/504 to preparatory requests (uploads, containers, reads),
are transient.

:func:`~newsroom.channels.responses.map_error` is the one place where an httpx response or
exception becomes one of
these. :func:`publish_with_retries` is the one retry loop. ``Publisher._request`` is the
one place a request is sent: it tells a dead pooled connection that never got the request
in full (sent again) from a request that went out without an answer (ambiguous for the
create), and sends a create that no repeat would be recognised for on a new connection
(:class:`RequestTrace`, docs/CHANNELS.md "Connections").

Secrets: a publisher keeps its credential as a ``pydantic.SecretStr``; error messages pass
through :func:`~newsroom.redaction.redact`, ``repr`` shows only the account, and the
logging filter every entry point installs (``newsroom/redaction.py``) masks Telegram bot
tokens and ``access_token=`` query values in the request lines httpx logs at INFO.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
import mimetypes
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from newsroom import send_journal
from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement
from newsroom.channels.responses import map_error
from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.media import image_size, sniff_image_type
from newsroom.posts import MediaItem, RenderedPost
from newsroom.redaction import redact
from newsroom.send_journal import SendJournalError

logger = logging.getLogger("newsroom.channels")

__all__ = [
    "AccountCheck",
    "MediaFile",
    "PublishResult",
    "Publisher",
    "WithdrawResult",
    "publish_with_retries",
    "withdraw_with_retries",
]


# --- results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishResult:
    """What a network answered for one post.

    ``awaiting_manual`` is True for manual channels (WhatsApp, TikTok): nothing was
    posted, a person has to do it. ``attempts`` is set by :func:`publish_with_retries`.
    """

    remote_id: str
    url: str | None
    raw: Mapping[str, Any] = field(default_factory=dict)
    awaiting_manual: bool = False
    attempts: int = 1

    @property
    def status(self) -> str:
        return "awaiting_manual" if self.awaiting_manual else "published"


@dataclass(frozen=True)
class WithdrawResult:
    """What a network answered to taking one published post down (a recall).

    ``gone``: the post is no longer shown: deleted now, or it was not there any more
    (``already_gone``: a 404 or the network's "already deleted", which counts as done).
    ``manual``: the network cannot take it back; a person must (``detail`` says who and
    where). Neither: it cannot be taken back, and what could be done instead was done (a
    correction e-mail to the original recipients; ``detail`` says how many): the recall
    counts it "corrected". Every failure raises."""

    gone: bool
    already_gone: bool = False
    manual: bool = False
    detail: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 1


@dataclass(frozen=True)
class AccountCheck:
    """Outcome of :meth:`Publisher.check`: can this account publish, and as whom?

    A check asks what publishing needs, without posting: that the credential is accepted,
    that it carries the permissions (scopes, roles, rights) the create and the image
    upload need, and that it belongs to the account the registry names. ``ok`` False
    says what is wrong in ``message`` (the network's own words where it has them) and
    what to do in ``fix``; ``about_credential`` says whether the fix is a new or another
    credential (then ``newsroom channels check`` adds where to store it). ``details``
    are what else the check found out, e.g. which limits discovery read."""

    channel: str
    ok: bool
    identity: str = ""  # e.g. "@stadt@social.darmstadt.de", "urn:li:organization:42"
    message: str = ""  # what is wrong when ``ok`` is False, in the network's words
    fix: str = ""  # what to do when ``ok`` is False; "" is: renew the credential
    about_credential: bool = True
    details: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaFile:
    """The bytes of one image, loaded and checked against the approved hash."""

    source: str
    alt: str
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> tuple[int, int] | None:
        return image_size(self.data)


# What a pooled connection the server had closed looks like to the next request on it.
_DEAD_CONNECTION = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)


@dataclass
class RequestTrace:
    """How far one request got, from httpcore's ``trace`` extension: whether it opened a
    new connection, and whether writing the request failed.

    A pooled connection the server has closed fails in one of two ways. Writing the
    request failed (``sent`` False): the server did not get it in full and cannot have
    acted on it, so sending it again on another connection is safe — also the request
    that makes a post. Or it went out and no answer came: the server may have acted on
    it (RFC 9110 §9.2.2: a request that is not idempotent is not repeated automatically),
    and for the request that makes a post that is ambiguous. Without trace events (a
    transport that is not httpcore's) a request counts as sent: never fail open.
    """

    new_connection: bool = False
    write_failed: bool = False
    # The request makes a post: its send-journal line is written right before its first
    # byte leaves (newsroom/send_journal.py); ``journaled`` once it is.
    journal: bool = False
    journaled: bool = False

    @property
    def sent(self) -> bool:
        return not self.write_failed

    async def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            self.new_connection = True
        elif name.endswith(".send_request_headers.started"):
            if self.journal and not self.journaled:
                send_journal.note_request()  # raises SendJournalError: nothing is sent
                self.journaled = True
        elif name.endswith((".send_request_headers.failed", ".send_request_body.failed")):
            self.write_failed = True


# --- the publisher base ----------------------------------------------------------------


class Publisher(abc.ABC):
    """Publishes rendered posts to one account of one network.

    Subclasses set ``channel_type`` and implement :meth:`publish` and :meth:`_check`.
    ``idempotent_retries`` is True when repeating :meth:`publish` with the same
    idempotency key cannot create a second post (the network deduplicates). Ask it of
    the publisher, not of its class: on Mastodon's API it depends on the account's server
    (known after :meth:`warm_up`).
    """

    channel_type: ClassVar[ChannelType]
    idempotent_retries: ClassVar[bool] = False
    # Repeating :meth:`withdraw` cannot do harm (deleting a deleted post answers 404,
    # which counts as done): an ambiguous withdrawal is retried. False for one that
    # sends something a repeat would send again (a correction e-mail).
    idempotent_withdrawals: ClassVar[bool] = True
    # Its requests that make a post go through _request, which notes each in the send
    # journal before it leaves (newsroom/send_journal.py); False for a publisher that
    # sends otherwise (SMTP, a person): never taken for unsent after a crash.
    journals_sends: ClassVar[bool] = True
    needs_credential: ClassVar[bool] = True
    default_base_url: ClassVar[str | None] = None
    requires_image: ClassVar[bool] = False  # the network refuses a post without one
    _server_closes_connections: bool = False  # learnt from a dead pooled connection
    _fresh_client: httpx.AsyncClient | None = None  # see _new_connection_client

    @classmethod
    def measure(cls, text: str, account: ChannelAccount, *, has_image: bool = False
                ) -> list[Measurement]:
        """This network's one length rule: every count it applies to ``text`` with its
        limit. Validation, preview, the request form and :meth:`publish` all ask this
        (through :func:`newsroom.channels.measure_text`). Default: no limit."""
        return []

    def __init__(
        self,
        account: ChannelAccount,
        credential: SecretStr | None,
        client: httpx.AsyncClient,
        *,
        media_root: Path | str | None = None,
    ):
        if account.type != self.channel_type:
            raise ValueError(
                f"{type(self).__name__} publishes to {self.channel_type} accounts, "
                f"not to {account.name!r} of type {account.type}"
            )
        if credential is None and self.needs_credential:
            raise PermanentPublishError(
                f"{account.name}: no credential given; resolve it with "
                "newsroom.channels.credentials.resolve_credential(account)",
                channel=account.name,
            )
        self.account = account
        self._credential = credential
        self._client = client
        self.media_root = Path(media_root) if media_root is not None else None
        base = account.base_url or self.default_base_url or ""
        self.base_url = base.rstrip("/")

    def __repr__(self) -> str:
        secret = "SecretStr('**********')" if self._credential is not None else "None"
        return f"<{type(self).__name__} account={self.account.name!r} credential={secret}>"

    @property
    def channel(self) -> str:
        return self.account.name

    # -- the interface --

    @abc.abstractmethod
    async def publish(self, post: RenderedPost, *, idempotency_key: str) -> PublishResult:
        """Publish ``post``; raise a typed :class:`PublishError` on failure."""

    async def withdraw(self, remote_id: str, *, remote_url: str | None,
                       idempotency_key: str, original: Mapping[str, Any] | None = None
                       ) -> WithdrawResult:
        """Take the post ``remote_id`` (what :meth:`publish` returned) down; raise a typed
        :class:`PublishError` on failure (ambiguous: the request went out, no answer).

        ``idempotency_key``: the recall's (a withdrawal that sends something sends it
        once per key). ``original``: what was published, as the recall recorded it —
        ``text``, ``title``, ``recipients`` (an e-mail's), ``reason`` (the recall's, in
        German) — for a withdrawal that must say what it withdraws. A network whose API
        cannot take a post back answers ``manual`` (default): a person must."""
        return WithdrawResult(
            gone=False, manual=True,
            detail=f"{self.channel_type.value} cannot take a post down through its API; "
                   "a person must delete it")

    async def warm_up(self) -> None:
        """Fetch ahead what the first :meth:`publish` would otherwise fetch first (a
        session, the instance's limits), so that at a post's second only the post is
        sent. Failures are left for :meth:`publish` to meet and report."""
        return None

    async def find_published(self, post: RenderedPost, *, since: datetime
                             ) -> PublishResult | None:
        """The post as the network shows it, if an attempt begun at or after ``since``
        made it; None if it is not there or this network cannot be searched (default).
        Asked before a post whose earlier attempt was cut off is declared "unknown"."""
        return None

    async def check(self) -> AccountCheck:
        """Check what publishing needs (:class:`AccountCheck`). A refused credential
        (401, 403, a 422 about the token: :class:`CredentialRefused`) or another refusal
        gives ``ok=False`` with the network's words; a network that cannot be reached
        raises :class:`TransientPublishError`."""
        try:
            return await self._check()
        except CredentialRefused as exc:
            return AccountCheck(channel=self.channel, ok=False,
                                message=exc.network_message or str(exc))
        except PermanentPublishError as exc:
            said = exc.network_message or str(exc)
            status = f"HTTP {exc.status_code}: " if exc.status_code else ""
            return AccountCheck(
                channel=self.channel, ok=False, message=f"the network refused: {status}{said}",
                fix="check the account's base_url and account_id in registry/channels.yaml",
                about_credential=False)

    @abc.abstractmethod
    async def _check(self) -> AccountCheck: ...

    # -- helpers for subclasses --

    def _secret(self) -> str:
        return self._credential.get_secret_value() if self._credential is not None else ""

    def _secrets(self) -> tuple[str, ...]:
        """Every secret value that must not appear in an error message."""
        return (self._secret(),)

    def _error(self, source: httpx.Response | BaseException, *, creates_post: bool
               ) -> PublishError:
        return map_error(source, channel=self.channel, creates_post=creates_post,
                         repeat_safe=self.idempotent_retries, secrets=self._secrets())

    def restore_progress(self, idempotency_key: str, progress: Mapping[str, Any]) -> None:
        """Take back what an earlier attempt achieved (``PublishError.progress``) so the
        next :meth:`publish` with that key does not repeat it. Default: nothing to do."""
        return None

    async def _request(
        self, method: str, url: str, *, creates_post: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send one request; return the response if it succeeded, else raise typed.

        Connections (see :class:`RequestTrace`):

        - A request that met a dead pooled connection before it went out in full is sent
          once more, on a new connection: the server never had it. Also the create.
        - A request that went out and got no answer is sent once more only if it does
          not make the post (a read, an upload: nothing was posted). The create's loss is
          ambiguous (:class:`AmbiguousPublishError`): the network's way of recognising a
          repeat, or a lookup, settles it.
        - The create on a network that does not recognise a repeat
          (``idempotent_retries`` False) never goes out on a reused connection, which the
          server may have closed a moment ago: it gets a new one. So a stale pooled
          connection can neither double such a post nor leave it "unknown".
        - ``keep_alive: false`` on the account (or a server found closing connections
          without saying so) sends ``Connection: close``: no connection is reused.
        """
        fresh = creates_post and not self.idempotent_retries
        for attempt in (1, 2):
            if not self.account.keep_alive or self._server_closes_connections:
                kwargs["headers"] = {**(kwargs.get("headers") or {}), "Connection": "close"}
            trace = RequestTrace(journal=creates_post)
            kwargs["extensions"] = {**(kwargs.get("extensions") or {}), "trace": trace}
            client = self._new_connection_client() if fresh else self._client
            try:
                if creates_post and not _traced(client):
                    send_journal.note_request()  # no trace events: noted before the call
                    trace.journaled = True
                response = await client.request(method, url, **kwargs)
                if creates_post and not trace.journaled:  # answered, so it was sent
                    _trace_events_missing(self.channel)
            except SendJournalError as exc:
                raise TransientPublishError(
                    f"{self.channel}: the request was not sent, because it could not be "
                    f"noted in the send journal first ({exc}); free the disk or fix "
                    "the data folder's permissions", channel=self.channel) from exc
            except _DEAD_CONNECTION as exc:
                if not trace.new_connection:
                    self._closed_by_server()
                if attempt == 2 or (creates_post and trace.sent):
                    raise self._error(exc, creates_post=creates_post and trace.sent) from exc
                logger.info("%s: %s %s met a closed connection (%s, %s); sending it again on "
                            "a new one", self.channel, method, redact(urlsplit(url).path),
                            type(exc).__name__,
                            "sent, no answer" if trace.sent else "not sent in full")
                fresh = True
                continue
            except httpx.HTTPError as exc:  # a write timeout, too, left it unsent
                raise self._error(exc, creates_post=creates_post and trace.sent) from exc
            if response.is_success:
                return response
            raise self._error(response, creates_post=creates_post)
        raise AssertionError("unreachable")

    def _closed_by_server(self) -> None:
        """A reused connection was dead: from now on a new connection per request."""
        if self._server_closes_connections or not self.account.keep_alive:
            return
        self._server_closes_connections = True
        logger.warning("%s: the server closed a kept-alive connection without saying so; "
                       "from now on a new connection per request (set `keep_alive: false` "
                       "for this account to start so)", self.channel)

    def _new_connection_client(self) -> httpx.AsyncClient:
        """A client that keeps no connection, so every request goes on a new one, with the
        timeouts, headers, environment (proxies, CA file) and TLS context of the client
        the publisher was given. A client with a transport of its own (not httpx's
        connection pool) is used as it is."""
        given = self._client
        transport = getattr(given, "_transport", None)
        if type(transport) is not httpx.AsyncHTTPTransport:
            return given
        if self._fresh_client is None:
            # httpx keeps the TLS context in its pool; without it, the default one.
            tls = getattr(getattr(transport, "_pool", None), "_ssl_context", None)
            self._fresh_client = httpx.AsyncClient(
                timeout=given.timeout, follow_redirects=given.follow_redirects,
                trust_env=given.trust_env, headers=given.headers, verify=tls or True,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=0))
        return self._fresh_client

    def _check_post(self, post: RenderedPost, account: ChannelAccount | None = None) -> None:
        """Refuse a post rendered for another channel, or one the network would refuse
        for its length (measured by :meth:`measure`, with ``account``'s limits if given,
        e.g. those the instance announced)."""
        if post.channel != self.account.name:
            raise PermanentPublishError(
                f"{self.channel}: this post was rendered for channel {post.channel!r}; "
                "render it for this channel",
                channel=self.channel,
            )
        for measurement in self.measure(post.text, account or self.account,
                                        has_image=bool(post.media)):
            if not measurement.ok:
                raise PermanentPublishError(
                    f"{self.channel}: the text is too long for {self.channel_type}: "
                    f"{measurement.describe()}; shorten it by {measurement.excess}",
                    channel=self.channel,
                )

    async def load_media(self, item: MediaItem) -> MediaFile:
        """Read an image from a file or URL and verify it against its approved hash."""
        source = item.source
        if urlsplit(source).scheme in ("http", "https"):
            response = await self._request("GET", source)
            data = response.content
            header_type = response.headers.get("content-type", "").split(";")[0].strip()
            filename = Path(urlsplit(source).path).name or "image"
        else:
            path = Path(source)
            if not path.is_absolute() and self.media_root is not None:
                path = self.media_root / path
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError as exc:
                raise PermanentPublishError(
                    f"{self.channel}: cannot read image {path} ({exc.strerror}); "
                    "check the image path in the campaign",
                    channel=self.channel,
                ) from exc
            header_type = ""
            filename = path.name
        if item.sha256 and hashlib.sha256(data).hexdigest() != item.sha256:
            raise PermanentPublishError(
                f"{self.channel}: image {source} differs from the approved one "
                "(its SHA-256 changed); render and approve the post again",
                channel=self.channel,
            )
        content_type = (sniff_image_type(data) or header_type
                        or mimetypes.guess_type(filename)[0] or "application/octet-stream")
        return MediaFile(source=source, alt=item.alt, filename=filename,
                         content_type=content_type, data=data)


# --- retrying --------------------------------------------------------------------------


_TRACE_EVENTS = {"missing": False}


def _traced(client: httpx.AsyncClient) -> bool:
    """Does httpcore's ``trace`` extension reach this client's requests (httpx's own
    connection pool, no proxy mounts)? Otherwise a request is noted before the call."""
    return (not _TRACE_EVENTS["missing"]
            and type(getattr(client, "_transport", None)) is httpx.AsyncHTTPTransport
            and not getattr(client, "_mounts", None))


def _trace_events_missing(channel: str) -> None:
    """A request that makes a post went out without httpcore's ``send_request_headers``
    event (another httpcore?): from now on every such request is noted before the call."""
    if not _TRACE_EVENTS["missing"]:
        _TRACE_EVENTS["missing"] = True
        logger.error("%s: a request that makes a post went out without httpcore's "
                     "send_request_headers trace event; the send journal now notes each "
                     "such request before the call (see newsroom/send_journal.py)", channel)


def backoff_delay(attempt: int, *, base_delay: float, max_delay: float,
                  retry_after: float | None = None) -> float:
    """Delay before attempt ``attempt + 1``: the network's word, else exponential."""
    if retry_after is not None:
        return retry_after
    return min(max_delay, base_delay * 2 ** (attempt - 1))


async def publish_with_retries(
    publisher: Publisher,
    post: RenderedPost,
    idempotency_key: str,
    *,
    max_attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 60,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> PublishResult:
    """Publish, retrying transient failures with exponential backoff.

    A ``retry_after`` from the network is honoured exactly; if it exceeds ``max_delay``
    the error is raised at once (it carries ``retry_after`` so the caller can schedule
    the next try). An :class:`AmbiguousPublishError` is retried only if the publisher
    declares ``idempotent_retries``; otherwise it is raised so the caller can mark the
    publication "unknown". Permanent errors are raised at once.
    """
    return await _retrying(
        lambda: publisher.publish(post, idempotency_key=idempotency_key),
        channel=publisher.channel, what="attempt",
        repeat_ambiguous=lambda: publisher.idempotent_retries, max_attempts=max_attempts,
        base_delay=base_delay, max_delay=max_delay, sleep=sleep)


async def withdraw_with_retries(
    publisher: Publisher,
    remote_id: str,
    *,
    remote_url: str | None,
    idempotency_key: str,
    original: Mapping[str, Any] | None = None,
    max_attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 30,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> WithdrawResult:
    """Withdraw, retrying transient failures and, where a repeat is harmless
    (``idempotent_withdrawals``), ambiguous ones, with exponential backoff (a network's
    ``retry_after`` honoured exactly; one beyond ``max_delay`` is raised at once)."""
    return await _retrying(
        lambda: publisher.withdraw(remote_id, remote_url=remote_url,
                                   idempotency_key=idempotency_key, original=original),
        channel=publisher.channel, what="withdrawal attempt",
        repeat_ambiguous=lambda: publisher.idempotent_withdrawals, max_attempts=max_attempts,
        base_delay=base_delay, max_delay=max_delay, sleep=sleep)


_Result = TypeVar("_Result", PublishResult, WithdrawResult)


async def _retrying(call: Callable[[], Awaitable[_Result]], *, channel: str, what: str,
                    repeat_ambiguous: Callable[[], bool], max_attempts: int,
                    base_delay: float, max_delay: float,
                    sleep: Callable[[float], Awaitable[Any]]) -> _Result:
    """The one retry loop: transient failures with backoff (a network's ``retry_after``
    exactly, one beyond ``max_delay`` raised at once), ambiguous ones only where
    ``repeat_ambiguous()`` (asked after the call: a publisher may learn it on its
    first), permanent ones raised at once."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await call()
        except AmbiguousPublishError as exc:
            if not repeat_ambiguous() or attempt >= max_attempts:
                raise
            delay = backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay)
            error: PublishError = exc
        except TransientPublishError as exc:
            if attempt >= max_attempts or (exc.retry_after is not None
                                           and exc.retry_after > max_delay):
                raise
            delay = backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay,
                                  retry_after=exc.retry_after)
            error = exc
        else:
            return replace(result, attempts=attempt)
        logger.warning("%s: %s %d of %d failed (%s); next try in %.1f s",
                       channel, what, attempt, max_attempts, error, delay)
        await sleep(delay)
