"""Sweeps: the alerts owed for "unknown" publications nobody was alerted about.

A worker killed between recording "unknown" and sending its alert leaves a publication the
office does not know of; :func:`send_owed_alerts`, run by the housekeeping flow every
minute, sends each such alert once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.notify import ALERT_TAG, Notifier
from newsroom.store import PostRecord, Publication, PublicationStatus, stored_id

from .alerts import ALERTED, alert_message, unknown_alert_words
from .outcomes import ACTOR

__all__ = ["OWED_ALERT_SETTLE", "send_owed_alerts"]

logger = logging.getLogger("newsroom.publishing")

# An "unknown" publication without an alert for this long is alerted by the sweep.
OWED_ALERT_SETTLE = timedelta(minutes=2)


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
        headline, what, todo = unknown_alert_words(name, publication.id)
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
        alerted.append(stored_id(publication))
    return alerted
