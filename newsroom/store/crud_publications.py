"""Publications: the reservation that guards each network call, and the state machine it
moves through (reserved → publishing → published | failed | unknown | awaiting_manual |
skipped)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Table, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsroom.errors import AlreadyReserved, StoreError
from newsroom.store.crud_common import get_row, require_aware
from newsroom.store.models import PostRecord, Publication, PublicationStatus, utcnow

# A publication in one of these states is settled: nothing may change it any more.
_FINAL_PUBLICATION = {PublicationStatus.PUBLISHED, PublicationStatus.SKIPPED}


def get_publication(session: Session, *, post_id: int, channel: str) -> Publication | None:
    query = select(Publication).where(
        Publication.post_id == post_id, Publication.channel == channel
    )
    return session.exec(query.execution_options(populate_existing=True)).first()


def get_publication_by_key(session: Session, *, idempotency_key: str) -> Publication | None:
    query = select(Publication).where(Publication.idempotency_key == idempotency_key)
    return session.exec(query.execution_options(populate_existing=True)).first()


def occurrence_publications(
    session: Session, *, occurrence_id: int
) -> list[tuple[Publication, PostRecord]]:
    """Every publication of the occurrence (of any rendering of its posts), with its post."""
    query = (
        select(Publication, PostRecord)
        .join(PostRecord, col(PostRecord.id) == col(Publication.post_id))
        .where(PostRecord.occurrence_id == occurrence_id)
        .order_by(col(Publication.id))
    )
    return [(publication, post) for publication, post in
            session.exec(query.execution_options(populate_existing=True))]


def reserve_publication(
    session: Session, *, post_id: int, channel: str, idempotency_key: str
) -> Publication:
    """Claim the right to publish ``post_id`` on ``channel``; committed before returning.

    Raises :class:`AlreadyReserved` when a publication for this post and channel, or with
    this idempotency key, exists already -- also when another process inserts it at the
    same moment (the UNIQUE constraints decide, not a prior SELECT). Derive the key from
    ``RenderedPost.post_key`` to allow one publication per occurrence and channel even
    across re-renders.
    """
    publication = Publication(post_id=post_id, channel=channel, idempotency_key=idempotency_key)
    try:
        with session.begin_nested():
            session.add(publication)
    except IntegrityError as exc:
        refusal = _refusal(session, exc, post_id=post_id, channel=channel,
                           idempotency_key=idempotency_key)
        session.rollback()
        raise refusal from (exc if not isinstance(refusal, AlreadyReserved) else None)
    session.commit()
    return publication


def _refusal(session: Session, exc: IntegrityError, *, post_id: int, channel: str,
             idempotency_key: str) -> StoreError:
    """Why an insert of a publication was refused: :class:`AlreadyReserved` when one for
    this post and channel, or with this key, exists (the UNIQUE constraints decided), else
    a StoreError (not a duplicate: e.g. the post does not exist). Looks with ``session``,
    which must be usable: the insert's savepoint rolled back, or the whole transaction."""
    existing = get_publication(
        session, post_id=post_id, channel=channel
    ) or get_publication_by_key(session, idempotency_key=idempotency_key)
    if existing is None:
        return StoreError(f"cannot reserve post {post_id} on {channel!r}: {exc.orig}")
    return AlreadyReserved(
        f"post {post_id} on channel {channel!r} is reserved already "
        f"(publication {existing.id}, key {existing.idempotency_key!r}, "
        f"status {existing.status})")


# The table itself, for the statements of the hot path (Core: no unit of work to flush).
_TABLE: Table = Publication.__table__  # type: ignore[attr-defined]
_COLUMNS = tuple(c.name for c in _TABLE.c if c.name != "id")


def publication_exists(session: Session, *, post_id: int, channel: str) -> bool:
    """Whether the post has a publication on ``channel`` (one cheap statement)."""
    query = select(_TABLE.c.id).where(_TABLE.c.post_id == post_id, _TABLE.c.channel == channel)
    return session.execute(query).first() is not None


def reserve_for_sending(
    session: Session, *, post_id: int, channel: str, idempotency_key: str, commit: bool = True,
    sent_by: str | None = None,
) -> Publication:
    """Reserve a new publication and claim it for sending at once: inserted "publishing"
    (attempt 1, a new claim token, a request may leave from now on) in one INSERT;
    committed before returning unless ``commit`` is False (then the caller adds its audit
    events and commits, before any request leaves).

    ``sent_by``: the caller's send journal (:func:`newsroom.send_journal.sender`), which
    tells a later run whether a request ever left; the same in :func:`mark_publishing`,
    :func:`mark_sending` and :func:`take_over_unsent`.

    Raises :class:`AlreadyReserved` like :func:`reserve_publication` (the UNIQUE
    constraints decide). The caller's transaction must not hold anything else: an
    insert refused rolls it back.
    """
    try:
        publication = _insert_claimed(session, post_id=post_id, channel=channel,
                                      idempotency_key=idempotency_key, sending=True,
                                      sent_by=sent_by)
    except IntegrityError as exc:
        session.rollback()  # PostgreSQL: the transaction is aborted; nothing else was in it
        refusal = _refusal(session, exc, post_id=post_id, channel=channel,
                           idempotency_key=idempotency_key)
        session.rollback()
        raise refusal from (exc if not isinstance(refusal, AlreadyReserved) else None)
    if commit:
        session.commit()
    return publication


