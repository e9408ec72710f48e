"""Recall: take an occurrence's posts down on every channel they reached, and make sure
nothing more of it goes out.

    report = await recall_occurrence(runtime, occurrence_id=…, reason="…", by="wolf")

Per channel of the occurrence (or the ones named), recorded in the store first
(:class:`~newsroom.store.Recall`, one row per occurrence and channel):

    never published           its publication is reserved "skipped": no run will send it
    reserved, armed, failed   skipped by compare-and-set before any claim sends it
    being published           its outcome is awaited, then it is taken down
    published                 the network's delete (Publisher.withdraw), claimed once
    cannot be taken back      a press e-mail: a correction to exactly its recipients;
                              a manual channel: its owner is told what to delete
    unknown                   a person must look (it may be up), and is told

A 404 or "already deleted" counts as done. A withdrawal is claimed (compare-and-set)
before a network is called; a claim whose process died is taken over where a repeat is
harmless (a delete), and reported "unknown" where it is not (a correction e-mail). A
recall of an occurrence still waiting for approval closes its gate and voids its links.
The office and the campaign's approvers are told at once (apprise). Every step is in
the audit trail (``recall.*``). Nothing here imports Prefect: ``flows/recall.py``, the
CLI and the housekeeping sweep call it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlmodel import Session

from newsroom import store
from newsroom.catalog.roles import NotPermitted, Permission, authorize
from newsroom.errors import AmbiguousPublishError, NewsroomError, PublishError
from newsroom.markdown import md_text
from newsroom.store import Publication, PublicationStatus, Recall, RecallStatus, stored_id
from newsroom.timeutil import format_local_german

if TYPE_CHECKING:
    from newsroom.runtime import Runtime

logger = logging.getLogger("newsroom.recall")

ACTOR = "newsroom:recall"
# A withdrawal claimed this long ago by a process that has not settled it: taken over.
STALE_CLAIM = timedelta(minutes=2)
# How long a recall waits for a post that is being published right now.
WAIT_FOR_PUBLISHING_S = 30.0
MAX_REASON = 500

__all__ = [
    "ChannelRecall",
    "RecallError",
    "RecallReport",
    "finish_recalls",
    "occurrence_to_recall",
    "recall_occurrence",
]


class RecallError(NewsroomError):
    """A recall that cannot be started as asked (no such occurrence, channel, reason)."""


@dataclass(frozen=True)
class ChannelRecall:
    """Where the recall of one channel stands."""

    channel: str
    status: str  # a RecallStatus value
    detail: str = ""
    url: str | None = None  # where the post was
    attempts: int = 0

    @property
    def done(self) -> bool:
        return RecallStatus(self.status) in store.DONE_RECALL


_GERMAN = {
    RecallStatus.REQUESTED: "wartet (Veröffentlichung läuft noch)",
    RecallStatus.CANCELLED: "nicht veröffentlicht, abgesagt",
    RecallStatus.WITHDRAWING: "wird gelöscht",
    RecallStatus.GONE: "gelöscht",
    RecallStatus.MANUAL: "von Hand zu löschen",
    RecallStatus.CORRECTED: "Korrektur verschickt",
    RecallStatus.FAILED: "Löschen fehlgeschlagen",
    RecallStatus.UNKNOWN: "unklar, bitte prüfen",
}


@dataclass(frozen=True)
class RecallReport:
    campaign_id: str
    occurrence_date: date
    occurrence_id: int
    requested_by: str
    reason: str
    at: datetime
    channels: tuple[ChannelRecall, ...]
    gate_closed: bool = False
    voided_links: int = 0
    told: tuple[str, ...] = field(default=())

    @property
    def left(self) -> tuple[ChannelRecall, ...]:
        """Channels not done: waiting for a publication, failed, claimed elsewhere."""
        return tuple(c for c in self.channels if not c.done)

    @property
    def ok(self) -> bool:
        return not self.left and not any(
            c.status in (RecallStatus.UNKNOWN, RecallStatus.FAILED) for c in self.channels)

    def summary(self) -> str:
        parts = [f"{c.channel} {c.status}" for c in self.channels]
        return (f"recall of {self.campaign_id} {self.occurrence_date}: " + ", ".join(parts)
                + (" (gate closed)" if self.gate_closed else ""))

    def markdown(self) -> str:
        """The Prefect artifact: who, when, why, per channel the result (escaped)."""
        lines = [f"# Zurückgezogen / recall: {md_text(self.campaign_id)} "
                 f"({self.occurrence_date.isoformat()})", "",
                 f"- **Von / by:** {md_text(self.requested_by)}",
                 f"- **Wann / at:** {md_text(format_local_german(self.at))}",
                 f"- **Grund / reason:** {md_text(self.reason, limit=MAX_REASON)}"]
        if self.gate_closed:
            lines.append(f"- **Freigabe geschlossen / gate closed**, {self.voided_links} "
                         "Link(s) ungültig")
        lines += ["", "| Kanal / channel | Stand / state | Details | Versuche / attempts |",
                  "|---|---|---|---|"]
        for c in self.channels:
            lines.append(f"| {md_text(c.channel)} | {md_text(_GERMAN[RecallStatus(c.status)])} "
                         f"({md_text(c.status)}) | {md_text(c.detail, limit=300) or '–'} | "
                         f"{c.attempts} |")
        return "\n".join(lines) + "\n"


# --- the store ---------------------------------------------------------------------------

# SQLite has one writer, and every transaction of Newsroom's engine takes the write lock
# (BEGIN IMMEDIATE): the recall's own transactions, in the threads of a burst of recalls,
# queue on a lock of this process instead of in SQLite's busy handler, whose backoff
# sleeps (up to 100 ms each) made a burst of 20 recalls wait seconds for a free lock.
_SQLITE_WRITERS: dict[int, threading.Lock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


@contextmanager
def _session(runtime: Runtime) -> Iterator[Session]:
    engine = runtime.engine
    if engine.dialect.name != "sqlite":
        with store.session_scope(engine) as session:
            yield session
        return
    with _SQLITE_WRITERS_LOCK:
        lock = _SQLITE_WRITERS.setdefault(id(engine), threading.Lock())
    with lock, store.session_scope(engine) as session:
        yield session


# --- finding what to recall ------------------------------------------------------------


def occurrence_to_recall(engine: Any, *, campaign_id: str, occurrence_date: date) -> int:
    """The dated occurrence's id, or a :class:`RecallError` saying what to do (a crisis
    message is recalled by its crisis id: ``newsroom crisis recall ID``)."""
    with store.session_scope(engine) as session:
        occurrence = store.get_occurrence(session, campaign_id=campaign_id,
                                          occurrence_date=occurrence_date)
        if occurrence is None:
            raise RecallError(f"{campaign_id} has no occurrence on {occurrence_date} (a "
                              "crisis message: `newsroom crisis recall ID`); `newsroom "
                              "audit CAMPAIGN` lists what was published")
        return stored_id(occurrence)


def _clean_reason(reason: str) -> str:
    reason = " ".join((reason or "").replace("\x00", "").split())
    if not reason:
        raise RecallError("give the reason (--reason): it goes to the audit trail and to "
                          "everyone told of the recall")
    if len(reason) > MAX_REASON:
        raise RecallError(f"the reason is longer than {MAX_REASON} characters; shorten it")
    return reason


def _authorize(runtime: Runtime, occurrence: Any, by: str, via: str) -> Any:
    try:
        return authorize(runtime.catalog.index, by, Permission.RECALL)
    except NotPermitted as exc:
        with _session(runtime) as session:
            store.record_audit(session, campaign_id=occurrence.campaign_id,
                               occurrence_date=occurrence.occurrence_date,
                               actor=f"refused:{via}", action="recall.refused",
                               detail={"named": " ".join(by.split())[:100], "via": via,
                                       "reason": str(exc)})
        raise


# --- the recall ------------------------------------------------------------------------


async def recall_occurrence(runtime: Runtime, *, occurrence_id: int, reason: str, by: str,
                            channels: Sequence[str] | None = None, via: str = "cli",
                            wait_s: float = WAIT_FOR_PUBLISHING_S,
                            client: httpx.AsyncClient | None = None) -> RecallReport:
    """Recall the occurrence on ``channels`` (default: every channel it has); see the
    module. ``by`` must be a registry person whose role allows recalls; else
    :class:`~newsroom.catalog.roles.NotPermitted` (audited ``recall.refused``)."""
    reason = _clean_reason(reason)
    now = datetime.now(UTC)
    occurrence, posts = await asyncio.to_thread(_read, runtime, occurrence_id)
    person = _authorize(runtime, occurrence, by, via)
    known = {p.channel for p in posts}
    wanted = list(dict.fromkeys(channels or sorted(known)))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise RecallError(f"{occurrence.campaign_id} {occurrence.occurrence_date} has no post "
                          f"on {', '.join(unknown)}; its channels: {', '.join(sorted(known))}")
    gate_closed, voided = await asyncio.to_thread(_close_gate, runtime, occurrence, person.id,
                                                  reason, via, now)
    recalls = await asyncio.to_thread(_record, runtime, occurrence, wanted, person.id, reason,
                                      via, now)
    results = await _recall_channels(runtime, occurrence, {p.channel: p for p in posts},
                                     recalls, client, wait_s)
    report = RecallReport(
        campaign_id=occurrence.campaign_id, occurrence_date=occurrence.occurrence_date,
        occurrence_id=occurrence_id, requested_by=person.id, reason=reason, at=now,
        channels=tuple(results), gate_closed=gate_closed, voided_links=voided)
    told = await asyncio.to_thread(_tell, runtime, occurrence, report)
    logger.info("%s", report.summary())
    return replace(report, told=tuple(told))


def _read(runtime: Runtime, occurrence_id: int) -> tuple[Any, list[Any]]:
    with _session(runtime) as session:
        occurrence = session.get(store.Occurrence, occurrence_id, populate_existing=True)
        if occurrence is None:
            raise RecallError(f"no occurrence with id {occurrence_id}")
        posts = store.current_posts(session, occurrence_id=occurrence_id)
        session.expunge_all()
        return occurrence, posts


def _close_gate(runtime: Runtime, occurrence: Any, person_id: str, reason: str, via: str,
                now: datetime) -> tuple[bool, int]:
    """An occurrence still waiting for approval: its gate settled "cancelled", its open
    links void (they answer that the posts changed)."""
    with _session(runtime) as session:
        current = session.get(store.Occurrence, occurrence.id, populate_existing=True)
        closed = False
        if current is not None and current.gate_bundle_hash and current.gate_outcome in (
                None, "escalated"):
            _, closed = store.settle_gate(session, occurrence_id=stored_id(current),
                                          bundle_hash=current.gate_bundle_hash,
                                          outcome="cancelled", at=now)
        voided = store.void_pending_requests(session, occurrence_id=occurrence.id)
        if closed or voided:
            store.record_audit(session, campaign_id=occurrence.campaign_id,
                               occurrence_date=occurrence.occurrence_date,
                               actor=person_id, action="approval.recalled",
                               content_hash=occurrence.gate_bundle_hash, at=now,
                               detail={"reason": reason, "via": via, "gate_closed": closed,
                                       "voided": [r.id for r in voided]})
        return closed, len(voided)


def _record(runtime: Runtime, occurrence: Any, channels: Iterable[str], person_id: str,
            reason: str, via: str, now: datetime) -> list[Recall]:
    recalls = []
    with _session(runtime) as session:
        for channel in channels:
            recall, created = store.ensure_recall(
                session, occurrence_id=occurrence.id, channel=channel,
                requested_by=person_id, reason=reason, at=now, commit=False)
            if created:
                store.record_audit(session, campaign_id=occurrence.campaign_id,
                                   occurrence_date=occurrence.occurrence_date,
                                   actor=person_id, action="recall.requested",
                                   channel=channel, at=now, commit=False,
                                   detail={"reason": reason, "via": via,
                                           "recall_id": recall.id})
            recalls.append(recall)
        session.commit()  # one transaction for all channels
        session.expunge_all()
    return recalls


@dataclass
class _Batch:
    """One look at the channels of a recall, in one transaction's session: what is done,
    what is claimed for withdrawal (with its publication), what waits for a post being
    published."""

    done: dict[str, ChannelRecall] = field(default_factory=dict)
    # (the claimed recall, its publication, taken over from a dead claim, what was
    # published: Publisher.withdraw's ``original``, what an earlier failed try achieved)
    claimed: list[tuple[Recall, Publication, bool, dict[str, Any], dict[str, Any]]] = field(
        default_factory=list)
    waiting: list[Recall] = field(default_factory=list)


@dataclass(frozen=True)
class _Outcome:
    recall: Recall
    publication: Publication | None
    status: RecallStatus
    detail: str
    claim_token: str | None
    # What a failed withdrawal achieved (PublishError.progress: who got the correction),
    # recorded with its audit event and handed back to the publisher before the next try.
    progress: dict[str, Any] | None = None


async def _recall_channels(runtime: Runtime, occurrence: Any, posts: dict[str, Any],
                           recalls: list[Recall], client: httpx.AsyncClient | None,
                           wait_s: float) -> list[ChannelRecall]:
    """Every channel of one recall: closed where unpublished, awaited where being
    published, withdrawn where published. The store is read and claimed for all of them
    in one session, the networks are called together, the outcomes stored in one more."""
    deadline = time.monotonic() + wait_s
    results: dict[str, ChannelRecall] = {}
    pending = list(recalls)
    while pending:
        batch = await asyncio.to_thread(_prepare, runtime, occurrence, posts, pending)
        results.update(batch.done)
        outcomes = await asyncio.gather(*(
            _withdraw(runtime, recall, publication, taken_over, original, progress, client)
            for recall, publication, taken_over, original, progress in batch.claimed))
        results.update(await asyncio.to_thread(_store_outcomes, runtime, occurrence,
                                               list(outcomes)))
        pending = batch.waiting
        if pending and time.monotonic() >= deadline:
            results.update(await asyncio.to_thread(_store_outcomes, runtime, occurrence, [
                _Outcome(r, None, RecallStatus.REQUESTED,
                         "waiting for the post being published; housekeeping takes it down "
                         "once its outcome is known", None) for r in pending]))
            break
        if pending:
            await asyncio.sleep(0.2)
    return [results[r.channel] for r in recalls]


def _prepare(runtime: Runtime, occurrence: Any, posts: dict[str, Any],
             recalls: list[Recall]) -> _Batch:
    batch = _Batch()
    with _session(runtime) as session:
        # The occurrence's recalls and publications read once for all its channels.
        rows = {r.id: r for r in store.recalls_of(session, occurrence_id=occurrence.id)}
        publications = _publications(session, occurrence.id)
        for recall in recalls:
            state = _classify(session, occurrence, posts[recall.channel],
                              rows.get(recall.id, recall), publications.get(recall.channel))
            if isinstance(state, ChannelRecall):
                batch.done[recall.channel] = state
            elif state.status == PublicationStatus.PUBLISHING.value:
                batch.waiting.append(recall)
            else:
                claimed, taken_over = store.claim_withdrawal(
                    session, recall_id=stored_id(recall), stale_after=STALE_CLAIM,
                    commit=False)
                if claimed is None:  # another process withdraws it: what it has stored
                    batch.done[recall.channel] = _channel(
                        store.recall_row(session, stored_id(recall)), state.remote_url)
                else:
                    batch.claimed.append((claimed, state, taken_over, _original(
                        session, runtime, occurrence, state, recall.reason),
                        _progress(session, occurrence, claimed)))
        session.commit()  # every claim stored before any network is called
        session.expunge_all()
    return batch


def _progress(session: Session, occurrence: Any, recall: Recall) -> dict[str, Any]:
    """What the recall's last failed try achieved (its ``recall.failed`` event), for the
    publisher to take back before this one (a correction not mailed again to whoever
    got it); empty on a first try."""
    if recall.attempts <= 1:
        return {}
    progress: dict[str, Any] = {}
    for event in store.audit_trail(session, campaign_id=occurrence.campaign_id):
        if (event.action == "recall.failed" and event.channel == recall.channel
                and event.detail.get("recall_id") == recall.id):
            progress = dict(event.detail.get("progress") or {})
    return progress


def _publications(session: Session, occurrence_id: int) -> dict[str, Publication]:
    """Per channel, the publication that matters most: a published one, else the latest."""
    chosen: dict[str, Publication] = {}
    for publication, _ in store.occurrence_publications(session, occurrence_id=occurrence_id):
        current = chosen.get(publication.channel)
        if current is None or current.status != PublicationStatus.PUBLISHED.value:
            chosen[publication.channel] = publication
    return chosen


def _classify(session: Session, occurrence: Any, post: Any, recall: Recall,
              publication: Publication | None) -> ChannelRecall | Publication:
    """Close the channel where nothing went out (its outcome), or the publication that
    did (or is going out now) for the caller to deal with. ``recall`` and
    ``publication`` as just read; a compare-and-set that loses to a claim (the post
    started going out) reads them again."""
    reason = f"recalled: {recall.reason}"
    current = recall
    for attempt in range(5):
        if attempt:
            current = store.recall_row(session, stored_id(recall))
            publication = _publications(session, occurrence.id).get(recall.channel)
        if RecallStatus(current.status) in store.DONE_RECALL:
            return _channel(current)
        if publication is None:
            made = store.reserve_skipped_publication(
                session, post_id=stored_id(post), channel=recall.channel,
                idempotency_key=f"recall-{recall.id}-{post.id}", reason=reason)
            if made is not None:
                return _done(session, occurrence, current, RecallStatus.CANCELLED,
                             "never published; it will not be", made, commit=False)
            continue
        status = PublicationStatus(publication.status)
        if status == PublicationStatus.SKIPPED:
            return _done(session, occurrence, current, RecallStatus.CANCELLED,
                         f"not published ({publication.last_error or 'skipped'})", publication,
                         commit=False)
        if status in (PublicationStatus.RESERVED, PublicationStatus.FAILED):
            if store.skip_reserved(session, publication_id=stored_id(publication),
                                   reason=reason):
                return _done(session, occurrence, current, RecallStatus.CANCELLED,
                             "not published yet; it will not be", publication)
            continue
        if status == PublicationStatus.PUBLISHING and publication.send_started_at is None:
            if store.skip_unsent(session, publication_id=stored_id(publication),
                                 reason=reason) is not None:
                return _done(session, occurrence, current, RecallStatus.CANCELLED,
                             "armed for its second, never sent; it will not be", publication)
            continue
        if status == PublicationStatus.UNKNOWN:
            return _done(session, occurrence, current, RecallStatus.MANUAL,
                         "its publication is unknown (it may be up): check the network by "
                         "hand and delete it there", publication, commit=False)
        return publication
    raise RecallError(f"the publication of {recall.channel} kept changing; recall again")


def _channel(recall: Recall, url: str | None = None) -> ChannelRecall:
    return ChannelRecall(channel=recall.channel, status=recall.status,
                         detail=recall.detail or "", url=url, attempts=recall.attempts)


def _done(session: Session, occurrence: Any, recall: Recall, status: RecallStatus,
          detail: str, publication: Publication | None = None,
          claim_token: str | None = None, commit: bool = True,
          progress: dict[str, Any] | None = None) -> ChannelRecall:
    """Store and audit the channel's outcome; what is stored (another process may have
    settled it first). ``commit`` False: the caller commits (one for a batch)."""
    settled = store.settle_recall(
        session, recall_id=stored_id(recall), status=status, detail=detail,
        claim_token=claim_token, commit=False,
        publication_id=publication.id if publication is not None else None)
    if settled is None:
        if commit:
            session.commit()
        return _channel(store.recall_row(session, stored_id(recall)))
    if status != RecallStatus.REQUESTED:
        store.record_audit(
            session, campaign_id=occurrence.campaign_id,
            occurrence_date=occurrence.occurrence_date, actor=ACTOR, commit=False,
            action=f"recall.{status.value}", channel=recall.channel,
            detail={"recall_id": recall.id, "detail": detail, "by": recall.requested_by,
                    "publication_id": publication.id if publication else None,
                    "remote_id": publication.remote_id if publication else None,
                    "remote_url": publication.remote_url if publication else None,
                    **({"progress": progress} if progress else {})})
    if commit:
        session.commit()
    return _channel(settled, publication.remote_url if publication else None)


def _store_outcomes(runtime: Runtime, occurrence: Any, outcomes: list[_Outcome]
                    ) -> dict[str, ChannelRecall]:
    if not outcomes:
        return {}
    with _session(runtime) as session:
        done = {o.recall.channel: _done(session, occurrence, o.recall, o.status, o.detail,
                                        o.publication, o.claim_token, commit=False,
                                        progress=o.progress)
                for o in outcomes}
        session.commit()  # one transaction for the batch
        return done


def _original(session: Session, runtime: Runtime, occurrence: Any, publication: Publication,
              reason: str) -> dict[str, Any]:
    """What was published, for a withdrawal that must say what it withdraws: its text
    and title, and a press e-mail's recipients as recorded when it was sent."""
    from newsroom.catalog.models import ChannelType

    post = session.get(store.PostRecord, publication.post_id)
    rendered = post.to_rendered() if post is not None else None
    account = runtime.catalog.accounts.get(publication.channel)
    sent_to: list[str] = []
    if account is not None and account.type == ChannelType.EMAIL:
        for event in store.audit_trail(session, campaign_id=occurrence.campaign_id):
            if (event.action == "publication.published"
                    and event.detail.get("publication_id") == publication.id):
                sent_to = list(event.detail.get("recipients") or [])
    return {"text": rendered.text if rendered else "",
            "title": (rendered.title if rendered else None) or occurrence.campaign_id,
            "recipients": sent_to, "reason": reason,
            "published_at": publication.published_at}


