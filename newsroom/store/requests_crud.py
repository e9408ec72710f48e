"""Reading and writing requests to the communications office (:mod:`newsroom.requests`).

Like the ``crud_*`` modules, every function takes the session first and the rest as
keyword arguments. Unlike most of crud, these functions only ``flush``: a request and its
images are stored in one transaction that the caller commits (a request is never stored
without its images, nor images without their request).

The audit trail of a request is kept under the campaign id ``request-<id>``
(:func:`audit_key`), so ``newsroom audit request-12`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlmodel import Session, col, select

from newsroom.store.models import (
    CampaignRequest,
    RequesterKind,
    RequestImage,
    RequestStatus,
    utcnow,
)

__all__ = [
    "OPEN_STATUSES",
    "add_request_image",
    "audit_key",
    "create_request",
    "get_request",
    "list_requests",
    "mark_request_notified",
    "request_images",
    "set_request_flow_run",
]

# The office still has to decide (or the requester to answer).
OPEN_STATUSES = (RequestStatus.SUBMITTED, RequestStatus.ASKED_BACK, RequestStatus.RESUBMITTED)


def audit_key(request_id: int) -> str:
    """The audit trail's campaign id for a request."""
    return f"request-{request_id}"


def create_request(
    session: Session,
    *,
    requester_kind: str,
    requester_id: str,
    title: str,
    topic: str,
    desired_from: date,
    desired_to: date | None,
    desired_time: str | None,
    channels: Iterable[str],
    text: str,
    hashtags: Iterable[str],
    links: Iterable[str],
    notes: str,
    contact_name: str,
    contact_email: str,
    invite_nonce: str,
) -> CampaignRequest:
    """A new request in state ``submitted`` (flushed: it has its id, not yet committed)."""
    row = CampaignRequest(
        requester_kind=RequesterKind(requester_kind).value, requester_id=requester_id,
        title=title, topic=topic, desired_from=desired_from, desired_to=desired_to,
        desired_time=desired_time, channels=list(channels), text=text,
        hashtags=list(hashtags), links=list(links), notes=notes, contact_name=contact_name,
        contact_email=contact_email, invite_nonce=invite_nonce,
        status=RequestStatus.SUBMITTED.value,
    )
    session.add(row)
    session.flush()
    return row


def add_request_image(
    session: Session,
    *,
    request_id: int,
    position: int,
    filename: str,
    stored_path: str,
    content_type: str,
    size: int,
    sha256: str,
    alt: str,
) -> RequestImage:
    row = RequestImage(request_id=request_id, position=position, filename=filename,
                       stored_path=stored_path, content_type=content_type, size=size,
                       sha256=sha256, alt=alt)
    session.add(row)
    session.flush()
    return row


def get_request(session: Session, *, request_id: int, for_update: bool = False
                ) -> CampaignRequest | None:
    """The request, read fresh from the database (locked for update when asked)."""
    statement = select(CampaignRequest).where(CampaignRequest.id == request_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement.execution_options(populate_existing=True)).first()


def request_images(session: Session, *, request_id: int) -> list[RequestImage]:
    return list(session.exec(select(RequestImage).where(RequestImage.request_id == request_id)
                             .order_by(col(RequestImage.position))))


def list_requests(session: Session, *, statuses: Iterable[RequestStatus | str] | None = None
                  ) -> list[CampaignRequest]:
    """Requests (optionally only in ``statuses``), oldest first."""
    statement = select(CampaignRequest)
    if statuses is not None:
        statement = statement.where(col(CampaignRequest.status).in_(
            [RequestStatus(s).value for s in statuses]))
    return list(session.exec(statement.order_by(col(CampaignRequest.id))))


def set_request_flow_run(session: Session, *, request_id: int, flow_run_id: str) -> None:
    row = get_request(session, request_id=request_id, for_update=True)
    if row is not None and row.flow_run_id != flow_run_id:
        row.flow_run_id = flow_run_id
        session.add(row)
        session.flush()


def mark_request_notified(session: Session, *, request_id: int, key: str) -> bool:
    """Record that the message ``key`` (e.g. ``office:1``) went out; False if it had."""
    row = get_request(session, request_id=request_id, for_update=True)
    if row is None or key in row.notified:
        return False
    row.notified = [*row.notified, key]  # a new list: JSON columns track assignment only
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return True
