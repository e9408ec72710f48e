"""``/freigabe/{token}``: an approver reads the exact posts and decides.

The token is the personal link from the approval e-mail (purpose "approval", see
:func:`newsroom.approval.approval_link`); it names one approval request, one person and
the bundle of posts they are asked about, and expires at the deadline.

- ``GET /freigabe/{token}`` shows every channel's post (text, images with alt text,
  local time), the deadline, who else is asked and who has signed, where the gate stands
  (the quorum met, and whether a signature still appears in a joint statement), what
  changed word by word since an earlier version was decided on, and the form. It changes
  no state: it only writes ``approval.viewed`` to the audit trail (at most once per link
  and minute) and sets the CSRF cookie.
- A refused link that is genuine and bound to its request (its person, its content; see
  :func:`newsroom.approval.link_state`) tells its holder what is true, with the status
  code of the refusal: an earlier version decided on no longer counts and the new mail's
  link is the one to use (409); the gate closed, the quorum met, and that a later
  signature is not taken (409); the deadline passed, with the outcome the timeout policy
  gave — read, not stored, when the deadline sweeper has not run yet (410); the posts
  published, with the network's links. A forged link, another person's or another
  content's gets the same page as before, which names nothing of the campaign.
- ``POST /freigabe/{token}`` (form: ``csrf``, ``decision``, ``comment``) records the
  decision through :func:`newsroom.approval.decide`. When the gate settles, the app's
  ``on_gate_settled`` callback is called, else ``on_gate_decided``; their errors are
  logged, never shown.
- ``GET /freigabe/{token}/bild/{channel}/{n}`` serves an image of the posts.

CSRF: a signed double-submit cookie as in :mod:`newsroom.web.manual`.

Its size (about 650 lines): the page's three routes share the link check, the German
refusal and state pages and the CSRF handling, which make sense only together; what the
page keeps between requests is in :mod:`newsroom.web.approval_caches`.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsroom import approval, store
from newsroom.approval import (
    ApprovalError,
    ApprovalLinkError,
    ContentChanged,
    GateClosed,
    GateOutcome,
    LinkAlreadyUsed,
    LinkExpired,
    LinkForged,
    LinkNotFound,
    LinkState,
    LinkTarget,
    StepDone,
    WrongPerson,
)
from newsroom.approval.versions import PreviousVersion
from newsroom.approval_messages import local_when
from newsroom.media import sniff_image_type
from newsroom.posts import RenderedPost
from newsroom.rendering.templates import join_german
from newsroom.store import ApprovalStatus
from newsroom.web.approval_caches import (
    current_posts,
    media_path,
    page_caches,
    viewed_already,
    viewed_key,
)
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
_DECISIONS = approval.DECISION_GERMAN
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


_DECIDED_GERMAN = {  # "Sie haben am … {…}"
    ApprovalStatus.APPROVED.value: "freigegeben",
    ApprovalStatus.REJECTED.value: "abgelehnt",
    ApprovalStatus.CHANGES_REQUESTED.value: "Änderungen angefordert",
}
_DECIDED_TITLE = {
    ApprovalStatus.APPROVED.value: "Sie haben eine frühere Fassung freigegeben",
    ApprovalStatus.REJECTED.value: "Sie haben eine frühere Fassung abgelehnt",
    ApprovalStatus.CHANGES_REQUESTED.value: "Sie haben zu einer früheren Fassung Änderungen "
                                            "angefordert",
}
# What a link's holder is told becomes of their request and the gate (refusal pages of a
# genuine link bound to its request; see approval.link_state). Status codes stay those of
# the errors: 409 used or closed, 410 changed or expired.
_STATE_TITLES = {
    LinkExpired: "Die Frist ist abgelaufen",
    LinkAlreadyUsed: "Bereits entschieden",
    GateClosed: "Freigabe bereits abgeschlossen",
    StepDone: "Ihre Stufe ist bereits freigegeben",
    ContentChanged: "Die Beiträge wurden geändert",
}


def refusal(context: WebContext, exc: ApprovalLinkError) -> Response:
    """The German error page for a refused link, with its status code.

    A genuine link bound to its request (``exc.target``) is told what is true of it: an
    earlier version decided on, the quorum met, the deadline passed with its outcome, the
    posts published with their links. Any other refused link learns no more than before.
    Reads the store: call it off the event loop.
    """
    if exc.target is not None and type(exc) in _STATE_TITLES:
        try:
            state = approval.link_state(context.read_engine, context.catalog, exc.target)
        except (ApprovalError, LookupError) as error:  # e.g. a campaign gone from the catalog
            logger.warning("approval link state unavailable: %s", error)
        else:
            return _state_page(context, exc, state)
    return _plain_refusal(context, exc)


def _plain_refusal(context: WebContext, exc: ApprovalLinkError) -> Response:
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
    if isinstance(exc, StepDone):
        return pages.error(409, "Ihre Stufe ist bereits freigegeben",
                           "Die Stufe, in der Sie angefragt sind, ist bereits freigegeben; "
                           "die Freigabe liegt jetzt bei der nächsten Stufe. Eine weitere "
                           "Entscheidung ist nicht mehr nötig.", "Bei Fragen: " + _ASK)
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


def _names(catalog: Any, person_ids: tuple[str, ...] | list[str]) -> str:
    return join_german([approval.display_name(catalog, p) for p in person_ids])


def _tally_german(catalog: Any, state: LinkState) -> str:
    """``4 von 8 Angefragten haben freigegeben; nötig sind 6.``"""
    gate = state.gate
    asked, approved, needed = len(gate.asked), len(gate.approved), gate.needed
    verb = "hat" if approved == 1 else "haben"
    passed = state.deadline_passed or gate.settled
    need = f"nötig {'waren' if passed else 'sind'} {needed}"
    if gate.mode == "all":
        need = f"nötig {'waren' if passed else 'sind'} alle"
    elif gate.mode == "one":
        need = f"eine Freigabe {'genügte' if passed else 'genügt'}"
    text = f"{approved} von {asked} Angefragten {verb} freigegeben; {need}."
    step = gate.current_step
    if step is not None and len(gate.steps) > 1:
        text = f"Stufe {step.number + 1} von {len(gate.steps)} ({step.name}): {text}"
    if state.joint and gate.approved:
        # Signatories only where the statement may go out with their names.
        signing = gate.outcome in (GateOutcome.APPROVED, GateOutcome.ESCALATED,
                                   GateOutcome.PENDING)
        text += (f" {'Unterzeichnet' if signing else 'Freigegeben'} {verb}: "
                 f"{_names(catalog, gate.approved)}.")
    return text


def _gate_german(catalog: Any, state: LinkState) -> list[str]:
    """What the gate came to (or stands at), in German sentences."""
    gate = state.gate
    deadline = local_when(gate.deadline)
    tally = _tally_german(catalog, state)
    outcome = gate.outcome
    if gate.decided_by_admin and outcome in (GateOutcome.APPROVED, GateOutcome.REJECTED,
                                             GateOutcome.CHANGES_REQUESTED):
        decided = {GateOutcome.APPROVED: "freigegeben", GateOutcome.REJECTED: "abgelehnt",
                   GateOutcome.CHANGES_REQUESTED: "zur Überarbeitung zurückgegeben"}[outcome]
        return [tally, f"{approval.display_name(catalog, gate.decided_by_admin)} (Amt für "
                       f"Kommunikation) hat die Beiträge {decided}."]
    if outcome == GateOutcome.APPROVED:
        if state.quorum_met and gate.mode == "quorum":
            return [f"Das Quorum ist erreicht: {tally}", "Die Beiträge sind freigegeben."]
        return [tally, "Die Beiträge sind freigegeben."
                + (" Alle Stufen haben freigegeben." if len(gate.steps) > 1 else "")]
    if outcome == GateOutcome.CANCELLED:
        return [f"Bis zur Frist am {deadline}: {tally}",
                "Die Veröffentlichung wurde deshalb abgesagt; es wird nichts veröffentlicht."]
    if outcome == GateOutcome.ESCALATED:
        return [f"Bis zur Frist am {deadline}: {tally}",
                "Das Amt für Kommunikation entscheidet nun, ob veröffentlicht wird."]
    if outcome == GateOutcome.REJECTED:
        return [tally, f"Die Beiträge wurden abgelehnt (von {_names(catalog, gate.rejected)})"
                       "; sie werden nicht veröffentlicht."]
    if outcome == GateOutcome.CHANGES_REQUESTED:
        who = _names(catalog, gate.changes_requested)
        return [tally, f"Es wurden Änderungen angefordert (von {who}); die Beiträge werden "
                       "überarbeitet und erneut zur Freigabe vorgelegt."]
    if state.collecting:
        return [f"Das Quorum ist bereits erreicht: {tally}",
                "Die Beiträge werden veröffentlicht; Freigaben werden noch bis zur Frist "
                f"am {deadline} angenommen."]
    return [f"Stand: {tally} Die Frist endet am {deadline}."]


def _late_signature_german(state: LinkState) -> str | None:
    """For a joint statement: whether the holder's name will stand under it."""
    mine = state.current_request
    outcome = state.gate.outcome
    # A cancelled, rejected or sent-back statement is not published with anyone's name.
    if not state.joint or mine is None or outcome not in (
            GateOutcome.APPROVED, GateOutcome.ESCALATED, GateOutcome.PENDING):
        return None
    if mine.status == ApprovalStatus.APPROVED.value:
        return ("Wird die Erklärung veröffentlicht, steht Ihr Name unter den "
                "Unterzeichnenden.")
    if state.collecting and mine.status == ApprovalStatus.PENDING.value:
        return (f"Wenn Sie bis zur Frist am {local_when(state.gate.deadline)} freigeben, "
                "steht Ihr Name in der veröffentlichten Erklärung unter den Unterzeichnenden; "
                "an der Veröffentlichung selbst ändert Ihre Entscheidung nichts mehr.")
    if outcome == GateOutcome.ESCALATED:
        return ("Entscheidet das Amt für Kommunikation für die Veröffentlichung, steht Ihr "
                "Name nicht unter der Erklärung: eine spätere Unterschrift wird nicht mehr "
                "aufgenommen.")
    if state.gate.settled or state.deadline_passed:
        return ("Ihr Name steht nicht in der veröffentlichten Erklärung: die Freigabe ist "
                "abgeschlossen, eine spätere Unterschrift wird nicht mehr aufgenommen.")
    return None