async def _withdraw(runtime: Runtime, recall: Recall, publication: Publication,
                    taken_over: bool, original: dict[str, Any], progress: dict[str, Any],
                    client: httpx.AsyncClient | None) -> _Outcome:
    """Call the network once for a claimed withdrawal (its retries included): what the
    recall comes to. Nothing is stored here."""
    from newsroom.channels import aresolve_credential, withdraw_with_retries
    from newsroom.delivery import account_client
    from newsroom.publishing.publishers import shared_publisher

    token = recall.claim_token

    def outcome(status: RecallStatus, detail: str,
                achieved: dict[str, Any] | None = None) -> _Outcome:
        return _Outcome(recall, publication, status, detail, token, achieved)

    account = runtime.catalog.accounts.get(recall.channel)
    if account is None:
        return outcome(RecallStatus.MANUAL,
                       f"the channel {recall.channel!r} left the registry: delete the post by "
                       f"hand ({publication.remote_url or publication.remote_id})")
    try:
        credential = await aresolve_credential(account) if account.credential else None
        publisher = shared_publisher(account, client=client or account_client(account),
                                     credential=credential, media_root=runtime.catalog.root)
    except NewsroomError as exc:
        return outcome(RecallStatus.FAILED, str(exc))
    if taken_over and not publisher.idempotent_withdrawals:
        return outcome(RecallStatus.UNKNOWN,
                       "an earlier attempt was cut off: its correction may or may not have "
                       "gone out; check with the recipients before sending one by hand")
    key = f"recall-{recall.id}"
    if progress:  # an earlier try's (in this process or another): not done again
        publisher.restore_progress(key, progress)
    try:
        result = await withdraw_with_retries(
            publisher, publication.remote_id or "", remote_url=publication.remote_url,
            idempotency_key=key, original=original)
    except AmbiguousPublishError as exc:
        return outcome(RecallStatus.FAILED if publisher.idempotent_withdrawals
                       else RecallStatus.UNKNOWN, str(exc))
    except PublishError as exc:
        return outcome(RecallStatus.FAILED, str(exc), exc.progress or None)
    if result.gone:
        return outcome(RecallStatus.GONE, result.detail or (
            "it was gone already" if result.already_gone else "deleted"))
    if result.manual:
        return outcome(RecallStatus.MANUAL, result.detail)
    return outcome(RecallStatus.CORRECTED, result.detail)


