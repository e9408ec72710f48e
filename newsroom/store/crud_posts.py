"""Rendered posts of an occurrence: the current ones, their history, and storing a new
rendering (which moves the occurrence's bundle hash)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsroom.errors import StoreError
from newsroom.posts import RenderedPost, bundle_hash
from newsroom.store.crud_common import get_row, require_aware
from newsroom.store.models import Occurrence, PostRecord, utcnow


def current_posts(session: Session, *, occurrence_id: int) -> list[PostRecord]:
    """The posts of the occurrence that are not superseded, ordered by channel."""
    query = (
        select(PostRecord)
        .where(PostRecord.occurrence_id == occurrence_id, col(PostRecord.superseded_at).is_(None))
        .order_by(col(PostRecord.channel))
    )
    return list(session.exec(query))


def post_history(session: Session, *, occurrence_id: int) -> list[PostRecord]:
    """All posts ever rendered for the occurrence, oldest first."""
    query = (
        select(PostRecord)
        .where(PostRecord.occurrence_id == occurrence_id)
        .order_by(col(PostRecord.created_at), col(PostRecord.id))
    )
    return list(session.exec(query))


def store_rendered_posts(
    session: Session, *, occurrence_id: int, posts: list[RenderedPost]
) -> list[PostRecord]:
    """Make ``posts`` the current posts of the occurrence; returns the current rows.

    Idempotent: posts whose content hash is unchanged keep their row. Changed content
    gets a new row and the old one is marked superseded (content seen before is revived);
    channels missing from ``posts`` are superseded. ``occurrence.bundle_hash`` follows.
    """
    # The row lock serialises concurrent renders of one occurrence.
    occurrence = get_row(session, Occurrence, occurrence_id, lock=True)
    by_channel: dict[str, RenderedPost] = {}
    for post in posts:
        if post.campaign_id != occurrence.campaign_id or post.occurrence != (
            occurrence.occurrence_date
        ):
            raise StoreError(
                f"post {post.post_key} does not belong to occurrence "
                f"{occurrence.campaign_id}/{occurrence.occurrence_date.isoformat()}"
            )
        if post.channel in by_channel:
            raise StoreError(f"two posts for channel {post.channel!r} in {post.post_key}")
        require_aware(post.publish_at, f"publish_at of {post.post_key}")
        by_channel[post.channel] = post

    history = list(
        session.exec(select(PostRecord).where(PostRecord.occurrence_id == occurrence_id))
    )
    current = {row.channel: row for row in history if row.superseded_at is None}
    known = {(row.channel, row.content_hash): row for row in history}
    now = utcnow()
    dirty = False

    for channel, live in current.items():
        wanted = by_channel.get(channel)
        if wanted is None or wanted.content_hash != live.content_hash:
            live.superseded_at = now
            session.add(live)
            dirty = True
    for channel, post in by_channel.items():
        digest = post.content_hash
        row = known.get((channel, digest))
        if row is None:
            session.add(
                PostRecord(
                    occurrence_id=occurrence_id,
                    channel=channel,
                    channel_type=post.channel_type,
                    publish_at=post.publish_at,
                    text=post.text,
                    payload=post.canonical(),
                    content_hash=digest,
                    created_at=now,
                )
            )
            dirty = True
        elif row.superseded_at is not None:  # back to content rendered before
            row.superseded_at = None
            session.add(row)
            dirty = True

    new_bundle = bundle_hash(list(by_channel.values()))
    if occurrence.bundle_hash != new_bundle:
        occurrence.bundle_hash = new_bundle
        session.add(occurrence)
        dirty = True
    if dirty:
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise StoreError(
                f"posts of occurrence {occurrence_id} were changed concurrently; render again"
            ) from exc
    return current_posts(session, occurrence_id=occurrence_id)