def _channels_german(catalog: Any, state: LinkState) -> list[dict[str, Any]]:
    """The posts as published (with their links) or planned, once the gate approved."""
    if state.gate.outcome != GateOutcome.APPROVED and not state.published:
        return []
    rows = []
    for channel in state.channels:
        label = approval.channel_label(catalog, channel.channel)
        if channel.status == "published":
            when = local_when(channel.published_at) if channel.published_at else ""
            rows.append({"label": label, "url": channel.url,
                         "text": f"veröffentlicht{' am ' + when if when else ''}"})
        elif channel.status == "awaiting_manual":
            rows.append({"label": label, "url": None,
                         "text": "wird von Hand veröffentlicht (Amt für Kommunikation)"})
        elif channel.status in ("skipped", "failed", "unknown"):
            rows.append({"label": label, "url": None,
                         "text": "nicht veröffentlicht; das Amt für Kommunikation ist "
                                 "informiert"})
        else:
            rows.append({"label": label, "url": None,
                         "text": f"geplant für {local_when(channel.publish_at)}"})
    return rows


def _state_page(context: WebContext, exc: ApprovalLinkError, state: LinkState) -> Response:
    catalog = context.catalog
    request = state.request
    title = _STATE_TITLES[type(exc)]
    said: list[str] = []
    todo = ""
    if state.superseded and request.status in _DECIDED_GERMAN:
        title = _DECIDED_TITLE[request.status]
        when = f" am {local_when(request.decided_at)}" if request.decided_at else ""
        said.append(f"Sie haben{when} eine frühere Fassung dieser Beiträge "
                    f"{_DECIDED_GERMAN[request.status]}. Danach wurden die Beiträge geändert. "
                    "Ihre Entscheidung gilt nur für die frühere Fassung; für die geänderte "
                    "zählt sie nicht.")
    elif state.superseded or isinstance(exc, ContentChanged):
        said.append("Seit dieser Link verschickt wurde, haben sich Text oder Bilder geändert. "
                    "Dieser Link gilt nur für die alte Fassung.")
    elif request.status in _DECIDED_GERMAN:
        when = f" am {local_when(request.decided_at)}" if request.decided_at else ""
        said.append(f"Sie haben bereits{when} {_DECIDED_GERMAN[request.status]}. Jeder Link "
                    "kann nur einmal verwendet werden.")
        todo = "Wenn Sie Ihre Entscheidung ändern möchten: " + _ASK
    elif request.status == ApprovalStatus.EXPIRED.value or state.deadline_passed:
        said.append(f"Die Frist für diese Freigabe ist am {local_when(state.gate.deadline)} "
                    "abgelaufen; Sie haben bis dahin nicht geantwortet.")
    elif isinstance(exc, StepDone) and state.step is not None:
        now_at = state.gate.current_step
        said.append(f"Ihre Stufe ({state.step.label}) ist bereits freigegeben; Ihre "
                    "Entscheidung wird dafür nicht mehr gebraucht."
                    + (f" Die Freigabe liegt jetzt bei {now_at.label}." if now_at else ""))
    elif isinstance(exc, LinkExpired):
        # The link's own time is up, the request still open: a newer mail has a fresh one.
        title = "Dieser Link ist abgelaufen"
        said.append("Dieser Link ist abgelaufen. Die Freigabe läuft aber noch bis "
                    f"{local_when(state.gate.deadline)}.")
        todo = "Bitte verwenden Sie den Link aus der neuesten E-Mail (auch einer Erinnerung). "
    mine = state.current_request
    if isinstance(exc, ContentChanged) and not state.superseded:
        # Changed, but the gate has not asked about the new version yet.
        said.append("Sie erhalten in Kürze eine neue E-Mail mit einem neuen Link zur "
                    "geänderten Fassung.")
        todo = "Bitte verwenden Sie den Link aus der neuesten E-Mail. " + _ASK
    elif state.superseded:
        if mine is None:
            said.append("Zur geänderten Fassung sind Sie nicht angefragt; Ihre Entscheidung "
                        "wird dafür nicht gebraucht.")
        elif mine.status == ApprovalStatus.PENDING.value and not state.deadline_passed \
                and not state.gate.settled:
            sent = (f"am {local_when(mine.notified_at)} eine neue E-Mail mit einem neuen Link "
                    "geschickt" if mine.notified_at else "in Kürze eine neue E-Mail mit einem "
                    "neuen Link")
            said.append(f"Zur geänderten Fassung haben wir Ihnen {sent}."
                        if mine.notified_at else f"Zur geänderten Fassung erhalten Sie {sent}.")
            todo = ("Bitte prüfen Sie die geänderte Fassung über den neuen Link und entscheiden "
                    f"Sie bis {local_when(state.gate.deadline)} erneut.")
        elif mine.status in _DECIDED_GERMAN and mine.id != request.id:
            when = f" am {local_when(mine.decided_at)}" if mine.decided_at else ""
            said.append(f"Zur geänderten Fassung haben Sie{when} bereits "
                        f"{_DECIDED_GERMAN[mine.status]}.")
        elif mine.status in (ApprovalStatus.PENDING.value, ApprovalStatus.EXPIRED.value):
            said.append("Zur geänderten Fassung haben Sie bis zur Frist nicht geantwortet.")
    said += _gate_german(catalog, state)
    late = _late_signature_german(state)
    if late:
        said.append(late)
    channels = _channels_german(catalog, state)
    published = [c for c in channels if c["url"]]
    if not todo:
        todo = ("Eine weitere Entscheidung ist nicht nötig. Bei Fragen: " + _ASK
                if state.gate.settled or state.deadline_passed else _ASK)
    status = exc.status_code
    return context.pages.render("approval_state.html", {
        "title": title, "said": said, "channels": channels, "published": bool(published),
        "todo": todo, "campaign": approval.campaign_of(catalog, state.gate.campaign_id).title,
        "chain": approval.chain_view(catalog, state.gate, request.person_id),
    }, status=status)


