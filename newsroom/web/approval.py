"""``/freigabe/{token}``: an approver reads the exact posts and decides.

The token is the personal link from the approval e-mail (purpose "approval", see
:func:`newsroom.approval.approval_link`); it names one approval request, one person and
the bundle of posts they are asked about, and expires at the deadline.

- ``GET /freigabe/{token}`` shows every channel's post (text, images with alt text,
  local time), the deadline, who else is asked and who has signed, what changed since an
  earlier version was decided on, and the form. It changes no state: it only writes
  ``approval.viewed`` to the audit trail (at most once per link and minute) and sets the
  CSRF cookie.
- ``POST /freigabe/{token}`` (form: ``csrf``, ``decision``, ``comment``) records the
  decision through :func:`newsroom.approval.decide`. When the gate settles, the app's
  ``on_gate_settled`` callback is called; its errors are logged, never shown.
- ``GET /freigabe/{token}/bild/{channel}/{n}`` serves an image of the posts.

CSRF: a signed double-submit cookie as in :mod:`newsroom.web.manual`.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsroom import approval, store
from newsroom.approval import (
    ApprovalLinkError,
    ContentChanged,
    GateClosed,
    GateOutcome,
    LinkAlreadyUsed,
    LinkExpired,
    LinkForged,
    LinkNotFound,
    LinkTarget,
    WrongPerson,
)
from newsroom.approval_messages import local_when
from newsroom.channels.base import sniff_image_type
from newsroom.posts import RenderedPost
from newsroom.store import ApprovalStatus
from newsroom.web.pages import WebContext, get_context

logger = logging.getLogger("newsroom.web.approval")

router = APIRouter(prefix="/freigabe")
Context = Annotated[WebContext, Depends(get_context)]

CSRF_COOKIE = "newsroom_csrf"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_MAX_FORM_BYTES = 16384
_ASK = ("Bitte wenden Sie sich an das Amt für Kommunikation; dort kann Ihre Entscheidung "
        "auch direkt vermerkt werden.")
_AGAIN = "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut."
_DECISIONS = {
    "approve": "freigegeben",
    "reject": "abgelehnt",
    "request_changes": "Änderungen angefordert",
}
_STATUS_GERMAN = {
    ApprovalStatus.APPROVED.value: "Sie haben bereits freigegeben",
    ApprovalStatus.REJECTED.value: "Sie haben bereits abgelehnt",
    ApprovalStatus.CHANGES_REQUESTED.value: "Sie haben bereits Änderungen angefordert",
}
_OUTCOME_GERMAN = {
    GateOutcome.APPROVED: "Die Beiträge sind freigegeben.",
    GateOutcome.REJECTED: "Die Beiträge wurden abgelehnt.",
    GateOutcome.CHANGES_REQUESTED: "Es wurden Änderungen angefordert.",
    GateOutcome.CANCELLED: "Die Veröffentlichung wurde abgesagt.",
    GateOutcome.ESCALATED: "Die Frist ist abgelaufen; das Amt für Kommunikation entscheidet.",
    GateOutcome.PENDING: "Die Freigabe läuft noch.",
}


def refusal(context: WebContext, exc: ApprovalLinkError) -> Response:
    """The German error page for a refused link, with its status code."""
    pages = context.pages
    if isinstance(exc, LinkExpired):
        return pages.error(410, "Dieser Link ist abgelaufen",
                           "Die Frist für diese Freigabe ist vorbei; der Link gilt nicht mehr.",
                           _ASK)
    if isinstance(exc, ContentChanged):
        return pages.error(410, "Die Beiträge wurden geändert",
                           "Seit dieser Link verschickt wurde, haben sich Text oder Bilder "
                           "geändert. Dieser Link gilt nur für die alte Fassung. Sie haben "
                           "(oder erhalten in Kürze) eine neue E-Mail mit einem neuen Link "
                           "zur geänderten Fassung.",
                           "Bitte verwenden Sie den Link aus der neuesten E-Mail. " + _ASK)
    if isinstance(exc, LinkAlreadyUsed):
        said = _STATUS_GERMAN.get(exc.status, "Über diese Anfrage wurde bereits entschieden")
        when = f" ({local_when(exc.decided_at)})" if exc.decided_at else ""
        return pages.error(409, "Bereits entschieden",
                           f"{said}{when}. Jeder Link kann nur einmal verwendet werden.",
                           "Wenn Sie Ihre Entscheidung ändern möchten: " + _ASK)
    if isinstance(exc, GateClosed):
        return pages.error(409, "Freigabe bereits abgeschlossen",
                           _OUTCOME_GERMAN.get(GateOutcome(exc.outcome), "")
                           + " Eine weitere Entscheidung ist nicht mehr nötig.",
                           "Bei Fragen: " + _ASK)
    if isinstance(exc, WrongPerson):
        return pages.error(403, "Dieser Link ist nicht für diese Anfrage",
                           "Der Link wurde für eine andere Person ausgestellt.", _ASK)
    if isinstance(exc, LinkNotFound):
        return pages.error(404, "Anfrage nicht gefunden",
                           "Zu diesem Link gibt es keine Freigabe-Anfrage (mehr).", _ASK)
    if isinstance(exc, LinkForged):
        return pages.error(400, "Dieser Link ist ungültig",
                           "Der Link ist unvollständig, wurde verändert oder gehört zu einer "
                           "anderen Aktion.",
                           _AGAIN + " Achten Sie darauf, ihn vollständig zu kopieren. " + _ASK)
    return pages.error(400, "Eingabe nicht möglich",
                       "Die Entscheidung konnte so nicht angenommen werden.",
                       "Bitte wählen Sie einen der drei Knöpfe; der Kommentar darf höchstens "
                       f"{approval.MAX_COMMENT} Zeichen lang sein.")


def _check(context: WebContext, token: str, *, require_pending: bool = True
           ) -> LinkTarget | Response:
    if not isinstance(token, str) or len(token) > 4096:
        return refusal(context, LinkForged("too long"))
    try:
        return approval.check_link(context.engine, context.signer, token,
                                   require_pending=require_pending)
    except ApprovalLinkError as exc:
        return refusal(context, exc)


def _media_ok(context: WebContext, source: str):
    if urlsplit(source).scheme:
        return None
    root = context.catalog.root.resolve()
    path = (root / source).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def viewed_key(nonce: str, now: datetime) -> str:
    """The ``once_key`` of an ``approval.viewed`` event: one per link and minute."""
    return f"approval.viewed:{nonce}:{int(now.timestamp()) // 60}"


def _view(context: WebContext, target: LinkTarget, token: str) -> dict[str, Any]:
    """Everything the page shows; reads only (and writes ``approval.viewed``)."""
    catalog = context.catalog
    occurrence = target.occurrence
    request = target.request
    with store.session_scope(context.engine) as session:
        rows = store.current_posts(session, occurrence_id=occurrence.id)
        previous = approval.previous_version(session, occurrence=occurrence,
                                             person_id=request.person_id)
        requests = [r for r in store.approval_requests(session, occurrence_id=occurrence.id)
                    if r.bundle_hash == request.bundle_hash
                    and not r.person_id.startswith(approval.ADMIN_PREFIX)
                    and r.status != ApprovalStatus.VOID.value]
        # Once per link and minute: a link scanner's (or a reloading browser's) GETs
        # do not grow the audit trail without bound; the store decides, so two web
        # processes on one database record it once too.
        store.record_audit_once(
            session, once_key=viewed_key(target.claims.nonce, datetime.now(UTC)),
            campaign_id=occurrence.campaign_id, occurrence_date=occurrence.occurrence_date,
            actor=request.person_id, action="approval.viewed",
            content_hash=request.bundle_hash,
            detail={"request_id": request.id, "token_nonce": target.claims.nonce})
    campaign = catalog.campaign(occurrence.campaign_id).campaign
    posts: list[dict[str, Any]] = []
    for row in sorted(rows, key=lambda r: (r.publish_at, r.channel)):
        post: RenderedPost = row.to_rendered()
        media = []
        for index, item in enumerate(post.media):
            src = (f"/freigabe/{token}/bild/{quote(post.channel)}/{index}"
                   if _media_ok(context, item.source) else None)
            media.append({"src": src, "alt": item.alt})
        diff = None
        if previous is not None:
            old = previous.posts.get(post.channel)
            if old is None:
                diff = [("added", line) for line in post.text.splitlines()]
            elif old.text != post.text:
                diff = approval.text_diff(old.text, post.text)
            else:
                diff = []
        posts.append({
            "channel": approval.channel_label(catalog, post.channel),
            "when": local_when(post.publish_at),
            "iso": post.publish_at.isoformat(),
            "lines": post.text.splitlines() or [""],
            "link": post.link,
            "media": media,
            "diff": diff,
            "media_changed": previous is not None and post.channel in previous.posts
            and previous.posts[post.channel].media != post.media,
        })
    removed = ([approval.channel_label(catalog, c)
                for c in previous.posts if c not in {r.channel for r in rows}]
               if previous else [])
    people = []
    for r in requests:
        state = {"approved": "hat freigegeben", "rejected": "hat abgelehnt",
                 "changes_requested": "hat Änderungen angefordert",
                 "expired": "hat nicht rechtzeitig geantwortet"}.get(r.status, "noch offen")
        people.append({"name": approval._display(catalog, r.person_id),
                       "state": state, "me": r.id == request.id})
    return {
        "title": campaign.title,
        "date": local_when(occurrence.first_publish_at),
        "requested_by": approval._requested_by(catalog, campaign),
        "person": approval._display(catalog, request.person_id),
        "deadline": local_when(request.deadline),
        "deadline_iso": request.deadline.isoformat(),
        "rule": approval._rule_german(campaign.approval, len(requests)),
        "joint": campaign.signatories_in_text,
        "posts": posts,
        "people": people,
        "changed": previous is not None,
        "previous_by": [approval._display(catalog, p) for p in previous.decided_by]
        if previous else [],
        "removed_channels": removed,
    }


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(CSRF_COOKIE, "")
    if _COOKIE_VALUE.match(value):
        return value, False
    return secrets.token_urlsafe(32), True


@router.get("/{token}")
async def show(token: str, request: Request, context: Context) -> Response:
    target = await run_in_threadpool(_check, context, token)
    if isinstance(target, Response):
        return target
    view = await run_in_threadpool(_view, context, target, token)
    cookie, new = _csrf_cookie(request)
    response = context.pages.render("approval.html", {
        **view, "action": f"/freigabe/{token}",
        "csrf": context.signer.csrf_value(cookie, target.claims.nonce),
        "max_comment": approval.MAX_COMMENT,
    })
    if new:
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/freigabe")
    return response


@router.get("/{token}/bild/{channel}/{index}")
async def image(token: str, channel: str, index: int, context: Context) -> Response:
    target = await run_in_threadpool(_check, context, token, require_pending=False)
    if isinstance(target, Response):
        return target

    def load() -> tuple[bytes, Any]:
        with store.session_scope(context.engine) as session:
            rows = store.current_posts(session, occurrence_id=target.occurrence.id)
        post = next((r.to_rendered() for r in rows if r.channel == channel), None)
        if post is None or not 0 <= index < len(post.media):
            return b"", None
        item = post.media[index]
        path = _media_ok(context, item.source)
        data = path.read_bytes() if path is not None else b""
        if item.sha256 and hashlib.sha256(data).hexdigest() != item.sha256:
            return b"", None
        return data, path

    data, path = await run_in_threadpool(load)
    content_type = sniff_image_type(data) if data else None
    if path is None or content_type is None:
        return context.pages.error(404, "Bild nicht gefunden",
                                   "Dieses Bild gibt es nicht (mehr) in dieser Fassung.", _ASK)
    return Response(data, media_type=content_type, headers={
        "content-disposition": f"inline; filename*=UTF-8''{quote(path.name)}",
        "cache-control": "private, no-store",
    })


async def _call_settled(context: WebContext, status: approval.GateStatus) -> None:
    callback = context.on_gate_settled
    if callback is None:
        return
    try:
        result = callback(status)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # the decision is stored; the deadline sweeper retries
        logger.error("on_gate_settled failed for occurrence %s: %s", status.occurrence_id,
                     type(exc).__name__)


@router.post("/{token}")
async def submit(token: str, request: Request, context: Context) -> Response:
    pages = context.pages
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            break
    if content_type != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM_BYTES:
        return pages.error(400, "Formular nicht lesbar",
                           "Die Entscheidung kam nicht als Formular dieser Seite an oder war "
                           "zu lang.", _AGAIN)
    try:
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=10)
    except ValueError:
        return pages.error(400, "Formular nicht lesbar",
                           "Die Entscheidung kam nicht als Formular dieser Seite an.", _AGAIN)
    form = {key: values[-1] for key, values in parsed.items()}
    target = await run_in_threadpool(_check, context, token)
    if isinstance(target, Response):
        return target
    if not context.signer.csrf_ok(request.cookies.get(CSRF_COOKIE), target.claims.nonce,
                                  form.get("csrf")):
        return pages.error(400, "Formular abgelaufen",
                           "Das Formular konnte nicht als Ihres erkannt werden (etwa weil "
                           "Cookies blockiert sind oder es aus einem anderen Fenster kam).",
                           _AGAIN + " Senden Sie das Formular dann noch einmal ab.")
    decision = form.get("decision", "")
    comment = form.get("comment", "")
    try:
        status = await run_in_threadpool(
            lambda: approval.decide(context.engine, context.catalog, token=token,
                                    decision=decision, comment=comment,
                                    signer=context.signer))
    except ApprovalLinkError as exc:
        return refusal(context, exc)
    if status.settled or status.outcome == GateOutcome.ESCALATED:
        await _call_settled(context, status)
    campaign = context.catalog.campaign(status.campaign_id).campaign
    return pages.render("approval_done.html", {
        "title": campaign.title,
        "decision": _DECISIONS[decision],
        "comment": comment.strip(),
        "outcome": _OUTCOME_GERMAN[status.outcome],
        "joint": campaign.signatories_in_text and decision == "approve",
    })
