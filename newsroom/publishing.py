"""Publishing stored posts exactly once.

:func:`publish_post` takes a rendered post from the store and puts it on one channel,
with the store as the memory that makes repeats harmless::

    reserve ──► claim (publishing) ──► network ──► published
       │                 │                  ├──► failed      (refused; nothing went out)
       │                 │                  ├──► unknown     (no answer; a person checks)
       │                 │                  └──► awaiting_manual (manual channel; owner told)
       └─ exists already: settled → return it, the network is not called again

- The reservation (UNIQUE in the database) is committed before any network call; the
  idempotency key is derived from the post's ``post_key`` and ``content_hash``.
- Only the caller that moves the publication from ``reserved``/``failed`` to
  ``publishing`` (a locked transition) calls the network. Found in ``publishing`` — an
  earlier run died mid-call, or another worker is at it — the post is sent again only
  where the network recognises a repeat (``Publisher.idempotent_retries``: Mastodon,
  within its one-hour key window, and Bluesky); elsewhere the publication becomes
  ``unknown`` and the communications office is alerted: never a second post. (A worker
  still at it cannot be told from a dead one; its result, when it comes, overwrites such
  an ``unknown``.)
- ``failed`` is retried by a later call only when the failure was transient (nothing went
  out, by the error's type); a permanent refusal (401, …) waits for a person
  (``retry_failed=True`` after fixing the cause). The office retries any failed
  publication with ``newsroom channels retry ID`` or the Prefect deployment
  ``retry-publication`` (:mod:`newsroom.retries`), audited, through this same path.
- ``unknown`` is never retried automatically: :func:`resolve_unknown` records what a
  person found.
- What a failed attempt did achieve (``PublishError.progress``: the e-mail recipients
  who got the press release) is written to the audit trail with it and handed to the
  next attempt's publisher (``Publisher.restore_progress``), so a retry never repeats it.

Every step is written to the audit trail (actor "publisher"). Within one event loop,
concurrent calls for the same post share one attempt. Alerts and the manual owner's
message go through a :class:`~newsroom.notify.Notifier`; texts for people are German.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsroom import store
from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels import (
    PUBLISHERS,
    CredentialMissing,
    Publisher,
    PublishResult,
    aresolve_credential,
    build_manual_notice,
    publish_with_retries,
    publisher_for,
)
from newsroom.channels.base import redact
from newsroom.errors import (
    AlreadyReserved,
    AmbiguousPublishError,
    PermanentPublishError,
    PublishError,
    RecipientsRefused,
    StoreError,
    TransientPublishError,
)
from newsroom.notify import ALERT_TAG, Notifier
from newsroom.posts import RenderedPost
from newsroom.rendering.templates import german_date
from newsroom.signing import MANUAL_CONFIRM, Signer
from newsroom.store import PostRecord, Publication, PublicationStatus
from newsroom.timeutil import BERLIN, format_local_german

__all__ = [
    "ACTOR",
    "AccountStatus",
    "OccurrencePublication",
    "PublicationOutcome",
    "OpenPublication",
    "check_accounts",
    "idempotency_key_for",
    "manual_confirm_url",
    "open_publications",
    "publish_occurrence",
    "publish_post",
    "resolve_unknown",
    "unknown_publications",
]

logger = logging.getLogger("newsroom.publishing")

ACTOR = "publisher"
ALERTED = "publication.alerted"  # audit action: the office got the alert about it
# An "unknown" publication without an alert for this long is alerted by the sweep.
OWED_ALERT_SETTLE = timedelta(minutes=2)
T = TypeVar("T")

_SETTLED = {PublicationStatus.PUBLISHED, PublicationStatus.AWAITING_MANUAL,
            PublicationStatus.SKIPPED}
# How long a network recognises a repeated request as the same post; absent: for good
# (Bluesky's record key, nothing sent for manual channels). Mastodon keeps an
# Idempotency-Key for one hour: leave a margin.
_REPEAT_WINDOW: dict[ChannelType, timedelta] = {ChannelType.MASTODON: timedelta(minutes=50)}
DEFAULT_CONFIRM_TTL = timedelta(days=7)


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicationOutcome:
    """Where one post on one channel stands after :func:`publish_post`.

    ``status`` is a :class:`~newsroom.store.PublicationStatus` value; "publishing" means
    another attempt is under way. ``network_called`` says whether *this* call sent
    anything to the network; ``alerted`` whether it alerted the communications office,
    ``notified`` whether it told a manual channel's owner.
    """

    channel: str
    status: str
    post_id: int
    publication_id: int | None
    post_key: str
    content_hash: str
    idempotency_key: str
    remote_id: str | None = None
    remote_url: str | None = None
    error: str | None = None
    attempts: int = 0
    network_called: bool = False
    alerted: bool = False
    notified: bool = False
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Nothing left for the publisher to do (a person may still have to post)."""
        return self.status in _SETTLED


@dataclass(frozen=True)
class OccurrencePublication:
    """Per-channel outcomes of :func:`publish_occurrence`; ``errors`` holds what raised."""

    occurrence_id: int
    outcomes: dict[str, PublicationOutcome] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)

    @property
    def published(self) -> list[str]:
        return sorted(c for c, o in self.outcomes.items()
                      if o.status == PublicationStatus.PUBLISHED)

    @property
    def needs_attention(self) -> list[str]:
        """Channels that are neither done nor waiting for their owner."""
        return sorted({c for c, o in self.outcomes.items() if not o.ok} | set(self.errors))


def idempotency_key_for(post_key: str, content_hash: str) -> str:
    """The key under which a post is published: the same post always gets the same key."""
    digest = hashlib.sha256(f"{post_key}\n{content_hash}".encode()).hexdigest()
    return f"newsroom-{digest[:48]}"


def manual_confirm_url(base_url: str) -> Callable[[str], str]:
    """``confirm_url_for`` for a Newsroom web app at ``base_url`` (see newsroom.web)."""
    base = base_url.rstrip("/")
    return lambda token: f"{base}/manual/{token}"


# --- publishers, shared per HTTP client -----------------------------------------------------

# One publisher per account, credential and options for as long as its HTTP client lives:
# Bluesky's session (createSession is limited to 30 per 5 minutes) and Mastodon's instance
# limits are fetched once, not once per post.
_PUBLISHER_CACHE: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[tuple, Publisher]] = (
    weakref.WeakKeyDictionary())
