"""The publication state machine: one stored post on one channel, exactly once.

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
  ``publishing`` (a locked transition) calls the network. Found in ``publishing`` with
  no request out yet (``send_started_at`` unset: armed ahead of its second by a run that
  died, or is slower), the claim is taken over (compare-and-set on its token) and the
  post sent; the first claimant, should it wake, finds the claim gone and sends nothing.
  Found marked for sending by a process that is gone and whose send journal
  (:mod:`newsroom.send_journal`) holds no line for it — killed while its burst went out,
  before this request's turn — it is taken over and sent the same way.
  Found in ``publishing`` after a request may have left — an
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
- ``unknown`` is never retried automatically:
  :func:`~newsroom.publishing.resolving.resolve_unknown` records what a person found.
- What a failed attempt did achieve (``PublishError.progress``: the e-mail recipients
  who got the press release) is written to the audit trail with it and handed to the
  next attempt's publisher (``Publisher.restore_progress``), so a retry never repeats it.

Every step is written to the audit trail (actor "publisher"). Within one event loop,
concurrent calls for the same post share one attempt. Alerts and the manual owner's
message go through a :class:`~newsroom.notify.Notifier`; texts for people are German.

Its size (about 650 lines): the transitions of one publication and their audit events are
kept in one module on purpose, so that the exactly-once rules can be read (and reviewed)
in one place; the burst, arming, alerts and resolving are modules of their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import send_journal, store
from newsroom.catalog.models import ChannelAccount, ChannelType
from newsroom.channels import (
    PUBLISHERS,
    Publisher,
    PublishResult,
    aresolve_credential,
    build_manual_notice,
    publish_with_retries,
)
from newsroom.errors import (
    AlreadyReserved,
    AmbiguousPublishError,
    PermanentPublishError,
    PublishError,
    StoreError,
    TransientPublishError,
)
from newsroom.notify import ALERT_TAG, Notifier
from newsroom.posts import RenderedPost
from newsroom.redaction import redact
from newsroom.signing import MANUAL_CONFIRM, Signer
from newsroom.store import AuditEvent, PostRecord, Publication, PublicationStatus, stored_id
from newsroom.store.models import utcnow

from .alerts import ALERTED, alert_message, failed_alert_words, unknown_alert_words
from .burst import current_traffic
from .outcomes import ACTOR, DEFAULT_CONFIRM_TTL, SETTLED, PublicationOutcome, idempotency_key_for
from .publishers import shared_publisher
from .transactions import publication_events, run_in_session

__all__ = ["PublishJob", "fly", "make_job", "publish_post"]

logger = logging.getLogger("newsroom.publishing")

# How long a network recognises a repeated request as the same post; absent: for good
# (Bluesky's record key, nothing sent for manual channels). Mastodon keeps an
# Idempotency-Key for one hour: leave a margin.
_REPEAT_WINDOW: dict[ChannelType, timedelta] = {ChannelType.MASTODON: timedelta(minutes=50)}


@dataclass
class PublishJob:
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
        """The step's audit event, committed now (with what the session holds)."""
        store.add_audit_events(session, [self._event(publication, action, actor=actor,
                                                     **detail)])
        session.commit()

    def _event(self, publication: Publication, action: str, *, actor: str = ACTOR,
               **detail: Any) -> AuditEvent:
        """The audit event of a step, to be written in the step's own transaction."""
        return AuditEvent(
            at=utcnow(), campaign_id=self.rendered.campaign_id,
            occurrence_date=self.rendered.occurrence, actor=actor, action=action,
            channel=self.channel, content_hash=self.post.content_hash,
            detail={"publication_id": publication.id, "post_id": self.post.id,
                    "idempotency_key": self.key, **detail})

    def _outcome(self, publication: Publication, **extra: Any) -> PublicationOutcome:
        return PublicationOutcome(
            channel=self.channel, status=publication.status, post_id=self.post.id or 0,
            publication_id=publication.id, post_key=self.rendered.post_key,
            content_hash=self.post.content_hash, idempotency_key=self.key,
            remote_id=publication.remote_id, remote_url=publication.remote_url,
            error=publication.last_error, attempts=publication.attempts, **extra,
        )

    def _reload(self, session: Session) -> Publication:
        publication = store.get_publication(session, post_id=stored_id(self.post),
                                            channel=self.channel)
        if publication is None:
            raise StoreError(f"publication of post {self.post.id} on {self.channel} vanished")
        return publication

    async def _transition(self, publication: Publication,
                          change: Callable[[Session], Publication], action: str,
                          **detail: Any) -> tuple[Publication, bool]:
        """Apply a state change and audit it; (current row, whether it was ours)."""

        def work(session: Session) -> tuple[Publication, bool]:
            try:
                changed = change(session)  # not committed: with its audit event below
            except StoreError:  # someone else settled it meanwhile
                session.rollback()
                return self._reload(session), False
            store.add_audit_events(session, [self._event(changed, action, **detail)])
            return changed, True  # committed by run_in_session

        return await run_in_session(self.engine, work)

    # -- the steps --

    async def run(self) -> PublicationOutcome:
        if self.armed is not None:  # reserved and claimed before its second: just send
            return await self._send(self.armed)
        publication, lost_race, ours = await run_in_session(self.engine, self._reserve)
        if ours:  # new: reserved and claimed in one transaction, committed
            return await self._send(publication)
        status = PublicationStatus(publication.status)
        if status in SETTLED or status == PublicationStatus.UNKNOWN or (
                self.failed_only and status != PublicationStatus.FAILED):
            return self._outcome(publication)
        if status == PublicationStatus.PUBLISHING:
            if lost_race:  # reserved by another worker a moment ago: it is at work
                return self._outcome(publication)
            # Provably unsent: armed by a run that died before its second (or is slower
            # than this one), or marked for sending by a process that is gone and, by its
            # send journal, never began this request (killed while its burst went out).
            # Take the claim over and send; a claimant that marks it (or sends it) first
            # keeps it, and it is treated as possibly sent below.
            marked = publication.send_started_at is not None
            if not marked or (self.publisher_cls.journals_sends and send_journal.never_sent(
                    publication.sent_by, stored_id(publication))):
                taken = await run_in_session(
                    self.engine, lambda s: self._take_over(s, publication, marked=marked))
                if taken is not None:
                    return await self._send(taken)
                publication = await run_in_session(self.engine, self._reload)
                if publication.status != PublicationStatus.PUBLISHING:
                    return self._outcome(publication)
            # An earlier attempt died between sending and recording, or runs elsewhere.
            if not await self._repeat_is_harmless(publication):
                return await self._interrupted(publication)
            publication = await run_in_session(self.engine, lambda s: self._resend(s, publication))
        else:
            if status == PublicationStatus.FAILED and not self.retry_failed:
                retryable = await run_in_session(
                    self.engine, lambda s: self._retryable(s, publication))
                if not retryable:
                    return self._outcome(publication)
            claimed = await run_in_session(self.engine, lambda s: self._claim(s, publication))
            if claimed is None:  # another caller claimed it first: it is under way there
                return self._outcome(await run_in_session(self.engine, self._reload))
            publication = claimed
        return await self._send(publication)

    def _reserve(self, session: Session) -> tuple[Publication, bool, bool]:
        """The publication, reserved now if new; second item: another worker reserved it
        between our look and our insert (so that worker is alive and at it); third: it was
        new and is claimed for sending by this call (one transaction with its audit
        events, committed before returning: before any request leaves)."""
        if store.publication_exists(session, post_id=stored_id(self.post), channel=self.channel):
            return self._reload(session), False, False
        if self.post.superseded_at is not None:
            raise StoreError(
                f"post {self.post.id} ({self.rendered.post_key}) was replaced by newer "
                "content; publish the occurrence's current post instead")
        try:
            if self.failed_only:  # the office's retry of a failed one: reserved, not sent
                publication = store.reserve_publication(
                    session, post_id=stored_id(self.post), channel=self.channel,
                    idempotency_key=self.key)
                self._audit(session, publication, "publication.reserved")
                return publication, False, False
            publication = store.reserve_for_sending(
                session, post_id=stored_id(self.post), channel=self.channel,
                idempotency_key=self.key, commit=False, sent_by=send_journal.sent_by())
        except AlreadyReserved:
            return self._reload(session), True, False
        store.add_audit_events(session, [
            self._event(publication, "publication.reserved"),
            self._event(publication, "publication.attempt", attempt=publication.attempts)])
        session.commit()
        return publication, False, True

    def _retryable(self, session: Session, publication: Publication) -> bool:
        for event in reversed(publication_events(session, self.rendered.campaign_id,
                                                 stored_id(publication))):
            if "retryable" in event.detail:
                return bool(event.detail["retryable"])
        return False

    def _progress(self, session: Session, publication: Publication) -> dict[str, Any]:
        """What the latest attempt that recorded any progress had achieved (see
        ``PublishError.progress``); empty if none did."""
        for event in reversed(publication_events(session, self.rendered.campaign_id,
                                                 stored_id(publication))):
            progress = event.detail.get("progress")
            if isinstance(progress, dict) and progress:
                return progress
        return {}

    def _claim(self, session: Session, publication: Publication) -> Publication | None:
        try:
            claimed = store.mark_publishing(session, publication_id=stored_id(publication),
                                            sent_by=send_journal.sent_by())
        except StoreError:
            session.rollback()
            return None
        self._audit(session, claimed, "publication.attempt", attempt=claimed.attempts)
        return claimed

    def _take_over(self, session: Session, publication: Publication, *, marked: bool = False
                   ) -> Publication | None:
        taken = store.take_over_unsent(session, publication_id=stored_id(publication),
                                       claim_token=publication.claim_token, marked=marked,
                                       sent_by=send_journal.sent_by())
        if taken is not None:
            detail: dict[str, Any] = {"never_sent_by_journal": True} if marked else {}
            self._audit(session, taken, "publication.attempt", attempt=taken.attempts,
                        taken_over=True, **detail)
        return taken

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
                e.at for e in publication_events(session, self.rendered.campaign_id,
                                                 stored_id(publication))
                if e.action == "publication.attempt"]
            return max(moments)

        return datetime.now(UTC) - await run_in_session(self.engine, last_attempt) < window

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
        progress = (await run_in_session(self.engine,
                                         lambda s: self._progress(s, publication))
                    if publication.attempts > 1 else {})
        if progress:  # an earlier attempt got part of the way (e-mail: some recipients)
            publisher.restore_progress(self.key, progress)
        traffic = current_traffic()
        traffic.started()
        failure: Exception | None = None
        try:
            with send_journal.sending(stored_id(publication), publication.claim_token):
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
        found: dict[str, Any] = {"found_by_lookup": True} if result.raw.get("existing") else {}
        if result.raw.get("recipients"):
            # Who received it (a press e-mail): a recall's correction goes to exactly them.
            found["recipients"] = list(result.raw["recipients"])
        return await self._published(publication, result, attempts=result.attempts, **found)

    async def _published(self, publication: Publication, result: PublishResult,
                         **audit: Any) -> PublicationOutcome:
        """Record ``result`` (the network's answer, or the post found by a lookup) as the
        publication's outcome: published, with its remote id and URL."""
        published, _ = await self._transition(
            publication,
            lambda s: store.mark_published(s, publication_id=stored_id(publication),
                                           remote_id=result.remote_id or None,
                                           remote_url=result.url, commit=False),
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
            publication, lambda s: store.mark_failed(s, publication_id=stored_id(publication),
                                                     error=str(exc), commit=False),
            "publication.failed", retryable=retryable, error=str(exc),
            status_code=exc.status_code, retry_after=exc.retry_after,
            **({"progress": exc.progress} if exc.progress else {}),
        )
        alerted = False
        if ours and not retryable:
            headline, what, todo = failed_alert_words(self.account, failed.id, exc)
            alerted = await self._alert(headline, what, str(exc), todo, failed)
        return self._outcome(failed, network_called=network_called, alerted=alerted,
                             retry_after=exc.retry_after)

    async def _unknown(self, publication: Publication, error: str, *, reason: str,
                       network_called: bool = False,
                       progress: Mapping[str, Any] | None = None) -> PublicationOutcome:
        unknown, ours = await self._transition(
            publication, lambda s: store.mark_unknown(s, publication_id=stored_id(publication),
                                                      error=error, commit=False),
            "publication.unknown", reason=reason, error=error, retryable=False,
            **({"progress": dict(progress)} if progress else {}),
        )
        alerted = False
        if ours:
            headline, what, todo = unknown_alert_words(self.account.display_name, unknown.id)
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
            publication, lambda s: store.mark_awaiting_manual(s,
                                                              publication_id=stored_id(publication),
                                                              note=note, commit=False),
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
            await run_in_session(self.engine, lambda s: self._audit(
                s, publication, ALERTED, headline=headline))
        return sent


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
    job = await make_job(
        engine=engine, post_id=post_id, account=account, client=client,
        credential=credential, notifier=notifier, confirm_url_for=confirm_url_for,
        sleep=sleep, signer=signer, media_root=media_root,
        publisher_options=publisher_options, retry_failed=retry_failed,
        max_attempts=max_attempts, confirm_ttl=confirm_ttl, armed=armed, preloaded=preloaded)
    job.failed_only = failed_only
    return await fly(job)