def claim_new_armed(session: Session, *, post_id: int, channel: str, idempotency_key: str
                    ) -> Publication | None:
    """A new publication reserved and claimed in one INSERT, armed: "publishing" (attempt
    1, a new claim token) and provably unsent until :func:`mark_sending`. In the caller's
    transaction, inside a savepoint, so that an occurrence's channels are armed in one
    transaction; does not commit (the caller commits with the audit events).

    None, and nothing changed, when the post is reserved on ``channel`` already or the
    idempotency key is taken (the UNIQUE constraints decide: another worker got there);
    StoreError when the insert is refused otherwise (e.g. the post does not exist).
    """
    try:
        with session.begin_nested():
            return _insert_claimed(session, post_id=post_id, channel=channel,
                                   idempotency_key=idempotency_key, sending=False)
    except IntegrityError as exc:
        refusal = _refusal(session, exc, post_id=post_id, channel=channel,
                           idempotency_key=idempotency_key)
        if isinstance(refusal, AlreadyReserved):
            return None
        raise refusal from exc


def _insert_claimed(session: Session, *, post_id: int, channel: str, idempotency_key: str,
                    sending: bool, sent_by: str | None = None) -> Publication:
    """Insert a new publication reserved and claimed at once ("publishing", attempt 1, a
    new claim token), in one statement; ``sending``: a request may leave from now on (else
    armed: unsent until :func:`mark_sending`). Raises IntegrityError when refused."""
    now = utcnow()
    publication = Publication(
        post_id=post_id, channel=channel, idempotency_key=idempotency_key,
        status=PublicationStatus.PUBLISHING.value, attempts=1, claim_token=new_claim_token(),
        reserved_at=now, send_started_at=now if sending else None,
        sent_by=sent_by if sending else None)
    values = {name: getattr(publication, name) for name in _COLUMNS}
    publication.id = session.execute(
        insert(_TABLE).values(values).returning(_TABLE.c.id)).scalar_one()
    return publication


def _settle(session: Session, publication_id: int, status: PublicationStatus,
            values: Mapping[str, object], *, commit: bool) -> Publication:
    """Compare-and-set: the publication becomes ``status`` with ``values`` unless it is
    settled (published, skipped); one UPDATE. StoreError when it is."""
    final = [s.value for s in _FINAL_PUBLICATION]
    row = session.execute(
        update(_TABLE).where(_TABLE.c.id == publication_id, _TABLE.c.status.not_in(final))
        .values(status=status.value, **values).returning(*_TABLE.c)).first()
    if row is None:
        current = session.get(Publication, publication_id)
        if current is None:
            raise StoreError(f"no Publication with id {publication_id!r}")
        raise StoreError(
            f"publication {publication_id} is {current.status}; it cannot become {status.value}")
    if commit:
        session.commit()
    return Publication(**row._mapping)


def _transition(
    session: Session, publication_id: int, status: PublicationStatus, allowed: set | None = None
) -> Publication:
    publication = get_row(session, Publication, publication_id, lock=True)
    if publication.status in _FINAL_PUBLICATION or (
        allowed is not None and publication.status not in allowed
    ):
        raise StoreError(
            f"publication {publication_id} is {publication.status}; it cannot become {status.value}"
        )
    publication.status = status.value
    return publication


def new_claim_token() -> str:
    return secrets.token_hex(16)


def mark_publishing(session: Session, *, publication_id: int, armed: bool = False,
                    sent_by: str | None = None) -> Publication:
    """About to call the network: allowed from reserved or failed; counts an attempt and
    takes a new claim token.

    A request may leave from now on (``send_started_at``), unless ``armed``: claimed
    ahead of its second, it stays provably unsent until :func:`mark_sending`. Never from
    ``unknown``: the earlier attempt may have gone out, a human must check.
    """
    publication = _transition(
        session,
        publication_id,
        PublicationStatus.PUBLISHING,
        {PublicationStatus.RESERVED, PublicationStatus.FAILED},
    )
    publication.attempts += 1
    publication.claim_token = new_claim_token()
    publication.send_started_at = None if armed else utcnow()
    publication.sent_by = None if armed else sent_by
    session.add(publication)
    session.commit()
    return publication