_PUBLISHER_CACHE_LOCK = threading.Lock()


def shared_publisher(account: ChannelAccount, *, client: httpx.AsyncClient,
                     credential: SecretStr | None, **options: Any) -> Publisher:
    """The publisher for ``account`` on ``client``, made once and then reused."""
    secret = credential.get_secret_value() if credential is not None else ""
    key = (account.model_dump_json(), hashlib.sha256(secret.encode()).hexdigest(),
           repr(sorted((k, repr(v)) for k, v in options.items())))
    with _PUBLISHER_CACHE_LOCK:
        publishers = _PUBLISHER_CACHE.setdefault(client, {})
        publisher = publishers.get(key)
        if publisher is None:
            publisher = publishers[key] = publisher_for(account, client=client,
                                                        credential=credential, **options)
        return publisher


def arm_occurrence(engine: Engine, *, occurrence_id: int, channels: Iterable[str] | None = None
                   ) -> tuple[dict[str, Publication], list[PostRecord]]:
    """Reserve and claim the occurrence's publications ahead of their second.

    For exact-time publishing: at the due second only the network calls remain. Each
    publication that is new or still "reserved" is reserved and marked "publishing" (an
    attempt, audited with ``armed``) now; pass the result to :func:`publish_occurrence`
    as ``armed`` (and the posts, second item, as ``posts``). Publications in any other
    state are not armed (publishing them takes the normal path). What is armed and then
    not sent must be :func:`disarm`-ed; a crash in between leaves it "publishing", which
    the next run treats as possibly sent (Mastodon and Bluesky repeat it harmlessly,
    elsewhere a person decides).
    """
    wanted = set(channels) if channels is not None else None
    armed: dict[str, Publication] = {}
    posts: list[PostRecord] = []
    with store.session_scope(engine) as session:
        for post in store.current_posts(session, occurrence_id=occurrence_id):
            if wanted is not None and post.channel not in wanted:
                continue
            posts.append(post)
            rendered = post.to_rendered()
            key = idempotency_key_for(rendered.post_key, post.content_hash)
            publication = store.get_publication(session, post_id=post.id, channel=post.channel)
            if publication is None:
                try:
                    publication = store.reserve_publication(
                        session, post_id=post.id, channel=post.channel, idempotency_key=key)
                except AlreadyReserved:
                    continue
                _audit_armed(session, rendered, post, publication, key, "publication.reserved")
            if publication.status != PublicationStatus.RESERVED:
                continue
            try:
                publication = store.mark_publishing(session, publication_id=publication.id)
            except StoreError:
                session.rollback()
                continue
            _audit_armed(session, rendered, post, publication, key, "publication.attempt",
                         attempt=publication.attempts)
            armed[post.channel] = publication
    return armed, posts


def disarm(engine: Engine, armed: Mapping[str, Publication], reason: str) -> None:
    """Return armed publications that were not sent (held, too late) to "reserved"."""
    with store.session_scope(engine) as session:
        for publication in armed.values():
            try:
                store.unmark_publishing(session, publication_id=publication.id)
            except StoreError:
                session.rollback()
                continue
            post = session.get(PostRecord, publication.post_id)
            if post is not None:
                rendered = post.to_rendered()
                _audit_armed(session, rendered, post, publication, publication.idempotency_key,
                             "publication.disarmed", reason=reason)


def _audit_armed(session: Session, rendered: RenderedPost, post: PostRecord,
                 publication: Publication, key: str, action: str, **detail: Any) -> None:
    store.record_audit(
        session, campaign_id=rendered.campaign_id, occurrence_date=rendered.occurrence,
        actor=ACTOR, action=action, channel=post.channel, content_hash=post.content_hash,
        detail={"publication_id": publication.id, "post_id": post.id,
                "idempotency_key": key, "armed": True, **detail})


def _armed_for(armed: Mapping[str, Publication] | None, post: PostRecord) -> Publication | None:
    if not armed:
        return None
    publication = armed.get(post.channel)
    return publication if publication is not None and publication.post_id == post.id else None


# --- the database, one short transaction at a time ----------------------------------------


async def _db(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in its own session in a worker thread (no transaction spans an await:
    on SQLite every transaction holds the write lock)."""

    def run() -> T:
        with store.session_scope(engine) as session:
            return work(session)

    return await asyncio.to_thread(run)


def _publication_events(session: Session, campaign_id: str, publication_id: int):
    return [e for e in store.audit_trail(session, campaign_id=campaign_id)
            if e.detail.get("publication_id") == publication_id]


# --- sends in flight: recording waits while a burst goes out --------------------------

# How long recording a result may wait for the other sends of a burst to go out.
RECORD_DEFER_MAX_S = 1.5


class _Traffic:
    """The sends in flight in one event loop.

    Many posts fall due at the same second. Recording each result is a database
    transaction in a worker thread that competes for the interpreter with the sends still
    going out; so a result is recorded once the burst has gone out (no send in flight) or
    after :data:`RECORD_DEFER_MAX_S`, whichever is first. The publication is "publishing"
    meanwhile: a crash in that moment is handled like any crash between sending and
    recording (a repeat where the network recognises it, else "unknown").
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight <= 0:
            self.in_flight = 0
            self._idle.set()

    async def quiet(self, max_wait: float = RECORD_DEFER_MAX_S) -> None:
        if self._idle.is_set():
            return
        try:
            await asyncio.wait_for(self._idle.wait(), max_wait)
        except TimeoutError:
            pass


_TRAFFIC: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Traffic] = (
    weakref.WeakKeyDictionary())


def _traffic() -> _Traffic:
    loop = asyncio.get_running_loop()
    traffic = _TRAFFIC.get(loop)
    if traffic is None:
        traffic = _TRAFFIC[loop] = _Traffic()
    return traffic


# --- one publication -------------------------------------------------------------------


