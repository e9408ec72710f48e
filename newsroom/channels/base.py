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
                            (see :func:`_about_the_credential`)
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

:func:`map_error` is the one place where an httpx response or exception becomes one of
these. :func:`publish_with_retries` is the one retry loop. ``Publisher._request`` is the
one place a request is sent: it tells a dead pooled connection that never got the request
in full (sent again) from a request that went out without an answer (ambiguous for the
create), and sends a create that no repeat would be recognised for on a new connection
(:class:`RequestTrace`, docs/CHANNELS.md "Connections").

Secrets: a publisher keeps its credential as a ``pydantic.SecretStr``; error messages pass
through :func:`redact`, ``repr`` shows only the account, and a logging filter on the
``httpx`` logger masks Telegram bot tokens and ``access_token=`` query values in the
request lines httpx logs at INFO.
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import hashlib
import logging
import math
import mimetypes
import re
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels._text import Measurement
from newsroom.errors import (
    AmbiguousPublishError,
    CredentialRefused,
    PermanentPublishError,
    PublishError,
    TransientPublishError,
)
from newsroom.posts import MediaItem, RenderedPost

logger = logging.getLogger("newsroom.channels")

__all__ = [
    "AccountCheck",
    "MediaFile",
    "PublishResult",
    "Publisher",
    "map_error",
    "network_message",
    "parse_retry_after",
    "publish_with_retries",
    "redact",
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


# --- secrets ---------------------------------------------------------------------------

_REDACTED = "***"
# Secrets that end up in URLs: Telegram's bot token in the path, Meta's access_token (and
# input_token, the token debug_token is asked about).
_URL_SECRET_PATTERNS = (
    (re.compile(r"/bot\d+(?::|%3[Aa])[A-Za-z0-9_-]+"), "/bot" + _REDACTED),
    (re.compile(r"((?:access|input)_token=)[^&\s\"']+"), r"\1" + _REDACTED),
)
# Request lines in access logs: the signed links of the approval and confirmation pages.
_LINK_PATTERN = (re.compile(r"(/(?:freigabe|manual)/)[^/\s?\"']+"), r"\1" + _REDACTED)
# apprise logs service URLs at DEBUG, header (+Name=) and field (:name=) values and
# passwords included: hide everything after the scheme.
_APPRISE_URL = (re.compile(r"\b([a-z][a-z0-9+.-]*://)[^\s'\"<>]+"), r"\1" + _REDACTED)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace every secret value (and URL-borne tokens) in ``text`` by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _REDACTED)
    for pattern, replacement in _URL_SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class _RedactUrlSecrets(logging.Filter):
    """httpx logs every request line at INFO, Telegram's bot token included: mask it.
    Also on uvicorn's access log (request paths) and apprise's log (service URLs)."""

    def __init__(self, *extra: tuple[re.Pattern[str], str]) -> None:
        super().__init__()
        self.extra = extra

    def _clean(self, text: str) -> str:
        text = redact(text)
        for pattern, replacement in self.extra:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if isinstance(record.msg, str):
                record.msg = self._clean(record.msg)
            if isinstance(record.args, tuple):  # keep the shape: formatters unpack it
                args = []
                for value in record.args:
                    if isinstance(value, (int, float)) or value is None:
                        args.append(value)
                        continue
                    text = str(value)
                    cleaned = self._clean(text)
                    args.append(value if cleaned == text else cleaned)
                record.args = tuple(args)
            elif record.args:
                message = record.getMessage()
                record.msg, record.args = self._clean(message), ()
        except Exception:  # a broken log call is not ours to fix
            return True
        return True


def _install_log_filter() -> None:
    for name, extra in (("httpx", ()), ("uvicorn.access", (_LINK_PATTERN,)),
                        ("apprise", (_APPRISE_URL,))):
        target = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrlSecrets) for f in target.filters):
            target.addFilter(_RedactUrlSecrets(*extra))


_install_log_filter()


# --- mapping responses and exceptions to typed errors -----------------------------------