# --- telling people --------------------------------------------------------------------


def _tell(runtime: Runtime, occurrence: Any, report: RecallReport,
          followup: bool = False) -> list[str]:
    """The office and the campaign's approvers, at once, in German (apprise);
    ``followup``: what housekeeping finished of a recall since (only the office)."""
    from newsroom.catalog.approvers import resolve_chain

    catalog = runtime.catalog
    tags = [catalog.directory.communications_office]
    try:
        campaign = catalog.campaign(occurrence.campaign_id).campaign
        chain = resolve_chain(campaign.approval, catalog.index, occurrence.occurrence_date)
        if not followup:
            tags += [a.person.id for step in chain for a in step if a.person.id not in tags]
        title = campaign.title
    except LookupError:
        title = occurrence.campaign_id
    who = catalog.index.people.get(report.requested_by)
    lines = [f"{who.display if who else report.requested_by} hat die Beiträge „{title}“ "
             f"vom {occurrence.occurrence_date.strftime('%d.%m.%Y')} zurückgezogen.",
             f"Grund: {report.reason}", "", "Stand je Kanal:"]
    for channel in report.channels:
        label = catalog.accounts[channel.channel].label if channel.channel in (
            catalog.accounts) else channel.channel
        lines.append(f"- {label}: {_GERMAN[RecallStatus(channel.status)]}"
                     + (f" ({channel.detail})" if channel.detail and not channel.done
                        or channel.status in ("manual", "unknown") else ""))
    if report.gate_closed:
        lines += ["", "Die laufende Freigabe wurde geschlossen; offene Freigabe-Links gelten "
                      "nicht mehr."]
    lines += ["", "Newsroom – Amt für Kommunikation, Wissenschaftsstadt Darmstadt"]
    subject = (("Nachtrag – " if followup else "")
               + f"Zurückgezogen: {title} ({occurrence.occurrence_date.strftime('%d.%m.%Y')})")
    if followup:
        lines[0] = (f"Nachtrag zum Rückruf von „{title}“ vom "
                    f"{occurrence.occurrence_date.strftime('%d.%m.%Y')}: Newsroom hat "
                    "nachgeholt, was beim Rückruf noch offen war.")
    told = []
    notifier = runtime.notifier
    for tag in tags:
        try:
            ok = bool(notifier.notify(tag, subject, "\n".join(lines)))
        except Exception as exc:  # noqa: BLE001 - telling must not undo the recall
            logger.warning("telling %s of the recall failed: %s", tag, type(exc).__name__)
            ok = False
        if ok:
            told.append(tag)
    with _session(runtime) as session:
        store.record_audit(session, campaign_id=occurrence.campaign_id,
                           occurrence_date=occurrence.occurrence_date, actor=ACTOR,
                           action="recall.notified", channel="email",
                           detail={"tags": tags, "told": told, "subject": subject})
    return told