@dataclass
class _Job:
    engine: Engine
    account: ChannelAccount
    client: httpx.AsyncClient
    credential: SecretStr | None
    notifier: Notifier | None
    confirm_url_for: Callable[[str], str] | None
    sleep: Callable[[float], Awaitable[Any]]
    signer: Signer | None
    media_root: Path | None
    publisher_options: Mapping[str, Any]
    retry_failed: bool
    max_attempts: int
    confirm_ttl: timedelta
    post: PostRecord
    rendered: RenderedPost
    key: str
    armed: Publication | None = None  # claimed ahead of its second (arm_occurrence)
    publisher: Publisher | None = None  # made (and warmed up) ahead by ready()
    # Only a "failed" publication is claimed (the office's retry): one found in any other
    # state is left as it is, e.g. "publishing" by a second retry at the same moment.
    failed_only: bool = False

    @property
    def channel(self) -> str:
        return self.account.name

    @property
    def publisher_cls(self) -> type[Publisher]:
        return PUBLISHERS[ChannelType(self.account.type)]

    # -- helpers --

    def _audit(self, session: Session, publication: Publication, action: str,
               *, actor: str = ACTOR, **detail: Any) -> None:
        store.record_audit(
            session, campaign_id=self.rendered.campaign_id,
            occurrence_date=self.rendered.occurrence, actor=actor, action=action,
            channel=self.channel, content_hash=self.post.content_hash,
            detail={"publication_id": publication.id, "post_id": self.post.id,
                    "idempotency_key": self.key, **detail},
        )

    def _outcome(self, publication: Publication, **extra: Any) -> PublicationOutcome:
        return PublicationOutcome(
            channel=self.channel, status=publication.status, post_id=self.post.id or 0,
            publication_id=publication.id, post_key=self.rendered.post_key,
            content_hash=self.post.content_hash, idempotency_key=self.key,
            remote_id=publication.remote_id, remote_url=publication.remote_url,
            error=publication.last_error, attempts=publication.attempts, **extra,
        )

    def _reload(self, session: Session) -> Publication:
        publication = store.get_publication(session, post_id=self.post.id, channel=self.channel)
        if publication is None:
            raise StoreError(f"publication of post {self.post.id} on {self.channel} vanished")
        return publication

    async def _transition(self, publication: Publication,
                          change: Callable[[Session], Publication], action: str,
                          **detail: Any) -> tuple[Publication, bool]:
        """Apply a state change and audit it; (current row, whether it was ours)."""

        def work(session: Session) -> tuple[Publication, bool]:
            try:
                changed = change(session)
            except StoreError:  # someone else settled it meanwhile
                session.rollback()
                return self._reload(session), False
            self._audit(session, changed, action, **detail)
            return changed, True

        return await _db(self.engine, work)

    # -- the steps --

    async def run(self) -> PublicationOutcome:
        if self.armed is not None:  # reserved and claimed before its second: just send
            return await self._send(self.armed)
        publication, lost_race = await _db(self.engine, self._reserve)
        status = PublicationStatus(publication.status)
        if status in _SETTLED or status == PublicationStatus.UNKNOWN or (
                self.failed_only and status != PublicationStatus.FAILED):
            return self._outcome(publication)
        if status == PublicationStatus.PUBLISHING:
            if lost_race:  # reserved by another worker a moment ago: it is at work
                return self._outcome(publication)
            # An earlier attempt died between sending and recording, or runs elsewhere.
            if not await self._repeat_is_harmless(publication):
                return await self._interrupted(publication)
            publication = await _db(self.engine, lambda s: self._resend(s, publication))
        else:
            if status == PublicationStatus.FAILED and not self.retry_failed:
                retryable = await _db(self.engine, lambda s: self._retryable(s, publication))
                if not retryable:
                    return self._outcome(publication)
            claimed = await _db(self.engine, lambda s: self._claim(s, publication))
            if claimed is None:  # another caller claimed it first: it is under way there
                return self._outcome(await _db(self.engine, self._reload))
            publication = claimed
        return await self._send(publication)

    def _reserve(self, session: Session) -> tuple[Publication, bool]:
        """The publication, reserved now if new; second item: another worker reserved it
        between our look and our insert (so that worker is alive and at it)."""
        existing = store.get_publication(session, post_id=self.post.id, channel=self.channel)
        if existing is not None:
            return existing, False
        if self.post.superseded_at is not None:
            raise StoreError(
                f"post {self.post.id} ({self.rendered.post_key}) was replaced by newer "
                "content; publish the occurrence's current post instead")
        try:
            publication = store.reserve_publication(
                session, post_id=self.post.id, channel=self.channel, idempotency_key=self.key)
        except AlreadyReserved:
            return self._reload(session), True
        self._audit(session, publication, "publication.reserved")
        return publication, False

    def _retryable(self, session: Session, publication: Publication) -> bool:
        for event in reversed(_publication_events(session, self.rendered.campaign_id,
                                                  publication.id)):
            if "retryable" in event.detail:
                return bool(event.detail["retryable"])
        return False

    def _progress(self, session: Session, publication: Publication) -> dict[str, Any]:
        """What the latest attempt that recorded any progress had achieved (see
        ``PublishError.progress``); empty if none did."""
        for event in reversed(_publication_events(session, self.rendered.campaign_id,
                                                  publication.id)):
            progress = event.detail.get("progress")
            if isinstance(progress, dict) and progress:
                return progress
        return {}

    def _claim(self, session: Session, publication: Publication) -> Publication | None:
        try:
            claimed = store.mark_publishing(session, publication_id=publication.id)
        except StoreError:
            session.rollback()
            return None
        self._audit(session, claimed, "publication.attempt", attempt=claimed.attempts)
        return claimed

    def _resend(self, session: Session, publication: Publication) -> Publication:
        self._audit(session, publication, "publication.attempt", attempt=publication.attempts,
                    repeat=True)
        return publication

    async def _repeat_is_harmless(self, publication: Publication) -> bool:
        # Asked of the publisher, after it met its server: on Mastodon's API whether a
        # repeat is recognised depends on the server (newsroom/channels/mastodon.py).
        try:
            publisher = await self._publisher()
            await publisher.warm_up()
        except PublishError:
            return False
        if not publisher.idempotent_retries:
            return False
        window = _REPEAT_WINDOW.get(ChannelType(self.account.type))
        if window is None:
            return True

        def last_attempt(session: Session) -> datetime:
            moments = [publication.reserved_at] + [
                e.at for e in _publication_events(session, self.rendered.campaign_id,
                                                  publication.id)
                if e.action == "publication.attempt"]
            return max(moments)

        return datetime.now(UTC) - await _db(self.engine, last_attempt) < window

    async def _interrupted(self, publication: Publication) -> PublicationOutcome:
        found = await self._find_published(publication)
        if found is not None:  # the earlier attempt did make it: that is the result
            return await self._published(publication, found, found_by_lookup=True)
        error = (
            f"{self.channel}: an earlier attempt was interrupted after it may have sent the "
            f"post, and {self.account.type.value} does not recognise a repeated request, so "
            "it was not sent again. Look at the account: if the post is there, run "
            f"`newsroom channels resolve {publication.id} --published --url URL`, otherwise "
            f"`newsroom channels resolve {publication.id} --not-published`"
        )
        return await self._unknown(publication, error, reason="interrupted")

    async def _find_published(self, publication: Publication) -> PublishResult | None:
        """Where the network can be searched: the post, if an earlier attempt made it."""
        try:
            publisher = await self._publisher()
            return await publisher.find_published(self.rendered,
                                                  since=publication.reserved_at)
        except PublishError as exc:
            logger.warning("%s: could not look for an earlier attempt's post (%s)",
                           self.channel, exc)
            return None

    def _secrets(self) -> tuple[str, ...]:
        return (self.credential.get_secret_value(),) if self.credential is not None else ()

    async def ready(self) -> None:
        """Make the publisher and let it fetch what its first post needs (a session, the
        instance's limits) now, ahead of the post's second. A failure here is left for
        the send to meet and report."""
        try:
            publisher = await self._publisher()
            await publisher.warm_up()
        except Exception as exc:  # noqa: BLE001 - the send meets it again and reports it
            logger.debug("%s: getting ready failed (%s); the send will tell", self.channel,
                         type(exc).__name__)

    async def _publisher(self) -> Publisher:
        if self.publisher is not None:
            return self.publisher
        cls = self.publisher_cls
        if self.credential is None and (cls.needs_credential or self.account.credential):
            self.credential = await aresolve_credential(self.account)
        credential = self.credential
        options = dict(self.publisher_options)
        if self.media_root is not None:
            options.setdefault("media_root", self.media_root)
        self.publisher = shared_publisher(self.account, client=self.client,
                                          credential=credential, **options)
        return self.publisher

    async def _send(self, publication: Publication) -> PublicationOutcome:
        try:
            publisher = await self._publisher()
        except PublishError as exc:  # no credential, account misconfigured: nothing sent
            return await self._failed(publication, exc)
        # Progress exists only from an earlier attempt (attempts counts this one too).
        progress = (await _db(self.engine, lambda s: self._progress(s, publication))
                    if publication.attempts > 1 else {})
        if progress:  # an earlier attempt got part of the way (e-mail: some recipients)
            publisher.restore_progress(self.key, progress)
        traffic = _traffic()
        traffic.started()
        failure: Exception | None = None
        try:
            result = await publish_with_retries(publisher, self.rendered, self.key,
                                                max_attempts=self.max_attempts,
                                                sleep=self.sleep)
        except Exception as exc:  # recorded below, once this send no longer counts
            failure = exc
        finally:
            traffic.finished()
        if failure is not None:
            return await self._after_failure(publication, failure)
        if result.awaiting_manual:
            return await self._awaiting_manual(publication, result)
        await traffic.quiet()
        # The publisher may have found the post made by this attempt after its answer was
        # lost (Mastodon's API without repeats, a Bluesky record that exists): say so.
        found = {"found_by_lookup": True} if result.raw.get("existing") else {}
        return await self._published(publication, result, attempts=result.attempts, **found)

    async def _published(self, publication: Publication, result: PublishResult,
                         **audit: Any) -> PublicationOutcome:
        """Record ``result`` (the network's answer, or the post found by a lookup) as the
        publication's outcome: published, with its remote id and URL."""
        published, _ = await self._transition(
            publication,
            lambda s: store.mark_published(s, publication_id=publication.id,
                                           remote_id=result.remote_id or None,
                                           remote_url=result.url),
            "publication.published", remote_id=result.remote_id, remote_url=result.url,
            **audit)
        return self._outcome(published, network_called=True)

    async def _after_failure(self, publication: Publication,
                             exc: Exception) -> PublicationOutcome:
        if isinstance(exc, AmbiguousPublishError):
            return await self._unknown(publication, str(exc), reason="no_answer",
                                       network_called=True, progress=exc.progress)
        if isinstance(exc, PermanentPublishError | TransientPublishError):
            return await self._failed(publication, exc, network_called=True)
        # A bug: the request may have gone out, a person checks.
        said = redact(f"{type(exc).__name__}: {exc}", self._secrets())
        logger.error("%s: publishing post %s failed unexpectedly (%s)", self.channel,
                     self.post.id, said)
        logger.debug("traceback of the failure above", exc_info=(type(exc), exc,
                                                                  exc.__traceback__))
        return await self._unknown(
            publication, f"{self.channel}: unexpected error while publishing ({said}); "
            "look at the account before anything else",
            reason="unexpected", network_called=True)

    async def _failed(self, publication: Publication, exc: PublishError,
                      *, network_called: bool = False) -> PublicationOutcome:
        # Transient: nothing went out and a later run may try again. Permanent: a person
        # must fix the cause first (the network's words are in last_error).
        retryable = isinstance(exc, TransientPublishError)
        failed, ours = await self._transition(
            publication, lambda s: store.mark_failed(s, publication_id=publication.id,
                                                     error=str(exc)),
            "publication.failed", retryable=retryable, error=str(exc),
            status_code=exc.status_code, retry_after=exc.retry_after,
            **({"progress": exc.progress} if exc.progress else {}),
        )
        alerted = False
        if ours and not retryable:
            headline, what, todo = _failed_alert_words(self.account, failed.id, exc)
            alerted = await self._alert(headline, what, str(exc), todo, failed)
        return self._outcome(failed, network_called=network_called, alerted=alerted,
                             retry_after=exc.retry_after)

    async def _unknown(self, publication: Publication, error: str, *, reason: str,
                       network_called: bool = False,
                       progress: Mapping[str, Any] | None = None) -> PublicationOutcome:
        unknown, ours = await self._transition(
            publication, lambda s: store.mark_unknown(s, publication_id=publication.id,
                                                      error=error),
            "publication.unknown", reason=reason, error=error, retryable=False,
            **({"progress": dict(progress)} if progress else {}),
        )
        alerted = False
        if ours:
            headline, what, todo = _unknown_alert_words(self.account.display_name, unknown.id)
            alerted = await self._alert(headline, what, error, todo, unknown)
        return self._outcome(unknown, network_called=network_called, alerted=alerted)

    async def _awaiting_manual(self, publication: Publication, result: PublishResult
                               ) -> PublicationOutcome:
        owner = self.account.owner or ""
        assert self.signer is not None and self.confirm_url_for is not None  # publish_post
        token, claims = self.signer.issue(
            purpose=MANUAL_CONFIRM,
            subject={"publication": publication.id, "post": self.post.id},
            person=owner, content_hash=self.post.content_hash, ttl=self.confirm_ttl,
        )
        subject, text, html = build_manual_notice(self.rendered, self.account,
                                                  self.confirm_url_for(token))
        notified = await self._notify(owner, subject, text, html,
                                      attachments=self._media_files())
        note = f"{owner} has been asked to post it by hand"
        if not notified:
            note = f"the message asking {owner} to post it by hand could not be sent"
        waiting, ours = await self._transition(
            publication, lambda s: store.mark_awaiting_manual(s, publication_id=publication.id,
                                                              note=note),
            "publication.awaiting_manual", owner=owner, notified=notified,
            token_nonce=claims.nonce, link_expires_at=claims.expires_at.isoformat(),
        )
        alerted = False
        if ours and not notified:
            alerted = await self._alert(
                "Benachrichtigung nicht zugestellt",
                f"Der Beitrag für {self.account.display_name} muss von Hand veröffentlicht "
                f"werden, aber die Nachricht an „{owner}“ konnte nicht gesendet werden.",
                note,
                "Bitte die Benachrichtigungs-Einstellungen (apprise) für diese Adresse prüfen "
                "und die zuständige Stelle direkt informieren.",
                waiting,
            )
        return self._outcome(waiting, network_called=True, notified=notified, alerted=alerted)

    def _media_files(self) -> list[Path]:
        files = []
        for item in self.rendered.media:
            if urlsplit(item.source).scheme:
                continue
            path = Path(item.source)
            if not path.is_absolute() and self.media_root is not None:
                path = self.media_root / path
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if not item.sha256 or hashlib.sha256(data).hexdigest() == item.sha256:
                files.append(path)
        return files

    # -- telling people --

    async def _notify(self, tag: str, subject: str, text: str, html: str | None = None,
                      *, attachments: Iterable[Path] = ()) -> bool:
        if self.notifier is None:
            logger.warning("%s: no notifier configured; %r was not sent to %r",
                           self.channel, subject, tag)
            return False
        try:
            return bool(await asyncio.to_thread(
                self.notifier.notify, tag, subject, text, html, attachments=tuple(attachments)))
        except Exception:  # telling people must never break publishing
            logger.exception("%s: the notification to %r failed", self.channel, tag)
            return False

    async def _alert(self, headline: str, what: str, error: str, todo: str,
                     publication: Publication) -> bool:
        subject, text = alert_message(self.rendered, self.account.display_name, self.channel,
                                      publication, headline, what, error, todo)
        sent = await self._notify(ALERT_TAG, subject, text)
        if sent:  # recorded, so that the sweep (send_owed_alerts) does not send it again
            await _db(self.engine, lambda s: self._audit(s, publication, ALERTED,
                                                         headline=headline))
        return sent