def _check(context: WebContext, token: str, *, require_pending: bool = True
           ) -> LinkTarget | Response:
    """The link's request, or the refusal page. Reads only (a POST's decision checks the
    link again in its own transaction: :func:`newsroom.approval.decide`)."""
    if not isinstance(token, str) or len(token) > 4096:
        return refusal(context, LinkForged("too long"))
    try:
        return approval.check_link(context.read_engine, context.signer, token,
                                   require_pending=require_pending)
    except ApprovalLinkError as exc:
        return refusal(context, exc)


def _diff_runs(runs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The diff as the template shows it: a removed or added run that is only white space
    (a line break, a space) gets a visible mark, else it could not be seen."""
    return [{"kind": kind, "text": text,
             "mark": "↵" if "\n" in text else "␣"}
            if kind != "same" and not text.strip() else {"kind": kind, "text": text, "mark": ""}
            for kind, text in runs]


def _record_viewed(context: WebContext, target: LinkTarget, once_key: str) -> None:
    """``approval.viewed`` (the store's unique ``once_key`` decides: two web processes on
    one database record it once too). Committed before the page is answered."""
    occurrence, request = target.occurrence, target.request
    with store.session_scope(context.engine) as session:
        store.record_audit_once(
            session, once_key=once_key,
            campaign_id=occurrence.campaign_id, occurrence_date=occurrence.occurrence_date,
            actor=request.person_id, action="approval.viewed",
            content_hash=request.bundle_hash,
            detail={"request_id": request.id, "token_nonce": target.claims.nonce})
    page_caches(context).viewed.put(once_key, True)


def _page(context: WebContext, token: str) -> tuple[LinkTarget, dict[str, Any]] | Response:
    """The link checked and the page's view: in one trip off the event loop, and read in
    one transaction (what the page says of the request is what its check found)."""
    if not isinstance(token, str) or len(token) > 4096:
        return refusal(context, LinkForged("too long"))
    with store.session_scope(context.read_engine) as session:
        try:
            target = approval.check_link(context.read_engine, context.signer, token,
                                         session=session)
        except ApprovalLinkError as exc:
            refused = exc
        else:
            return target, _view(context, target, token, session)
    return refusal(context, refused)


def _posts_shown(catalog: Any, token: str, posts: list[RenderedPost],
                 previous: PreviousVersion | None) -> list[dict[str, Any]]:
    """The posts as the page shows them (with what changed since ``previous``)."""
    shown: list[dict[str, Any]] = []
    for post in posts:
        media = []
        for index, item in enumerate(post.media):
            src = (f"/freigabe/{token}/bild/{quote(post.channel)}/{index}"
                   if media_path(catalog, item.source) else None)
            media.append({"src": src, "alt": item.alt})
        diff = None
        if previous is not None:
            old = previous.posts.get(post.channel)
            if old is None:
                diff = _diff_runs([("added", post.text)])
            elif old.text != post.text:
                diff = _diff_runs(approval.word_diff(old.text, post.text))
            else:
                diff = []
        shown.append({
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
    return shown


def _view(context: WebContext, target: LinkTarget, token: str, session: Any) -> dict[str, Any]:
    """Everything the page shows; reads only (and writes ``approval.viewed``).

    Read in ``session``, the transaction ``target`` was checked in: the occurrence's
    requests are read once for the people, the gate's tally and whether an earlier
    version exists; the posts come by their bundle hash from the cache when they were
    read before."""
    catalog = context.catalog
    caches = page_caches(context)
    request = target.request
    occurrence_id = store.stored_id(target.occurrence)
    now = datetime.now(UTC)
    # Once per link and minute: a link scanner's (or a reloading browser's) GETs do not
    # grow the audit trail without bound. Read first, so the burst's other GETs of the
    # minute take no write lock; written (and committed) before the page is answered.
    once_key = viewed_key(target.claims.nonce, now)
    occurrence = target.occurrence
    every = store.approval_requests(session, occurrence_id=occurrence_id)
    state = approval.read_link_state(session, catalog, target, now=now, requests=every,
                                     channels=False, checked_here=True)
    gate = occurrence.gate_bundle_hash
    # previous_version reads the requests about another bundle than the gate's.
    previous = (approval.previous_version(session, occurrence=occurrence,
                                          person_id=request.person_id)
                if gate is not None and any(r.bundle_hash != gate for r in every)
                else None)
    posts = current_posts(session, caches, occurrence)
    viewed = viewed_already(session, caches, once_key)
    if not viewed:
        _record_viewed(context, target, once_key)
    requests = [r for r in every
                if r.bundle_hash == request.bundle_hash and r.step == request.step
                and not r.person_id.startswith(approval.ADMIN_PREFIX)
                and r.status != ApprovalStatus.VOID.value]
    campaign = catalog.campaign(occurrence.campaign_id).campaign
    key = (token, occurrence.bundle_hash, previous.bundle_hash if previous else None)
    cached = caches.shown.get(key)
    if cached is not None and cached[0] is catalog:
        _, shown, posts_html = cached
    else:
        shown = _posts_shown(catalog, token, posts, previous)
        posts_html = context.pages.fragment("approval_posts.html", {"posts": shown})
        caches.shown.put(key, (catalog, shown, posts_html))
    removed = ([approval.channel_label(catalog, c)
                for c in previous.posts if c not in {p.channel for p in posts}]
               if previous else [])
    people = []
    for r in requests:
        answer = {"approved": "hat freigegeben", "rejected": "hat abgelehnt",
                 "changes_requested": "hat Änderungen angefordert",
                 "expired": "hat nicht rechtzeitig geantwortet"}.get(r.status, "noch offen")
        people.append({"name": approval.display_name(catalog, r.person_id),
                       "state": answer, "me": r.id == request.id})
    standing = _gate_german(catalog, state)
    late = _late_signature_german(state)
    return {
        "title": campaign.title,
        "standing": standing + ([late] if late else []),
        "quorum_met": state.quorum_met,
        "date": local_when(occurrence.first_publish_at),
        "requested_by": approval.requested_by(catalog, campaign),
        "salutation": approval.salutation(catalog, request.person_id),
        "deadline": local_when(request.deadline),
        "deadline_iso": request.deadline.isoformat(),
        "rule": approval.rule_german(
            campaign.approval.chain[min(request.step, len(campaign.approval.chain) - 1)],
            len(requests)),
        "step": (f"Stufe {state.step.number + 1} von {len(state.gate.steps)}: "
                 f"{state.step.name}" if state.step else None),
        "chain": approval.chain_view(catalog, state.gate, request.person_id),
        "joint": campaign.signatories_in_text,
        "posts": shown,
        "posts_html": posts_html,
        "people": people,
        "changed": previous is not None,
        "previous_by": [approval.display_name(catalog, p) for p in previous.decided_by]
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
    checked = await run_in_threadpool(_page, context, token)
    if isinstance(checked, Response):
        return checked
    target, view = checked
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
    def load() -> tuple[bytes, Path | None] | Response:
        """The link checked and the image read: one trip off the event loop, one read
        transaction (the posts by their bundle hash, as on the page)."""
        if len(token) > 4096:
            return refusal(context, LinkForged("too long"))
        refused: ApprovalLinkError | None = None
        posts: list[RenderedPost] = []
        with store.session_scope(context.read_engine) as session:
            try:
                target = approval.check_link(context.read_engine, context.signer, token,
                                             require_pending=False, session=session)
            except ApprovalLinkError as exc:
                refused = exc
            else:
                posts = current_posts(session, page_caches(context), target.occurrence)
        if refused is not None:
            return refusal(context, refused)
        post = next((p for p in posts if p.channel == channel), None)
        if post is None or not 0 <= index < len(post.media):
            return b"", None
        item = post.media[index]
        path = media_path(context.catalog, item.source, serving=True)
        try:
            data = path.read_bytes() if path is not None else b""
        except OSError:  # gone since it was looked at
            return b"", None
        if item.sha256 and hashlib.sha256(data).hexdigest() != item.sha256:
            return b"", None
        return data, path

    loaded = await run_in_threadpool(load)
    if isinstance(loaded, Response):
        return loaded
    data, path = loaded
    content_type = sniff_image_type(data) if data else None
    if path is None or content_type is None:
        return context.pages.error(404, "Bild nicht gefunden",
                                   "Dieses Bild gibt es nicht (mehr) in dieser Fassung.", _ASK)
    return Response(data, media_type=content_type, headers={
        "content-disposition": f"inline; filename*=UTF-8''{quote(path.name)}",
        "cache-control": "private, no-store",
    })


def _notify_next_step(context: WebContext, status: approval.GateStatus) -> None:
    """Mail the people of the step a decision opened (the chain's next step); the
    deadline sweeper mails whoever a failure here leaves out."""
    if context.notifier is None:
        return
    try:
        approval.notify_approvers(context.engine, context.catalog,
                                  occurrence_id=status.occurrence_id,
                                  notifier=context.notifier(), signer=context.signer,
                                  base_url=context.settings.web_base_url.rstrip("/"))
    except Exception as exc:  # noqa: BLE001 - the decision is stored; the sweeper retries
        logger.error("mailing the next approval step of occurrence %s failed: %s",
                     status.occurrence_id, type(exc).__name__)


async def _call_back(context: WebContext, status: approval.GateStatus) -> None:
    """``on_gate_settled`` for a settled or escalated gate, else ``on_gate_decided``."""
    if status.settled or status.outcome == GateOutcome.ESCALATED:
        name, callback = "on_gate_settled", context.on_gate_settled
    else:
        name, callback = "on_gate_decided", context.on_gate_decided
    if callback is None:
        return
    try:
        result = callback(status)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # the decision is stored; the deadline sweeper retries
        logger.error("%s failed for occurrence %s: %s", name, status.occurrence_id,
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
        return await run_in_threadpool(refusal, context, exc)
    if not status.settled and len(status.steps) > 1:
        await run_in_threadpool(_notify_next_step, context, status)
    await _call_back(context, status)
    campaign = context.catalog.campaign(status.campaign_id).campaign
    return pages.render("approval_done.html", {
        "title": campaign.title,
        "decision": _DECISIONS[decision],
        "comment": comment.strip(),
        "outcome": _OUTCOME_GERMAN[status.outcome],
        "joint": campaign.signatories_in_text and decision == "approve",
    })
