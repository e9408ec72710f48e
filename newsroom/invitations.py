"""Invitations to the request form: recorded when issued, revocable one by one.

An invitation is a signed link (:func:`newsroom.requests.invite_link`); the signature
alone cannot be withdrawn short of rotating the key, which would void every link Newsroom
ever mailed. So each invitation issued is recorded by its nonce (never the link itself),
and the form checks the store before it opens::

    link, invitation = issue_invitation(engine, signer, base_url, requester, by="admin:kim")
    revoke_requester(engine, requester, by="admin:kim")   # every one issued before now
    revoke_invitation(engine, invitation.id, by="admin:kim")
    requester, nonce = check_invite(engine, signer, catalog, token)  # InviteRefused "revoked"

Revoking a Dezernat's or an Amt's invitations also records a cutoff: links issued before
it are refused even when they have no row (issued before invitations were recorded).
Every step is written to the audit trail under ``invitations-<kind>-<id>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from newsroom import requests as domain
from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.requests import INVITE, InviteRefused, Requester, RequestError
from newsroom.signing import Signer
from newsroom.store.models import InvitationCutoff, RequestInvitation

__all__ = [
    "InvitationNotFound",
    "Revocation",
    "audit_key",
    "check_invite",
    "issue_invitation",
    "list_invitations",
    "revoke_invitation",
    "revoke_requester",
]


class InvitationNotFound(RequestError):
    """No invitation with that number."""


@dataclass(frozen=True)
class Revocation:
    """What a revocation withdrew: the recorded invitations it revoked now, and the
    cutoff before which every link of the requester is refused (None: one invitation)."""

    revoked: list[RequestInvitation]
    cutoff: datetime | None


def audit_key(kind: str, requester_id: str) -> str:
    return f"invitations-{kind}-{requester_id}"


def issue_invitation(engine: Engine, signer: Signer, base_url: str, requester: Requester, *,
                     days: float = 90, by: str, now: datetime | None = None
                     ) -> tuple[str, RequestInvitation]:
    """A new invitation link of a Dezernat or Amt, recorded (by nonce) so it can be
    revoked; the link and its row."""
    now = now or datetime.now(UTC)
    link, expires = domain.invite_link(signer, base_url, requester, days=days, now=now)
    claims = signer.verify(link.rsplit("/", 1)[1], purpose=INVITE, now=now)
    with store.session_scope(engine) as session:
        row = RequestInvitation(nonce=claims.nonce, requester_kind=requester.kind.value,
                                requester_id=requester.id, issued_at=now, expires_at=expires,
                                issued_by=by)
        session.add(row)
        session.flush()
        store.record_audit(session, campaign_id=audit_key(requester.kind.value, requester.id),
                           actor=by, action="invitation.issued",
                           detail={"invitation": row.id, "nonce": claims.nonce,
                                   "expires_at": expires.isoformat()})
    return link, row


def list_invitations(engine: Engine, *, kind: str | None = None,
                     requester_id: str | None = None) -> list[RequestInvitation]:
    """The recorded invitations (of one requester), oldest first."""
    query = select(RequestInvitation).order_by(col(RequestInvitation.id))
    if kind is not None:
        query = query.where(RequestInvitation.requester_kind == kind)
    if requester_id is not None:
        query = query.where(RequestInvitation.requester_id == requester_id)
    with store.session_scope(engine) as session:
        return list(session.exec(query))


def revoke_requester(engine: Engine, requester: Requester, *, by: str,
                     now: datetime | None = None) -> Revocation:
    """Revoke every invitation of the Dezernat or Amt issued before ``now``."""
    now = now or datetime.now(UTC)
    kind = requester.kind.value
    with store.session_scope(engine) as session:
        rows = list(session.exec(
            select(RequestInvitation).where(RequestInvitation.requester_kind == kind,
                                            RequestInvitation.requester_id == requester.id,
                                            col(RequestInvitation.revoked_at).is_(None),
                                            col(RequestInvitation.issued_at) < now)
            .order_by(col(RequestInvitation.id))))
        for row in rows:
            row.revoked_at, row.revoked_by = now, by
            session.add(row)
        session.add(InvitationCutoff(requester_kind=kind, requester_id=requester.id,
                                     before=now, revoked_by=by))
        store.record_audit(session, campaign_id=audit_key(kind, requester.id), actor=by,
                           action="invitation.revoked", at=now,
                           detail={"invitations": [r.id for r in rows],
                                   "issued_before": now.isoformat()})
    return Revocation(rows, now)


def revoke_invitation(engine: Engine, invitation_id: int, *, by: str,
                      now: datetime | None = None) -> Revocation:
    """Revoke one recorded invitation (InvitationNotFound when there is none; revoking a
    revoked one again changes nothing and returns it with an empty list)."""
    now = now or datetime.now(UTC)
    with store.session_scope(engine) as session:
        row = session.get(RequestInvitation, invitation_id, with_for_update=True)
        if row is None:
            raise InvitationNotFound(f"no invitation #{invitation_id}")
        if row.revoked_at is not None:
            return Revocation([], None)
        row.revoked_at, row.revoked_by = now, by
        session.add(row)
        store.record_audit(session, campaign_id=audit_key(row.requester_kind,
                                                          row.requester_id),
                           actor=by, action="invitation.revoked", at=now,
                           detail={"invitations": [row.id]})
    return Revocation([row], None)


def is_revoked(session: Session, *, kind: str, requester_id: str, nonce: str,
               issued_at: datetime) -> bool:
    """Whether the invitation with this nonce (issued at ``issued_at``) is revoked."""
    row = session.exec(select(RequestInvitation).where(RequestInvitation.nonce == nonce)
                       ).first()
    if row is not None:
        if row.revoked_at is not None:
            return True
        issued_at = row.issued_at  # exact; the link carries whole seconds
    cutoff = session.exec(select(func.max(InvitationCutoff.before)).where(
        InvitationCutoff.requester_kind == kind,
        InvitationCutoff.requester_id == requester_id)).one()
    if cutoff is None:
        return False
    if isinstance(cutoff, str):  # in case the driver hands back SQLite's text
        cutoff = datetime.fromisoformat(cutoff)
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)
    return issued_at < cutoff


def check_invite(engine: Engine, signer: Signer, catalog: Catalog, token: str, *,
                 now: datetime | None = None) -> tuple[Requester, str]:
    """The requester an invitation names and its nonce; InviteRefused when the link is
    forged, expired, for someone unknown, or revoked (``reason`` "revoked")."""
    requester, _ = domain.check_invite(signer, catalog, token, now=now)
    claims = signer.verify(token, purpose=INVITE, now=now)  # genuine: checked just now
    with store.session_scope(engine) as session:
        revoked = is_revoked(session, kind=requester.kind.value, requester_id=requester.id,
                             nonce=claims.nonce, issued_at=claims.issued_at)
    if revoked:
        raise InviteRefused(f"the invitation {claims.nonce} was revoked", reason="revoked")
    return requester, claims.nonce