def alert_message(rendered: RenderedPost, account_name: str, channel: str,
                  publication: Publication, headline: str, what: str, error: str,
                  todo: str) -> tuple[str, str]:
    """Subject and text of an alert to the communications office (German)."""
    when = rendered.publish_at.astimezone(BERLIN)
    subject = f"Newsroom: {headline} – {rendered.title or rendered.campaign_id} ({channel})"
    text = (
        f"{what}\n\n"
        f"Kampagne:      {rendered.title or rendered.campaign_id} ({rendered.campaign_id})\n"
        f"Termin:        {german_date(rendered.occurrence)}\n"
        f"Kanal:         {account_name} ({channel})\n"
        f"Geplant für:   {format_local_german(when, weekday=False)}\n"
        f"Publikation:   {publication.id} (Status: {publication.status}, "
        f"Versuche: {publication.attempts})\n\n"
        f"Meldung:\n{error}\n\n"
        f"Was zu tun ist:\n{todo}\n"
    )
    return subject, text


def _failed_alert_words(account: ChannelAccount, publication_id: int | None,
                        exc: PublishError) -> tuple[str, str, str]:
    """Headline, what happened and what to do, for a publication failed for good."""
    retry = (f"erneut veröffentlichen: `newsroom channels retry {publication_id}` oder im "
             f"Prefect-UI das Deployment „retry-publication“ mit der Nummer {publication_id}.")
    if isinstance(exc, RecipientsRefused):
        refused = "\n".join(f"  {address} – {reply}" for address, reply in exc.refused.items())
        plural = len(exc.refused) > 1
        return (
            f"Presseverteiler: {'Adressen' if plural else 'Adresse'} abgelehnt",
            f"Der Mailserver hat die Zustellung der Pressemitteilung an {len(exc.refused)} "
            f"{'Adressen' if plural else 'Adresse'} des Kontos „{account.display_name}“ "
            f"dauerhaft abgelehnt:\n{refused}\nAlle anderen Empfänger haben sie erhalten, "
            "jeder einmal.",
            f"Bitte {'die Adressen' if plural else 'die Adresse'} in der Empfängerliste des "
            f"Kontos „{account.name}“ (`recipients` in registry/channels.yaml) korrigieren "
            f"oder streichen und dann {retry} Die Pressemitteilung geht dann nur an "
            "Empfänger, die sie noch nicht erhalten haben.",
        )
    return (
        "Veröffentlichung fehlgeschlagen",
        f"{account.display_name} hat den Beitrag abgelehnt; er ist nicht erschienen.",
        "Bitte die Ursache beheben (bei abgelehnten Zugangsdaten: erneuern und mit "
        f"`newsroom channels check` prüfen) und dann {retry}",
    )


