"""The signed links of a request: the invitation of a Dezernat or Amt to the form, and the
requester's link to answer a question the office asked back."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.requests.errors import InviteRefused
from newsroom.requests.requesters import Requester, requester_for
from newsroom.signing import Expired, InvalidToken, Signer
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest, RequestStatus

__all__ = [
    "ANSWER",
    "INVITE",
    "answer_link",
    "check_answer_link",
    "check_invite",
    "invite_link",
]

INVITE = "request-invite"  # signing purpose of the invitation links
ANSWER = "request-answer"  # signing purpose of the links to answer a question


def invite_link(signer: Signer, base_url: str, requester: Requester, *,
                days: float = 90, now: datetime | None = None) -> tuple[str, datetime]:
    """The signed invitation link of a Dezernat or Amt, and when it expires."""
    if days <= 0:
        raise ValueError("the link must be valid for a positive number of days")
    token, claims = signer.issue(
        purpose=INVITE, subject={"kind": requester.kind.value, "id": requester.id},
        person=requester.id, content_hash="", ttl=timedelta(days=days), now=now)
    return f"{base_url.rstrip('/')}/anfrage/{token}", claims.expires_at


def check_invite(signer: Signer, catalog: Catalog, token: str, *,
                 now: datetime | None = None) -> tuple[Requester, str]:
    """The requester an invitation token names and its nonce; else InviteRefused."""
    try:
        claims = signer.verify(token, purpose=INVITE, now=now)
    except Expired as exc:
        raise InviteRefused(str(exc), reason="expired") from None
    except InvalidToken as exc:
        raise InviteRefused(str(exc), reason="forged") from None
    try:
        requester = requester_for(catalog, str(claims.subject.get("kind")),
                                  str(claims.subject.get("id")))
    except LookupError as exc:
        raise InviteRefused(str(exc), reason="unknown") from None
    return requester, claims.nonce


def answer_link(signer: Signer, base_url: str, request: CampaignRequest, *,
                days: float = 30) -> str:
    """The requester's link to answer the question asked back (this revision only)."""
    token, _ = signer.issue(
        purpose=ANSWER, subject={"request": request.id, "revision": request.revision},
        person=request.requester_id, content_hash="", ttl=timedelta(days=days))
    return f"{base_url.rstrip('/')}/anfrage/antwort/{token}"


def check_answer_link(signer: Signer, engine: Engine, token: str, *,
                      now: datetime | None = None) -> tuple[CampaignRequest, str]:
    """The request an answer link is for (still waiting for this answer) and its nonce."""
    try:
        claims = signer.verify(token, purpose=ANSWER, now=now)
    except Expired as exc:
        raise InviteRefused(str(exc), reason="expired") from None
    except InvalidToken as exc:
        raise InviteRefused(str(exc), reason="forged") from None
    with store.session_scope(engine) as session:
        row = crud.get_request(session, request_id=int(claims.subject.get("request", 0)))
    if row is None:
        raise InviteRefused("the request is gone", reason="unknown")
    if (row.status != RequestStatus.ASKED_BACK.value
            or row.revision != claims.subject.get("revision")):
        raise InviteRefused(f"request {row.id} is {row.status}; the question was answered or "
                            "decided already", reason="closed")
    return row, claims.nonce