# --- carrying on -----------------------------------------------------------------------


async def finish_recalls(runtime: Runtime, *, client: httpx.AsyncClient | None = None
                         ) -> list[ChannelRecall]:
    """Carry on every recall not done (its post was being published, a delete failed or
    its process died): the housekeeping sweep's part. Failed ones are tried up to five
    times in all."""
    def unfinished() -> list[tuple[Any, dict[str, Any], list[Recall]]]:
        with _session(runtime) as session:
            by_occurrence: dict[int, list[Recall]] = {}
            for recall in store.unfinished_recalls(session):
                if recall.status == RecallStatus.FAILED.value and recall.attempts >= 5:
                    continue
                by_occurrence.setdefault(recall.occurrence_id, []).append(recall)
            work = []
            for occurrence_id, recalls in by_occurrence.items():
                occurrence = session.get(store.Occurrence, occurrence_id)
                posts = {p.channel: p for p in store.current_posts(
                    session, occurrence_id=occurrence_id)}
                recalls = [r for r in recalls if r.channel in posts]
                if occurrence is not None and recalls:
                    work.append((occurrence, posts, recalls))
            session.expunge_all()
            return work

    done: list[ChannelRecall] = []
    for occurrence, posts, recalls in await asyncio.to_thread(unfinished):
        try:
            results = await _recall_channels(runtime, occurrence, posts, recalls, client,
                                             wait_s=0)
        except NewsroomError as exc:
            logger.warning("recall of occurrence %s: %s", occurrence.id, exc)
            continue
        done += results
        finished = tuple(c for c in results if c.done)
        if finished:  # the office was told what was left; now what became of it
            first = recalls[0]
            report = RecallReport(
                campaign_id=occurrence.campaign_id, occurrence_date=occurrence.occurrence_date,
                occurrence_id=stored_id(occurrence), requested_by=first.requested_by,
                reason=first.reason, at=datetime.now(UTC), channels=finished)
            await asyncio.to_thread(_tell, runtime, occurrence, report, True)
    return done
