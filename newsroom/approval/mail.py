"""Asking the approvers by e-mail: the data every approval mail is rendered from
(:mod:`newsroom.approval_messages` renders it), sending through a notifier, and the
first mail to every asked person, once each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import store
from newsroom.approval_messages import (
    ApprovalMessageData,
    Message,
    PostPreview,
    approval_request_message,
)
from newsroom.catalog.approvers import resolve_approvers
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.models import Campaign
from newsroom.posts import RenderedPost
from newsroom.signing import Signer
from newsroom.store import ApprovalRequest, ApprovalStatus, Occurrence, stored_id

from .gate import audit, gate_posts, occurrence_of, read_tally
from .links import approval_link
from .policy import (
    campaign_of,
    channel_label,
    display_name,
    requested_by,
    rule_german,
    salutation,
    utc_now,
)
from .versions import previous_version

logger = logging.getLogger("newsroom.approval")


def _previews(catalog: Catalog, posts: Sequence[RenderedPost]) -> tuple[PostPreview, ...]:
    return tuple(PostPreview(channel_label(catalog, post.channel), post)
                 for post in sorted(posts, key=lambda p: (p.publish_at, p.channel)))


def _on_behalf_of(catalog: Catalog, campaign: Campaign, day: date) -> dict[str, str]:
    try:
        approvers = resolve_approvers(campaign.approval, catalog.index, day)
    except LookupError:
        return {}
    return {a.person.id: a.on_behalf_of.display for a in approvers if a.on_behalf_of}


def message_data(session: Session, catalog: Catalog, occurrence: Occurrence,
                 request: ApprovalRequest, link: str, asked: Sequence[str]) -> ApprovalMessageData:
    """What a mail about ``request`` says (the first one and the reminders alike)."""
    campaign = campaign_of(catalog, occurrence.campaign_id)
    changed = previous_version(session, occurrence=occurrence) is not None
    return ApprovalMessageData(
        title=campaign.title,
        occurrence_date=occurrence.occurrence_date,
        requested_by=requested_by(catalog, campaign),
        salutation=salutation(catalog, request.person_id),
        on_behalf_of=_on_behalf_of(catalog, campaign, occurrence.occurrence_date).get(
            request.person_id),
        deadline=request.deadline,
        link=link,
        posts=_previews(catalog, gate_posts(session, occurrence)),
        others=tuple(display_name(catalog, p) for p in asked if p != request.person_id),
        rule=rule_german(campaign.approval, len(asked)),
        joint=campaign.signatories_in_text,
        changed=changed,
    )


def send_message(notifier: Any, tag: str, message: Message) -> bool:
    """Send ``message`` to ``tag``; False when the notifier failed (never raises)."""
    try:
        return bool(notifier.notify(tag, message.subject, message.text, message.html))
    except Exception as exc:  # a notifier must not break the gate; the sweeper retries
        logger.warning("sending %r to %r failed: %s", message.subject, tag, type(exc).__name__)
        return False


def notify_approvers(engine: Engine, catalog: Catalog, *, occurrence_id: int, notifier: Any,
                     signer: Signer, base_url: str, now: datetime | None = None) -> list[str]:
    """E-mail every asked person not yet notified about the gate's bundle; once each.

    The messages are built in one transaction and sent outside any: on SQLite a
    transaction holds the write lock, and a slow mail server must not stall every other
    run. Each sent message is then marked in its own short transaction.
    """
    now = utc_now(now)
    sent: list[str] = []
    outbox: list[tuple[int, str, str, Any]] = []
    with store.session_scope(engine) as session:
        occurrence = occurrence_of(session, occurrence_id)
        if occurrence.gate_outcome is not None:
            return sent
        tally = read_tally(session, occurrence)
        asked = [r.person_id for r in tally.asked]
        for request in tally.asked:
            if request.status != ApprovalStatus.PENDING.value or request.notified_at is not None:
                continue
            link = approval_link(signer, request, base_url)
            message = approval_request_message(
                message_data(session, catalog, occurrence, request, link, asked))
            outbox.append((stored_id(request), request.person_id, request.bundle_hash, message))
    for request_id, person_id, bundle, message in outbox:
        if not send_message(notifier, person_id, message):
            continue
        with store.session_scope(engine) as session:
            occurrence = occurrence_of(session, occurrence_id)
            store.mark_request_notified(session, request_id=request_id, at=now)
            audit(session, occurrence, action="approval.notified",
                  content_hash=bundle, channel="email", at=now,
                  detail={"person": person_id, "tag": person_id,
                          "request_id": request_id, "subject": message.subject})
        sent.append(person_id)
    return sent