def mark_sending(session: Session, *, claims: Mapping[int, str], sent_by: str | None = None
                 ) -> set[int]:
    """The armed publications of ``claims`` (publication id -> the claim token it was
    armed with) are about to be sent: from now on a request may leave. One transaction
    for a whole burst; committed before returning.

    Returns the ids that are the caller's to send: still "publishing" under that claim.
    One taken over meanwhile (:func:`take_over_unsent`) or settled is left out.
    """
    if not claims:
        return set()
    query = (select(Publication).where(col(Publication.id).in_(list(claims)))
             .with_for_update().execution_options(populate_existing=True))
    now = utcnow()
    ours: set[int] = set()
    for publication in session.exec(query):
        assert publication.id is not None  # a stored row
        if (publication.status != PublicationStatus.PUBLISHING
                or publication.claim_token != claims[publication.id]):
            continue
        if publication.send_started_at is None:
            publication.send_started_at = now
            publication.sent_by = sent_by
            session.add(publication)
        ours.add(publication.id)
    session.commit()
    return ours


def take_over_unsent(session: Session, *, publication_id: int, claim_token: str | None,
                     marked: bool = False, sent_by: str | None = None) -> Publication | None:
    """Take the claim of a publication another run armed and never sent (it died before
    its second, or is slower than this one), to send it now; counts an attempt.

    ``marked``: the claim was marked for sending, and its process's send journal shows
    that the process is gone and never began the request
    (:func:`newsroom.send_journal.never_sent`).

    Compare-and-set on the claim seen (``claim_token``): None, and nothing changed, when
    the publication is no longer "publishing" under that claim, unsent (or, ``marked``,
    marked) — its claimant marked it for sending (:func:`mark_sending`) or another run
    took it over first.
    """
    publication = get_row(session, Publication, publication_id, lock=True)
    if (publication.status != PublicationStatus.PUBLISHING
            or (publication.send_started_at is not None) != marked
            or publication.claim_token != claim_token):
        session.rollback()
        return None
    publication.attempts += 1
    publication.claim_token = new_claim_token()
    publication.send_started_at = utcnow()
    publication.sent_by = sent_by
    session.add(publication)
    session.commit()
    return publication


def unmark_publishing(session: Session, *, publication_id: int, claim_token: str | None
                      ) -> Publication:
    """Back from publishing to reserved, for an attempt that was armed ahead of its time
    and that its claimant did not send (held by a crisis freeze, or too late). Uncounts
    the attempt.

    Raises StoreError when the claim is not ``claim_token`` any more (taken over by
    another run, which may be sending it)."""
    publication = get_row(session, Publication, publication_id, lock=True)
    if (publication.status != PublicationStatus.PUBLISHING
            or publication.claim_token != claim_token):
        raise StoreError(f"publication {publication_id} is no longer this run's unsent claim "
                         f"({publication.status}); it cannot become reserved")
    publication.status = PublicationStatus.RESERVED.value
    publication.attempts = max(0, publication.attempts - 1)
    publication.claim_token = None
    publication.send_started_at = None
    publication.sent_by = None
    session.add(publication)
    session.commit()
    return publication


def skip_unsent(session: Session, *, publication_id: int, reason: str) -> Publication | None:
    """Skip a publication left "publishing" that provably never went out (armed by a run
    that died before its second), now too late; None (nothing changed) when a request may
    have left meanwhile."""
    publication = get_row(session, Publication, publication_id, lock=True)
    if (publication.status != PublicationStatus.PUBLISHING
            or publication.send_started_at is not None):
        session.rollback()
        return None
    publication.status = PublicationStatus.SKIPPED.value
    publication.last_error = reason
    publication.claim_token = None
    session.add(publication)
    session.commit()
    return publication


def mark_published(
    session: Session,
    *,
    publication_id: int,
    remote_id: str | None,
    remote_url: str | None,
    published_at: datetime | None = None,
    commit: bool = True,
) -> Publication:
    published_at = published_at or utcnow()
    require_aware(published_at, "published_at")
    return _settle(session, publication_id, PublicationStatus.PUBLISHED,
                   {"remote_id": remote_id, "remote_url": remote_url,
                    "published_at": published_at, "last_error": None}, commit=commit)


def _mark_with_error(
    session: Session, publication_id: int, status: PublicationStatus, error: str | None,
    *, commit: bool = True,
) -> Publication:
    return _settle(session, publication_id, status, {"last_error": error}, commit=commit)


def mark_failed(session: Session, *, publication_id: int, error: str,
                commit: bool = True) -> Publication:
    """The network refused; nothing went out. May be retried via :func:`mark_publishing`."""
    return _mark_with_error(session, publication_id, PublicationStatus.FAILED, error,
                            commit=commit)


def mark_unknown(session: Session, *, publication_id: int, error: str,
                 commit: bool = True) -> Publication:
    """The request may have reached the network: a human must check before any retry."""
    return _mark_with_error(session, publication_id, PublicationStatus.UNKNOWN, error,
                            commit=commit)


def mark_awaiting_manual(session: Session, *, publication_id: int, note: str = "",
                         commit: bool = True) -> Publication:
    """A person has to post this one by hand (manual channel, or after ``unknown``)."""
    return _mark_with_error(
        session, publication_id, PublicationStatus.AWAITING_MANUAL, note or None, commit=commit
    )


def mark_skipped(session: Session, *, publication_id: int, reason: str) -> Publication:
    return _mark_with_error(session, publication_id, PublicationStatus.SKIPPED, reason)
