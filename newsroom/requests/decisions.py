"""The office decides: who may (:func:`authorize_decision`), asking back
(:func:`ask_back`) and declining (:func:`decline_request`); accepting is in
:mod:`newsroom.requests.acceptance`."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.catalog.roles import NotPermitted, Permission, authorize
from newsroom.requests.errors import InvalidRequest, Problem, RequestNotFound, WrongState
from newsroom.requests.form import clean_text
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest, RequestStatus, utcnow

__all__ = [
    "ask_back",
    "authorize_decision",
    "decline_request",
    "lock_decidable",
]

_DECIDABLE = {RequestStatus.SUBMITTED.value, RequestStatus.RESUBMITTED.value}


def lock_decidable(session: Any, request_id: int, step: str) -> CampaignRequest:
    """The request, locked for update, when the office may decide it now; else
    RequestNotFound or WrongState (``step`` names the step refused)."""
    row = crud.get_request(session, request_id=request_id, for_update=True)
    if row is None:
        raise RequestNotFound(f"no request {request_id}; `newsroom requests` lists them")
    if row.status not in _DECIDABLE:
        what = {"asked_back": "waits for the requester's answer to a question",
                "accepted": f"was accepted already (campaign {row.campaign_id})",
                "declined": "was declined already"}.get(row.status, row.status)
        raise WrongState(f"request {request_id} {what}; it cannot be {step}")
    return row


def _decide(engine: Engine, request_id: int, *, step: str, status: RequestStatus, by: str,
            via: str, detail: dict[str, Any], **changes: Any) -> CampaignRequest:
    with store.session_scope(engine) as session:
        row = lock_decidable(session, request_id, step)
        for key, value in changes.items():
            setattr(row, key, value)
        now = utcnow()
        row.status, row.decided_by, row.decided_at, row.updated_at = status.value, by, now, now
        session.add(row)
        session.flush()
        store.record_audit(session, campaign_id=crud.audit_key(request_id), actor=by,
                           action=f"request.{status.value}",
                           detail={"revision": row.revision, "via": via, **detail})
        return row


def authorize_decision(engine: Engine, catalog: Catalog, request_id: int, by: str, *,
                       via: str, refusal_key: str | None = None) -> str:
    """``admin:<id>`` of the registry person ``by`` names, when their role allows deciding
    requests (:func:`newsroom.catalog.roles.authorize`: office-admin or office-editor).

    Every way the office decides (the Prefect Resume form, ``newsroom requests accept|ask|
    decline``) calls this first. A refusal is audited under the request
    (``request.decision_refused``; once per ``refusal_key``) and raised as
    :class:`~newsroom.catalog.roles.NotPermitted`.
    """
    try:
        return f"admin:{authorize(catalog.index, by, Permission.DECIDE_REQUEST).id}"
    except NotPermitted as exc:
        event: dict[str, Any]
        event = dict(campaign_id=crud.audit_key(request_id), actor=f"refused:{via}",
                     action="request.decision_refused",
                     detail={"named": " ".join((by or "").split())[:100], "via": via,
                             "reason": str(exc)})
        with store.session_scope(engine) as session:
            if refusal_key:
                store.record_audit_once(session, once_key=refusal_key, **event)
            else:
                store.record_audit(session, **event)
        raise


def ask_back(engine: Engine, request_id: int, *, question: str, by: str,
             via: str = "cli") -> CampaignRequest:
    """The office asks the requester a question; the request waits for the answer."""
    question = clean_text(question, 4000)
    if not question:
        raise InvalidRequest([Problem("question", "Bitte formulieren Sie die Rückfrage.",
                                      "the question is empty; say what you need to know")])
    return _decide(engine, request_id, step="asked back", status=RequestStatus.ASKED_BACK,
                   by=by, via=via, detail={"question": question}, question=question,
                   answer=None)


def decline_request(engine: Engine, request_id: int, *, reason: str, by: str,
                    via: str = "cli") -> CampaignRequest:
    """The office declines, with a reason the requester is told."""
    reason = clean_text(reason, 4000)
    if not reason:
        raise InvalidRequest([Problem("reason", "Bitte nennen Sie den Grund der Absage.",
                                      "the reason is empty; the requester is told why")])
    return _decide(engine, request_id, step="declined", status=RequestStatus.DECLINED, by=by,
                   via=via, detail={"reason": reason}, reason=reason)
