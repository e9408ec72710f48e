"""Telling people: which message a request's state still owes (:func:`pending_step`) and
sending it once per revision (:func:`notify_step`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from newsroom import request_messages as messages
from newsroom import store
from newsroom.catalog.catalog import Catalog
from newsroom.requests.errors import RequestError
from newsroom.requests.links import answer_link
from newsroom.requests.requesters import requester_for
from newsroom.requests.submission import load_request
from newsroom.signing import Signer
from newsroom.store import requests_crud as crud
from newsroom.store.models import CampaignRequest, RequestStatus

__all__ = [
    "NotifyContext",
    "STEPS",
    "notify_step",
    "pending_step",
]

STEPS = ("office", "received", "asked", "accepted", "declined")


def pending_step(request: CampaignRequest) -> str | None:
    """The message this request's state still owes (None: all sent)."""
    wanted = {RequestStatus.SUBMITTED.value: ["office", "received"],
              RequestStatus.RESUBMITTED.value: ["office", "received"],
              RequestStatus.ASKED_BACK.value: ["asked"],
              RequestStatus.ACCEPTED.value: ["accepted"],
              RequestStatus.DECLINED.value: ["declined"]}[request.status]
    for step in wanted:
        if f"{step}:{request.revision}" not in request.notified:
            return step
    return None


@dataclass
class NotifyContext:
    """What :func:`notify_step` needs from the running process."""

    engine: Engine
    catalog: Catalog
    notifier: Any
    signer: Signer
    base_url: str
    data_dir: Path | None = None  # where the images lie: attached to the office's message


def notify_step(ctx: NotifyContext, request_id: int, step: str) -> bool:
    """Send the message of ``step`` for the request's current revision, once.

    True when it was sent now; False when it had been sent already. Raises
    RequestError when the notifier did not take it (the caller retries).
    """
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    request, images = load_request(ctx.engine, request_id)
    key = f"{step}:{request.revision}"
    if key in request.notified:
        return False
    requester = requester_for(ctx.catalog, request.requester_kind, request.requester_id)
    if step == "office":
        tag = ctx.catalog.directory.communications_office
        message = messages.office_message(request, images, requester, ctx.base_url)
    elif step == "asked":
        tag = requester.notify_tag
        message = messages.asked_message(request, requester,
                                         answer_link(ctx.signer, ctx.base_url, request))
    else:
        tag = requester.notify_tag
        builder = {"received": messages.received_message,
                   "accepted": messages.accepted_message,
                   "declined": messages.declined_message}[step]
        message = builder(request, requester, ctx.catalog)
    attachments = [ctx.data_dir / i.stored_path for i in images
                   if step == "office" and ctx.data_dir is not None
                   and (ctx.data_dir / i.stored_path).is_file()]
    if not ctx.notifier.notify(tag, message.subject, message.text, message.html,
                               attachments=attachments):
        raise RequestError(f"the {step} message of request {request_id} to {tag!r} was not "
                           "delivered; it is sent again on the next try")
    with store.session_scope(ctx.engine) as session:
        crud.mark_request_notified(session, request_id=request_id, key=key)
        store.record_audit(session, campaign_id=crud.audit_key(request_id),
                           actor="newsroom", action=f"request.notified.{step}",
                           detail={"to": tag, "revision": request.revision,
                                   "subject": message.subject})
    return True
