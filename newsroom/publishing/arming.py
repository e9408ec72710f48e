"""Arming: an occurrence's publications reserved and claimed ahead of their second.

For exact-time publishing (:mod:`newsroom.delivery` arms a few seconds ahead): at the due
second only the network calls remain. :func:`arm_occurrence` reserves and claims,
:func:`disarm` hands back what was armed and then not sent, and :func:`armed_for` picks a
post's armed publication for the send (:mod:`newsroom.publishing.occurrence`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import store
from newsroom.errors import StoreError
from newsroom.posts import RenderedPost
from newsroom.store import AuditEvent, PostRecord, Publication, PublicationStatus, stored_id
from newsroom.store.models import utcnow

from .outcomes import ACTOR, idempotency_key_for

__all__ = ["arm_occurrence", "armed_for", "disarm"]

def arm_occurrence(engine: Engine, *, occurrence_id: int, channels: Iterable[str] | None = None
                   ) -> tuple[dict[str, Publication], list[PostRecord]]:
    """Reserve and claim the occurrence's publications ahead of their second.

    For exact-time publishing: at the due second only the network calls remain. Each
    publication that is new or still "reserved" is reserved and marked "publishing" (an
    attempt, audited with ``armed``) now; pass the result to :func:`publish_occurrence`
    as ``armed`` (and the posts, second item, as ``posts``). Publications in any other
    state are not armed (publishing them takes the normal path).

    An armed publication is provably unsent until it is marked for sending
    (:func:`~newsroom.publishing.burst.mark_for_sending`, a moment before the second, one
    transaction per burst); what is armed and then not sent must be :func:`disarm`-ed. A
    crash before the mark leaves it "publishing" and unsent: the next run takes the claim
    over and sends it (:func:`newsroom.store.take_over_unsent`). A crash after the mark
    leaves it possibly sent: repeated where the network recognises a repeat (Mastodon,
    Bluesky), elsewhere a person decides.
    """
    wanted = set(channels) if channels is not None else None
    armed: dict[str, Publication] = {}
    posts: list[PostRecord] = []
    # One transaction for the occurrence's new publications and their audit events (at
    # 200 occurrences due at one second, four commits per channel were 4,000 transactions
    # in the seconds before it, queued on the store's write lock).
    with store.session_scope(engine) as session:
        for post in store.current_posts(session, occurrence_id=occurrence_id):
            if wanted is not None and post.channel not in wanted:
                continue
            posts.append(post)
            rendered = post.to_rendered()
            key = idempotency_key_for(rendered.post_key, post.content_hash)
            publication = store.get_publication(session, post_id=stored_id(post),
                                                channel=post.channel)
            if publication is None:
                claimed = store.claim_new_armed(session, post_id=stored_id(post),
                                                channel=post.channel, idempotency_key=key)
                if claimed is None:
                    continue  # another worker reserved it a moment ago
                store.add_audit_events(session, [
                    _armed_event(rendered, post, claimed, key, "publication.reserved"),
                    _armed_event(rendered, post, claimed, key, "publication.attempt",
                                 attempt=claimed.attempts)])
                armed[post.channel] = claimed
                continue
            if publication.status != PublicationStatus.RESERVED:
                continue
            # Reserved earlier (handed back after a hold, or an office retry): claimed in
            # a transaction of its own; what was armed before is committed first.
            session.commit()
            try:
                publication = store.mark_publishing(
                    session, publication_id=stored_id(publication), armed=True)
            except StoreError:
                session.rollback()
                continue
            _audit_armed(session, rendered, post, publication, key, "publication.attempt",
                         attempt=publication.attempts)
            armed[post.channel] = publication
    return armed, posts


def disarm(engine: Engine, armed: Mapping[str, Publication], reason: str) -> None:
    """Return armed publications this run did not send (held, too late) to "reserved";
    one another run took over meanwhile is that run's and stays as it is."""
    with store.session_scope(engine) as session:
        for publication in armed.values():
            try:
                store.unmark_publishing(session, publication_id=stored_id(publication),
                                        claim_token=publication.claim_token)
            except StoreError:
                session.rollback()
                continue
            post = session.get(PostRecord, publication.post_id)
            if post is not None:
                rendered = post.to_rendered()
                _audit_armed(session, rendered, post, publication, publication.idempotency_key,
                             "publication.disarmed", reason=reason)


def _armed_event(rendered: RenderedPost, post: PostRecord, publication: Publication, key: str,
                 action: str, **detail: Any) -> AuditEvent:
    return AuditEvent(
        at=utcnow(), campaign_id=rendered.campaign_id, occurrence_date=rendered.occurrence,
        actor=ACTOR, action=action, channel=post.channel, content_hash=post.content_hash,
        detail={"publication_id": publication.id, "post_id": post.id,
                "idempotency_key": key, "armed": True, **detail})


def _audit_armed(session: Session, rendered: RenderedPost, post: PostRecord,
                 publication: Publication, key: str, action: str, **detail: Any) -> None:
    store.add_audit_events(session, [_armed_event(rendered, post, publication, key, action,
                                                  **detail)])
    session.commit()


def armed_for(armed: Mapping[str, Publication] | None, post: PostRecord) -> Publication | None:
    if not armed:
        return None
    publication = armed.get(post.channel)
    return publication if publication is not None and publication.post_id == post.id else None