def _unknown_alert_words(account_name: str, publication_id: int | None
                         ) -> tuple[str, str, str]:
    """Headline, what happened and what to do, for a publication left "unknown"."""
    return (
        "Veröffentlichung unklar – bitte prüfen",
        f"Ob der Beitrag auf {account_name} erschienen ist, ist nicht bekannt. Newsroom "
        "sendet ihn nicht noch einmal, damit er nicht doppelt erscheint.",
        "Bitte im Konto nachsehen und das Ergebnis festhalten: "
        f"`newsroom channels resolve {publication_id} --published --url <Adresse>` oder "
        f"`newsroom channels resolve {publication_id} --not-published` (dann wird er beim "
        "nächsten Lauf veröffentlicht).",
    )


def send_owed_alerts(engine: Engine, accounts: Mapping[str, ChannelAccount],
                     notifier: Notifier | None, *, settle: timedelta = OWED_ALERT_SETTLE,
                     now: datetime | None = None) -> list[int]:
    """Alert the office about every "unknown" publication nobody was alerted about.

    A worker killed between recording "unknown" and sending its alert leaves a
    publication the office does not know of. Run periodically (housekeeping, every
    minute: flows/housekeeping.py): each such publication, "unknown" for longer than ``settle``
    (its own worker may still be sending), gets the alert once. Returns their ids.
    """
    now = now or datetime.now(UTC)
    if notifier is None:
        return []
    owed: list[tuple[Publication, PostRecord]] = []
    with store.session_scope(engine) as session:
        rows = session.exec(
            select(Publication, PostRecord)
            .join(PostRecord, col(PostRecord.id) == col(Publication.post_id))
            .where(Publication.status == PublicationStatus.UNKNOWN.value)
            .order_by(col(Publication.id))).all()
        trails: dict[str, list[store.AuditEvent]] = {}
        for publication, post in rows:
            rendered = post.to_rendered()
            if rendered.campaign_id not in trails:
                trails[rendered.campaign_id] = store.audit_trail(
                    session, campaign_id=rendered.campaign_id)
            events = [e for e in trails[rendered.campaign_id]
                      if (e.detail or {}).get("publication_id") == publication.id]
            if any(e.action == ALERTED for e in events):
                continue
            marked = [e.at for e in events if e.action == "publication.unknown"]
            if marked and now - max(marked) < settle:
                continue
            owed.append((publication, post))
    alerted = []
    for publication, post in owed:
        rendered = post.to_rendered()
        account = accounts.get(post.channel)
        name = account.display_name if account is not None else post.channel
        headline, what, todo = _unknown_alert_words(name, publication.id)
        subject, text = alert_message(rendered, name, post.channel, publication, headline,
                                      what, publication.last_error or "", todo)
        try:
            sent = notifier.notify(ALERT_TAG, subject, text, None)
        except Exception:  # noqa: BLE001 - the next sweep tries again
            logger.exception("the owed alert about publication %s failed", publication.id)
            sent = False
        if not sent:
            continue
        with store.session_scope(engine) as session:
            store.record_audit(
                session, campaign_id=rendered.campaign_id, occurrence_date=rendered.occurrence,
                actor=ACTOR, action=ALERTED, channel=post.channel,
                content_hash=post.content_hash,
                detail={"publication_id": publication.id, "post_id": post.id,
                        "headline": headline, "owed": True})
        logger.warning("alerted the office about publication %s (%s %s, %s): it was "
                       "unknown without an alert", publication.id, rendered.campaign_id,
                       rendered.occurrence, post.channel)
        alerted.append(publication.id)
    return alerted


