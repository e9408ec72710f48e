"""Resolving: the publications a person has to look at, and what they found.

:func:`open_publications` lists the "unknown" (may be online) and "failed" (not online)
ones; :func:`resolve_unknown` records what a person found for an "unknown" one
(``newsroom channels resolve``). A failed one is published again by
:func:`newsroom.retries.retry_publication`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsroom import store
from newsroom.errors import StoreError
from newsroom.store import PostRecord, Publication, PublicationStatus

__all__ = ["OpenPublication", "open_publications", "resolve_unknown", "unknown_publications"]

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