# Graph API error codes, as Meta's error handling guide, rate limiting page and the
# Instagram Platform's error code table read (sources in docs/CHANNELS.md). "Wait and
# retry": 1 unknown (possibly temporary), 2 service, 4 app rate limit, 17 user rate
# limit, 32 page rate limit, 341 application limit reached, 613 custom rate limit;
# Instagram's -1 ("Instagram server error. Try again.") and -2 ("It takes too long to
# download the media"), and 9007 (the container is not ready to be published yet).
META_TRANSIENT_CODES = frozenset({-2, -1, 1, 2, 4, 17, 32, 341, 613, 9007})
# A new token or a permission the token lacks: 102 API session, 190 access token expired
# or invalid, 10 and 200-299 permission denied.
META_CREDENTIAL_CODES = frozenset({102, 190, 10, *range(200, 300)})
# (code, error_subcode) that the code alone would misread. 9/2207042: the Instagram
# account reached its content publishing limit (it frees up within 24 hours): wait.
# 4/2207051: Instagram "restricts certain activity to protect our community" (the post is
# suspected spam): a rate-limit code, but repeating the post will not help.
META_TRANSIENT_SUBCODES = frozenset({(9, 2207042)})
META_PERMANENT_SUBCODES = frozenset({(4, 2207051)})
_TRANSIENT_STATUS = frozenset({408, 425, 429})
# Bad Gateway, Gateway Timeout: a proxy had the request and lost the upstream's answer.
_GATEWAY_STATUS = frozenset({502, 504})
# An epoch timestamp is any number above this (2001-09-09); smaller numbers are seconds.
_EPOCH_THRESHOLD = 1_000_000_000


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def network_message(body: Any, text: str = "") -> str:
    """The network's own error words from a response body, whatever its shape."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Meta Graph: {"error": {"message", "code", ...}}
            message = error.get("error_user_msg") or error.get("message") or ""
            return str(message)
        parts = []
        if isinstance(error, str):  # Mastodon {"error"}; Bluesky {"error", "message"}
            parts.append(error)
        for key in ("message", "description", "error_description", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value and value not in parts:
                parts.append(value)
        errors = body.get("errors")
        if not parts and isinstance(errors, list) and errors:
            parts.append("; ".join(str(e.get("message", e) if isinstance(e, dict) else e)
                                   for e in errors))
        if parts:
            return ": ".join(parts)
    return text.strip()[:500]


def _parse_seconds_or_date(value: str, now: float) -> float | None:
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            return None
        return number - now if number > _EPOCH_THRESHOLD else number
    try:  # ISO 8601, as Mastodon's X-RateLimit-Reset
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:  # HTTP-date, as RFC 9110 allows for Retry-After
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() - now


def parse_retry_after(
    response: httpx.Response, body: Any = None, *, now: float | None = None
) -> float | None:
    """Seconds to wait before the next try, as the network says, or None.

    ``Retry-After`` (seconds or HTTP-date) counts on any status; Telegram's
    ``parameters.retry_after`` in the JSON body too. ``RateLimit-Reset`` /
    ``X-RateLimit-Reset`` (epoch, seconds or ISO 8601) only on a 429: Mastodon and
    Bluesky send them on every response, and a 500 must not wait for a window reset.
    """
    now = time.time() if now is None else now
    if body is None:
        body = _json_body(response)
    candidates: list[float | None] = []
    if "retry-after" in response.headers:
        candidates.append(_parse_seconds_or_date(response.headers["retry-after"], now))
    if isinstance(body, dict) and isinstance(body.get("parameters"), dict):
        value = body["parameters"].get("retry_after")
        if isinstance(value, int | float):
            candidates.append(float(value))
    if response.status_code == 429:
        for name in ("ratelimit-reset", "x-ratelimit-reset"):
            if name in response.headers:
                candidates.append(_parse_seconds_or_date(response.headers[name], now))
    for value in candidates:
        if value is not None:
            return max(0.0, value)
    return None


def map_error(
    source: httpx.Response | BaseException,
    *,
    channel: str = "",
    creates_post: bool = True,
    repeat_safe: bool = False,
    secrets: Iterable[str] = (),
    now: float | None = None,
) -> PublishError:
    """Turn a failed response or a transport exception into a typed publish error.

    ``creates_post`` says whether the request was the one that makes the post: a lost
    answer to it is ambiguous; a lost answer to a media upload or a read is merely
    transient (at worst an orphaned upload remains). ``repeat_safe`` says whether the
    network recognises a repeat of that request (``Publisher.idempotent_retries``): if
    not, a 502/504 to it is ambiguous too.
    """
    secrets = tuple(secrets)
    prefix = f"{channel}: " if channel else ""
    if isinstance(source, httpx.Response):
        return _map_response(source, channel=channel, prefix=prefix, secrets=secrets, now=now,
                             gateway_ambiguous=creates_post and not repeat_safe)

    detail = redact(str(source) or type(source).__name__, secrets)
    if isinstance(source, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
                  | httpx.ProxyError):
        return TransientPublishError(
            f"{prefix}could not reach the network ({type(source).__name__}: {detail}); "
            "nothing was sent, trying again later is safe",
            channel=channel,
        )
    if isinstance(source, httpx.UnsupportedProtocol | httpx.LocalProtocolError
                  | httpx.InvalidURL):
        return PermanentPublishError(
            f"{prefix}the request could not be built ({type(source).__name__}: {detail}); "
            "check the account's base_url",
            channel=channel,
        )
    if creates_post:
        return AmbiguousPublishError(
            f"{prefix}the request was sent but no answer arrived ({type(source).__name__}: "
            f"{detail}); the post may exist: look at the account before posting again",
            channel=channel,
        )
    return TransientPublishError(
        f"{prefix}no answer to a preparatory request ({type(source).__name__}: {detail}); "
        "no post was made, trying again is safe",
        channel=channel,
    )


def _map_response(
    response: httpx.Response, *, channel: str, prefix: str, secrets: tuple[str, ...],
    now: float | None, gateway_ambiguous: bool = False,
) -> PublishError:
    status = response.status_code
    body = _json_body(response)
    said = redact(network_message(body, response.text), secrets)
    retry_after = parse_retry_after(response, body, now=now)
    kwargs = dict(channel=channel, status_code=status, network_message=said,
                  retry_after=retry_after)
    where = redact(f"{response.request.method} {response.request.url.path}", secrets)

    meta = body.get("error") if isinstance(body, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get("code"), int):
        code = meta["code"]
        text = f"{prefix}{where} failed with Graph API error {code}: {said}"
        if code in META_CREDENTIAL_CODES:
            return CredentialRefused(
                text + " (renew the access token, with the permissions publishing needs, "
                "and store it where the account's credential points)", **kwargs)

    text = f"{prefix}{where} answered HTTP {status}: {said or response.reason_phrase}"
    if gateway_ambiguous and status in _GATEWAY_STATUS:
        # The proxy had the whole request and lost the upstream's answer (or gave up
        # waiting for it): the post may have been made, and this network would make a
        # second one if asked again.
        return AmbiguousPublishError(
            text + "; a gateway between us and the network failed after the request was "
            "sent, so the post may exist: look at the account before posting again",
            **kwargs)

    if isinstance(meta, dict) and isinstance(meta.get("code"), int):
        code, subcode = meta["code"], meta.get("error_subcode")
        if (code, subcode) in META_PERMANENT_SUBCODES:
            return PermanentPublishError(
                f"{prefix}{where} failed with Graph API error {code}/{subcode}: {said} "
                "(the network restricted this post; a person has to look at the account)",
                **kwargs)
        if ((code, subcode) in META_TRANSIENT_SUBCODES or code in META_TRANSIENT_CODES
                or meta.get("is_transient") is True):
            return TransientPublishError(
                f"{prefix}{where} failed with Graph API error {code}: {said} "
                "(temporary; try again later)", **kwargs)

    if status in _TRANSIENT_STATUS or status >= 500:
        wait = f" (wait {retry_after:.0f} s)" if retry_after is not None else ""
        return TransientPublishError(text + f"; temporary, try again later{wait}", **kwargs)
    if status in (401, 403) or (status == 422 and _about_the_credential(said)):
        return CredentialRefused(
            text + "; the credential was refused: check or renew it", **kwargs)
    return PermanentPublishError(text + "; the network refused this post", **kwargs)


# Words of a 422 that is about the credential, not the post. Mastodon's Api::BaseController
# answers 422 "This method requires an authenticated user" (require_user!, a token without
# a user); servers of Mastodon's API answer a revoked or unknown token so as well. A post
# the network refuses says "Validation failed: …" and names none of these.
_CREDENTIAL_WORDS = re.compile(
    r"\b(access[ _]?token|token|authenticat\w*|authori[sz]\w*|credentials?|login|"
    r"log in|sign[ -]?in|unauthori[sz]ed|not logged)\b", re.IGNORECASE)


def _about_the_credential(said: str) -> bool:
    return not said.lower().startswith("validation failed") and bool(
        _CREDENTIAL_WORDS.search(said))


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

    @property
    def sent(self) -> bool:
        return not self.write_failed

    async def __call__(self, name: str, info: Mapping[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            self.new_connection = True
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
            trace = RequestTrace()
            kwargs["extensions"] = {**(kwargs.get("extensions") or {}), "trace": trace}
            client = self._new_connection_client() if fresh else self._client
            try:
                response = await client.request(method, url, **kwargs)
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


# --- images ----------------------------------------------------------------------------


def sniff_image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG, read from its header; None otherwise."""
    kind = sniff_image_type(data)
    if kind == "image/png" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if kind == "image/gif" and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if kind == "image/jpeg":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            length = struct.unpack(">H", data[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF):
                height, width = struct.unpack(">HH", data[i + 5:i + 9])
                return width, height
            i += 2 + length
    return None


# --- retrying --------------------------------------------------------------------------


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
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await publisher.publish(post, idempotency_key=idempotency_key)
        except AmbiguousPublishError as exc:
            if not publisher.idempotent_retries or attempt >= max_attempts:
                raise
            delay = backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay)
            error: PublishError = exc
        except TransientPublishError as exc:
            if attempt >= max_attempts:
                raise
            if exc.retry_after is not None and exc.retry_after > max_delay:
                raise
            delay = backoff_delay(attempt, base_delay=base_delay, max_delay=max_delay,
                                  retry_after=exc.retry_after)
            error = exc
        else:
            return replace(result, attempts=attempt)
        logger.warning("%s: attempt %d of %d failed (%s); next try in %.1f s",
                       publisher.channel, attempt, max_attempts, error, delay)
        await sleep(delay)
