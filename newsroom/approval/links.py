"""The personal approval link: issuing it, and what a link's holder may do with it.

A link is a short token (what the mails carry) or a long signed one (what they carried
before, still valid until its deadline); either is bound to one request, its person and
its content. :func:`check_link` says which request a genuine, current link points at, or
raises the :class:`ApprovalLinkError` that says why not.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsroom import store
from newsroom.signing import (
    APPROVAL,
    BadSignature,
    Expired,
    Signer,
    TokenClaims,
    WrongPurpose,
    is_short_token,
    short_token_ref,
)
from newsroom.store import ApprovalRequest, ApprovalStatus, Occurrence, stored_id

from .errors import (
    ApprovalLinkError,
    ContentChanged,
    GateClosed,
    LinkAlreadyUsed,
    LinkExpired,
    LinkForged,
    LinkNotFound,
    LinkTarget,
    StepDone,
    WrongPerson,
)
from .policy import utc_now


def approval_link(signer: Signer, request: ApprovalRequest, base_url: str) -> str:
    """The person's link to the approval page, short enough to read in an e-mail: a short
    token (:meth:`Signer.issue_short`) bound to the request's nonce, person and content.
    It holds until the request's deadline and while the request is pending; every mail
    about the request (the first, the reminders) carries the same link."""
    token = signer.issue_short(purpose=APPROVAL, ref=stored_id(request),
                               binding=_short_binding(request))
    return f"{base_url.rstrip('/')}/freigabe/{token}"


def _short_binding(request: ApprovalRequest) -> tuple[str, ...]:
    return (request.token_nonce, request.person_id, request.bundle_hash)


@contextmanager
def _reading(engine: Engine, session: Session | None) -> Iterator[Session]:
    if session is not None:
        yield session
    else:
        with store.session_scope(engine) as own:
            yield own


def check_link(engine: Engine, signer: Signer, token: str, *,
               now: datetime | None = None, require_pending: bool = True,
               session: Session | None = None) -> LinkTarget:
    """The request a genuine, current link points at; else an :class:`ApprovalLinkError`.

    ``token`` is a short token (what the mails carry) or a long signed one (what they
    carried before, still valid until its deadline). With ``session`` the request is
    read in that session's transaction (the caller's), else in one of its own."""
    now = utc_now(now)
    if is_short_token(token):
        target = _short_target(engine, signer, token, session)
        if now >= target.request.deadline:
            expired = LinkExpired(f"the link expired at {target.request.deadline.isoformat()}")
            expired.target = target
            raise expired
    else:
        target = _signed_target(engine, signer, token, now, session)
    request, occurrence = target.request, target.occurrence
    refused: ApprovalLinkError | None = None
    if request.status == ApprovalStatus.VOID.value or (
            request.status == ApprovalStatus.PENDING.value
            and occurrence.bundle_hash != request.bundle_hash):
        refused = ContentChanged(f"the posts of request {request.id} changed after it was "
                                 "sent")
    elif request.status == ApprovalStatus.EXPIRED.value:
        refused = LinkExpired(f"request {request.id} expired")
    elif require_pending and request.status != ApprovalStatus.PENDING.value:
        refused = LinkAlreadyUsed(f"request {request.id} is {request.status}",
                                  status=request.status, decided_at=request.decided_at)
    elif require_pending and occurrence.gate_outcome is not None:
        refused = GateClosed(f"the gate of occurrence {occurrence.id} is "
                             f"{occurrence.gate_outcome}", outcome=occurrence.gate_outcome)
    elif require_pending and _step_done(engine, request, session):
        refused = StepDone(f"step {request.step + 1} of occurrence {occurrence.id} is "
                           "approved already; a later step is asked")
    if refused is not None:
        refused.target = target
        raise refused
    return target


def _step_done(engine: Engine, request: ApprovalRequest, session: Session | None) -> bool:
    with _reading(engine, session) as session:
        return store.later_step_asked(session, request)


def _short_target(engine: Engine, signer: Signer, token: str,
                  session: Session | None = None) -> LinkTarget:
    """The request a short token is bound to. A request that does not exist and a MAC
    that does not match are the same :class:`LinkForged`: trying ids learns nothing."""
    request_id = short_token_ref(token)
    with _reading(engine, session) as session:
        request = session.get(ApprovalRequest, request_id)
        occurrence = session.get(Occurrence, request.occurrence_id) if request else None
    if request is None or occurrence is None:
        raise LinkForged("the link's signature does not match")
    try:
        signer.verify_short(token, purpose=APPROVAL, binding=_short_binding(request))
    except BadSignature as exc:
        raise LinkForged(str(exc)) from None
    claims = TokenClaims(
        purpose=APPROVAL, subject={"request": request.id, "nonce": request.token_nonce},
        person=request.person_id, content_hash=request.bundle_hash,
        # What the audit trail and the CSRF field name the link by: not the token itself.
        nonce=hashlib.sha256(token.encode("ascii")).hexdigest()[:32],
        expires_at=request.deadline, issued_at=request.created_at)
    return LinkTarget(claims, request, occurrence)


def _signed_target(engine: Engine, signer: Signer, token: str, now: datetime,
                   session: Session | None = None) -> LinkTarget:
    """The request a long signed token points at (its person, its content); else the
    error that says why not."""
    try:
        claims = signer.verify(token, purpose=APPROVAL, now=now)
    except Expired as exc:
        # Genuine but expired: bound to its request, it may still say what became of it.
        expired = LinkExpired(str(exc))
        expired.target = _bound_target(engine, exc.claims, session)
        raise expired from None
    except (BadSignature, WrongPurpose) as exc:
        raise LinkForged(str(exc)) from None
    request_id = claims.subject.get("request")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise LinkForged("the link names no approval request")
    with _reading(engine, session) as session:
        request = session.get(ApprovalRequest, request_id)
        occurrence = session.get(Occurrence, request.occurrence_id) if request else None
    if request is None or occurrence is None or (
            claims.subject.get("nonce") != request.token_nonce):
        raise LinkNotFound(f"no approval request {request_id} for this link")
    if claims.person != request.person_id:
        raise WrongPerson(f"the link was issued to {claims.person!r}, the request asks "
                          f"{request.person_id!r}")
    if claims.content_hash != request.bundle_hash:
        raise LinkForged("the link's content does not match its request")
    return LinkTarget(claims, request, occurrence)


def _bound_target(engine: Engine, claims: TokenClaims,
                  session: Session | None = None) -> LinkTarget | None:
    """The request a genuine (expired) token is bound to: same request, nonce, person and
    content; else None, and the page says no more than "expired"."""
    request_id = claims.subject.get("request")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        return None
    with _reading(engine, session) as session:
        request = session.get(ApprovalRequest, request_id)
        occurrence = session.get(Occurrence, request.occurrence_id) if request else None
    if (request is None or occurrence is None
            or claims.subject.get("nonce") != request.token_nonce
            or claims.person != request.person_id
            or claims.content_hash != request.bundle_hash):
        return None
    return LinkTarget(claims, request, occurrence)