# Concurrent calls for the same post in one event loop share one attempt.
_FLIGHTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task]] = (
    weakref.WeakKeyDictionary())
_FLIGHTS_LOCK = threading.Lock()  # event loops in several threads share the mapping


def _consume(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as lost


async def publish_post(
    *,
    engine: Engine,
    post_id: int,
    account: ChannelAccount,
    client: httpx.AsyncClient,
    credential: SecretStr | None = None,
    notifier: Notifier | None = None,
    confirm_url_for: Callable[[str], str] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    signer: Signer | None = None,
    media_root: Path | None = None,
    publisher_options: Mapping[str, Any] | None = None,
    retry_failed: bool = False,
    max_attempts: int = 5,
    confirm_ttl: timedelta = DEFAULT_CONFIRM_TTL,
    armed: Publication | None = None,
    preloaded: PostRecord | None = None,
    failed_only: bool = False,
) -> PublicationOutcome:
    """Publish the stored post ``post_id`` on ``account`` at most once; see the module doc.

    ``credential`` defaults to the account's (environment or Prefect Secret block);
    ``media_root`` is where relative image paths live (the catalog folder);
    ``confirm_url_for(token)`` makes the link a manual channel's owner confirms with
    (:func:`manual_confirm_url`); ``signer`` signs it (default: from the settings).
    ``failed_only`` (with ``retry_failed``: the office's retry) claims the publication
    only from "failed" and leaves it alone in any other state.
    Raises :class:`StoreError` for a post that does not exist, belongs to another
    channel or was superseded, and ValueError / SigningKeyRefused when a manual channel
    cannot get its confirmation link; every publishing failure is an outcome.
    """
    job = await _make_job(
        engine=engine, post_id=post_id, account=account, client=client,
        credential=credential, notifier=notifier, confirm_url_for=confirm_url_for,
        sleep=sleep, signer=signer, media_root=media_root,
        publisher_options=publisher_options, retry_failed=retry_failed,
        max_attempts=max_attempts, confirm_ttl=confirm_ttl, armed=armed, preloaded=preloaded)
    job.failed_only = failed_only
    return await _fly(job)


async def _make_job(
    *, engine: Engine, post_id: int, account: ChannelAccount, client: httpx.AsyncClient,
    credential: SecretStr | None, notifier: Notifier | None,
    confirm_url_for: Callable[[str], str] | None, sleep: Callable[[float], Awaitable[Any]],
    signer: Signer | None, media_root: Path | None,
    publisher_options: Mapping[str, Any] | None, retry_failed: bool = False,
    max_attempts: int = 5, confirm_ttl: timedelta = DEFAULT_CONFIRM_TTL,
    armed: Publication | None = None, preloaded: PostRecord | None = None,
) -> _Job:
    def load(session: Session) -> PostRecord:
        post = session.get(PostRecord, post_id)
        if post is None:
            raise StoreError(f"no post with id {post_id}; render and store the occurrence first")
        return post

    post = preloaded if preloaded is not None and preloaded.id == post_id else (
        await _db(engine, load))
    if post.channel != account.name:
        raise StoreError(f"post {post_id} is for channel {post.channel!r}, not for "
                         f"{account.name!r}")
    if account.type == ChannelType.MANUAL:
        if confirm_url_for is None:
            raise ValueError(f"{account.name} is a manual channel: pass confirm_url_for, "
                             "which makes the link its owner confirms with "
                             "(see manual_confirm_url)")
        signer = signer or Signer.from_settings()
    rendered = post.to_rendered()
    return _Job(
        engine=engine, account=account, client=client, credential=credential,
        notifier=notifier, confirm_url_for=confirm_url_for, sleep=sleep, signer=signer,
        media_root=media_root, publisher_options=publisher_options or {},
        retry_failed=retry_failed, max_attempts=max_attempts, confirm_ttl=confirm_ttl,
        armed=armed, post=post, rendered=rendered, key=idempotency_key_for(rendered.post_key,
                                                              post.content_hash),
    )


async def _fly(job: _Job) -> PublicationOutcome:
    """Run the job, or join the run of the same publication already under way here."""
    with _FLIGHTS_LOCK:
        flights = _FLIGHTS.setdefault(asyncio.get_running_loop(), {})
    task = flights.get(job.key)
    if task is None:
        task = asyncio.ensure_future(job.run())
        flights[job.key] = task
        task.add_done_callback(_consume)
        task.add_done_callback(lambda t: flights.pop(job.key, None) if flights.get(
            job.key) is t else None)
    # Shielded: a cancelled caller must not cut an attempt between sending and recording.
    return await asyncio.shield(task)


@dataclass
class ReadySends:
    """An occurrence's publications made ready to send (see :func:`ready_occurrence`)."""

    occurrence_id: int
    jobs: list[tuple[PostRecord, _Job | Exception]]


async def ready_occurrence(
    *,
    engine: Engine,
    occurrence_id: int,
    accounts: Mapping[str, ChannelAccount],
    client: httpx.AsyncClient | Callable[[ChannelAccount], httpx.AsyncClient],
    credentials: Mapping[str, SecretStr] | None = None,
    notifier: Notifier | None = None,
    confirm_url_for: Callable[[str], str] | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    signer: Signer | None = None,
    media_root: Path | None = None,
    publisher_options: Mapping[str, Mapping[str, Any]] | None = None,
    channels: Iterable[str] | None = None,
    armed: Mapping[str, Publication] | None = None,
    posts: list[PostRecord] | None = None,
) -> ReadySends:
    """Everything :func:`send_ready` needs, made ahead of the posts' second: each post
    read and keyed, each publisher made and warmed up (Bluesky's session, Mastodon's
    instance limits). Nothing is sent and no state changes (see :func:`arm_occurrence`).
    """
    if posts is None:  # else: the current posts, read a moment ago (arm_occurrence)
        posts = await _db(engine, lambda s: store.current_posts(s, occurrence_id=occurrence_id))
    if channels is not None:
        wanted = set(channels)
        posts = [p for p in posts if p.channel in wanted]
    client_for = client if callable(client) else (lambda account: client)
    jobs: list[tuple[PostRecord, _Job | Exception]] = []
    for post in posts:
        account = accounts.get(post.channel)
        try:
            if account is None:
                raise StoreError(f"channel {post.channel!r} is not in the channel registry; "
                                 "add it to registry/channels.yaml or render the occurrence "
                                 "again")
            job: _Job | Exception = await _make_job(
                engine=engine, post_id=post.id, account=account, client=client_for(account),
                credential=(credentials or {}).get(post.channel), notifier=notifier,
                confirm_url_for=confirm_url_for, sleep=sleep, signer=signer,
                media_root=media_root,
                publisher_options=(publisher_options or {}).get(post.channel),
                armed=_armed_for(armed, post), preloaded=post)
        except Exception as exc:  # reported per channel by send_ready
            job = exc
        jobs.append((post, job))
    await asyncio.gather(*(job.ready() for _, job in jobs if isinstance(job, _Job)))
    return ReadySends(occurrence_id=occurrence_id, jobs=jobs)


async def send_ready(ready: ReadySends) -> OccurrencePublication:
    """Send every post made ready, all channels at once.

    One channel's failure (or exception) never stops another: each channel gets its
    outcome, and what raised is in ``errors``.
    """

    async def one(job: _Job | Exception) -> PublicationOutcome:
        if isinstance(job, Exception):
            raise job
        return await _fly(job)

    results = await asyncio.gather(*(one(job) for _, job in ready.jobs),
                                   return_exceptions=True)
    outcome = OccurrencePublication(occurrence_id=ready.occurrence_id)
    for (post, _), result in zip(ready.jobs, results, strict=True):
        if isinstance(result, BaseException):
            logger.error("%s: publishing post %s raised %s: %s", post.channel, post.id,
                         type(result).__name__, result)
            outcome.errors[post.channel] = result
        else:
            outcome.outcomes[post.channel] = result
    return outcome


async def publish_occurrence(**options: Any) -> OccurrencePublication:
    """Publish every current post of the occurrence, all channels at once: what
    :func:`ready_occurrence` (its arguments) and then :func:`send_ready` do.

    ``accounts`` is ``catalog.accounts``; ``client`` is one HTTP client for all, or a
    function giving each account's; ``credentials`` and ``publisher_options`` are by
    channel name. One channel's failure never stops another (``errors``).
    """
    return await send_ready(await ready_occurrence(**options))


# --- for the person who decides ---------------------------------------------------------


@dataclass(frozen=True)
class OpenPublication:
    """A publication a person has to look at: "unknown" (may be online: look, then
    :func:`resolve_unknown`) or "failed" (not online: fix the cause, then
    :func:`newsroom.retries.retry_publication`)."""

    publication: Publication
    post_key: str
    campaign_id: str
    occurrence_date: date
    publish_at: datetime

    @property
    def status(self) -> PublicationStatus:
        return PublicationStatus(self.publication.status)


def open_publications(
    engine: Engine,
    statuses: Iterable[PublicationStatus] = (PublicationStatus.UNKNOWN,
                                             PublicationStatus.FAILED),
) -> list[OpenPublication]:
    """Publications in one of ``statuses`` (default: unknown and failed), oldest first.
    A failed publication of a post replaced by newer content is left out: the current
    post has a publication of its own."""
    wanted = [PublicationStatus(s).value for s in statuses]
    with store.session_scope(engine) as session:
        query = (select(Publication, PostRecord)
                 .join(PostRecord, col(PostRecord.id) == col(Publication.post_id))
                 .where(col(Publication.status).in_(wanted))
                 .order_by(col(Publication.reserved_at), col(Publication.id)))
        result = []
        for publication, post in session.exec(query):
            if (publication.status == PublicationStatus.FAILED
                    and post.superseded_at is not None):
                continue
            rendered = post.to_rendered()
            result.append(OpenPublication(
                publication=publication, post_key=rendered.post_key,
                campaign_id=rendered.campaign_id, occurrence_date=rendered.occurrence,
                publish_at=post.publish_at))
        return result


def unknown_publications(engine: Engine) -> list[OpenPublication]:
    """Publications in state "unknown", oldest first."""
    return open_publications(engine, (PublicationStatus.UNKNOWN,))


def resolve_unknown(
    engine: Engine,
    publication_id: int,
    *,
    outcome: Literal["published", "not_published"],
    by: str,
    remote_url: str | None = None,
) -> Publication:
    """Record what a person found for an "unknown" publication.

    "published": the post is online (``remote_url`` where). "not_published": it is not;
    the publication becomes "failed", and the office publishes it with
    :func:`newsroom.retries.retry_publication` (``newsroom channels retry ID``).
    """
    if outcome not in ("published", "not_published"):
        raise ValueError("outcome must be 'published' or 'not_published'")
    if not by:
        raise ValueError("say who decided (by=...)")
    if remote_url is not None and urlsplit(remote_url).scheme not in ("http", "https"):
        raise ValueError(f"{remote_url!r} is not a web address (http:// or https://)")
    with store.session_scope(engine) as session:
        publication = session.get(Publication, publication_id)
        if publication is None:
            raise StoreError(f"no publication with id {publication_id}; "
                             "`newsroom channels unknown` lists the open ones")
        if publication.status != PublicationStatus.UNKNOWN:
            raise StoreError(f"publication {publication_id} is {publication.status}, not "
                             "unknown; there is nothing to resolve")
        post = session.get(PostRecord, publication.post_id)
        assert post is not None  # a foreign key
        rendered = post.to_rendered()
        if outcome == "published":
            publication = store.mark_published(session, publication_id=publication_id,
                                               remote_id=None, remote_url=remote_url)
        else:
            publication = store.mark_failed(
                session, publication_id=publication_id,
                error=f"checked by {by}: the post is not online; publish it with "
                f"`newsroom channels retry {publication_id}`")
        store.record_audit(
            session, campaign_id=rendered.campaign_id, occurrence_date=rendered.occurrence,
            actor=by, action="publication.resolved", channel=publication.channel,
            content_hash=post.content_hash,
            detail={"publication_id": publication_id, "post_id": post.id, "outcome": outcome,
                    "remote_url": remote_url, "retryable": outcome == "not_published"},
        )
        return publication


# --- checking the accounts ----------------------------------------------------------------


@dataclass(frozen=True)
class AccountStatus:
    """One line of ``newsroom channels check``."""

    channel: str
    ok: bool
    message: str


def _credential_hint(account: ChannelAccount, cause: str = "") -> str:
    credential = account.credential
    if credential is None:
        return ("the account has no `credential` in registry/channels.yaml: add "
                "`credential: {env: NAME}` or `credential: {secret_block: NAME}`")
    if credential.env and credential.secret_block:
        text = (f"{credential.env} is not set: set it or create the Prefect Secret block "
                f"{credential.secret_block}")
    elif credential.env:
        text = f"{credential.env} is not set: set it"
    else:
        text = f"the Prefect Secret block {credential.secret_block} does not exist: create it"
    return text + (f" ({cause})" if cause else "")


def _where_to_store(account: ChannelAccount) -> str:
    credential = account.credential
    if credential is None:
        return ""
    places = [p for p in (credential.env, credential.secret_block and
                          f"the Prefect Secret block {credential.secret_block}") if p]
    return " and store it in " + " or ".join(places)


async def _check_one(account: ChannelAccount, client: httpx.AsyncClient, timeout: float,
                     options: Mapping[str, Any]) -> AccountStatus:
    name = account.name
    cls = PUBLISHERS[ChannelType(account.type)]
    credential = None
    try:
        if cls.needs_credential or account.credential is not None:
            async with asyncio.timeout(timeout):
                credential = await aresolve_credential(account)
    except CredentialMissing:
        return AccountStatus(name, False, _credential_hint(account))
    except (TransientPublishError, TimeoutError):
        return AccountStatus(name, False, _credential_hint(
            account, "the Prefect API could not be asked for the block: is PREFECT_API_URL "
            "right and the server up?"))
    try:
        publisher = publisher_for(account, client=client, credential=credential, **options)
        async with asyncio.timeout(timeout):
            check = await publisher.check()
    except TimeoutError:
        return AccountStatus(name, False, f"no answer within {timeout:g} s from "
                             f"{account.base_url or cls.default_base_url or 'the network'}: "
                             "is it reachable? try again later")
    except PublishError as exc:
        return AccountStatus(name, False, f"{exc}")
    if not check.ok:
        where = _where_to_store(account) if check.about_credential else ""
        if check.fix:
            return AccountStatus(name, False, f"{check.message}; {check.fix}{where}")
        return AccountStatus(name, False,
                             f"the credential was refused: {check.message or 'no reason given'}"
                             f"; renew it{where}")
    return AccountStatus(name, True, "; ".join(
        part for part in (check.identity or check.message or "ok", *check.details) if part))


async def check_accounts(
    accounts: Iterable[ChannelAccount],
    *,
    client: httpx.AsyncClient,
    timeout: float = 15.0,
    publisher_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[AccountStatus]:
    """:meth:`Publisher.check` for every account at once, each within ``timeout``."""
    accounts = list(accounts)
    return list(await asyncio.gather(*(
        _check_one(a, client, timeout, (publisher_options or {}).get(a.name, {}))
        for a in accounts)))