async def make_job(
    *, engine: Engine, post_id: int, account: ChannelAccount, client: httpx.AsyncClient,
    credential: SecretStr | None, notifier: Notifier | None,
    confirm_url_for: Callable[[str], str] | None, sleep: Callable[[float], Awaitable[Any]],
    signer: Signer | None, media_root: Path | None,
    publisher_options: Mapping[str, Any] | None, retry_failed: bool = False,
    max_attempts: int = 5, confirm_ttl: timedelta = DEFAULT_CONFIRM_TTL,
    armed: Publication | None = None, preloaded: PostRecord | None = None,
) -> PublishJob:
    def load(session: Session) -> PostRecord:
        post = session.get(PostRecord, post_id)
        if post is None:
            raise StoreError(f"no post with id {post_id}; render and store the occurrence first")
        return post

    post = preloaded if preloaded is not None and preloaded.id == post_id else (
        await run_in_session(engine, load))
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
    return PublishJob(
        engine=engine, account=account, client=client, credential=credential,
        notifier=notifier, confirm_url_for=confirm_url_for, sleep=sleep, signer=signer,
        media_root=media_root, publisher_options=publisher_options or {},
        retry_failed=retry_failed, max_attempts=max_attempts, confirm_ttl=confirm_ttl,
        armed=armed, post=post, rendered=rendered, key=idempotency_key_for(rendered.post_key,
                                                              post.content_hash),
    )


async def fly(job: PublishJob) -> PublicationOutcome:
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
