"""Asking the approvers by e-mail: the data every approval mail is rendered from
(:mod:`newsroom.approval_messages` renders it), sending through a notifier, and the
first mail to every asked person, once each."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
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
from newsroom.catalog.catalog import Catalog
from newsroom.posts import RenderedPost
from newsroom.signing import Signer
from newsroom.store import ApprovalRequest, ApprovalStatus, Occurrence, stored_id

from .chain import chain_view
from .gate import audit, gate_posts, gate_status, occurrence_of, walk_chain
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
from .status import GateStatus
from .versions import previous_version

logger = logging.getLogger("newsroom.approval")


def _previews(catalog: Catalog, posts: Sequence[RenderedPost]) -> tuple[PostPreview, ...]:
    return tuple(PostPreview(channel_label(catalog, post.channel), post)
                 for post in sorted(posts, key=lambda p: (p.publish_at, p.channel)))


def message_data(session: Session, catalog: Catalog, occurrence: Occurrence,
                 request: ApprovalRequest, link: str, status: GateStatus) -> ApprovalMessageData:
    """What a mail about ``request`` says (the first one and the reminders alike);
    ``status``: the gate as it stands (its chain, the request's step)."""
    campaign = campaign_of(catalog, occurrence.campaign_id)
    changed = previous_version(session, occurrence=occurrence) is not None
    chain = campaign.approval.chain
    number = min(request.step, len(chain) - 1)
    step = status.steps[number] if number < len(status.steps) else None
    asked = step.people if step is not None else status.asked
    deputies = dict(step.on_behalf_of) if step is not None else {}
    stand_in = deputies.get(request.person_id)
    return ApprovalMessageData(
        title=campaign.title,
        occurrence_date=occurrence.occurrence_date,
        requested_by=requested_by(catalog, campaign),
        salutation=salutation(catalog, request.person_id),
        on_behalf_of=display_name(catalog, stand_in) if stand_in else None,
        deadline=request.deadline,
        link=link,
        posts=_previews(catalog, gate_posts(session, occurrence)),
        others=tuple(display_name(catalog, p) for p in asked if p != request.person_id),
        rule=rule_german(chain[number], len(asked)),
        joint=campaign.signatories_in_text,
        changed=changed,
        step=(f"Stufe {number + 1} von {len(chain)}: {step.name}"
              if step is not None and len(chain) > 1 else None),
        chain=tuple(s.line for s in chain_view(catalog, status, request.person_id)),
    )


def gate_now(session: Session, catalog: Catalog, occurrence: Occurrence, now: datetime
             ) -> tuple[GateStatus, list[ApprovalRequest]]:
    """The gate as it stands (nothing written), and the requests of its current step."""
    walk = walk_chain(session, catalog, occurrence, now, write=False)
    return (gate_status(catalog, occurrence, walk, walk.outcome, walk.reason),
            walk.tallies[walk.step].asked)


def send_message(notifier: Any, tag: str, message: Message) -> bool:
    """Send ``message`` to ``tag``; False when the notifier failed (never raises)."""
    try:
        return bool(notifier.notify(tag, message.subject, message.text, message.html))
    except Exception as exc:  # a notifier must not break the gate; the sweeper retries
        logger.warning("sending %r to %r failed: %s", message.subject, tag, type(exc).__name__)
        return False


def notify_approvers(engine: Engine, catalog: Catalog, *, occurrence_id: int, notifier: Any,
                     signer: Signer, base_url: str, now: datetime | None = None,
                     asked_before: datetime | None = None) -> list[str]:
    """E-mail every person asked in the gate's current step and not yet notified about
    its bundle; once each (a step's people are asked once the step before is approved).
    ``asked_before``: only requests made before then (the sweeper's safety net leaves a
    request just made to the process that made it).

    The messages are built in one transaction and sent outside any: on SQLite a
    transaction holds the write lock, and a slow mail server must not stall every other
    run. Each sent message is then marked in its own short transaction.
    """
    now = utc_now(now)
    sent: list[str] = []
    outbox: list[tuple[int, str, str, int, Any]] = []
    with store.session_scope(engine) as session:
        occurrence = occurrence_of(session, occurrence_id)
        if occurrence.gate_outcome is not None:
            return sent
        status, requests = gate_now(session, catalog, occurrence, now)
        for request in requests:
            if request.status != ApprovalStatus.PENDING.value or request.notified_at is not None:
                continue
            if asked_before is not None and request.created_at >= asked_before:
                continue  # just asked: whoever asked sends it
            link = approval_link(signer, request, base_url)
            message = approval_request_message(
                message_data(session, catalog, occurrence, request, link, status))
            outbox.append((stored_id(request), request.person_id, request.bundle_hash,
                           request.step, message))
    for request_id, person_id, bundle, step, message in outbox:
        if not send_message(notifier, person_id, message):
            continue
        with store.session_scope(engine) as session:
            occurrence = occurrence_of(session, occurrence_id)
            store.mark_request_notified(session, request_id=request_id, at=now)
            audit(session, occurrence, action="approval.notified",
                  content_hash=bundle, channel="email", at=now,
                  detail={"person": person_id, "tag": person_id,
                          "request_id": request_id, "subject": message.subject,
                          "step": step})
        sent.append(person_id)
    return sent
