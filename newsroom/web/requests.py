"""``/anfrage/{token}``: a Dezernat or an Amt asks the communications office for posts.

The token is the invitation link of one Dezernat or Amt (purpose "request-invite", see
:func:`newsroom.requests.invite_link`); there is no public form.

- ``GET /anfrage/{token}`` shows the empty form (German, labelled, usable by keyboard and on
  a phone). It changes no state; it only sets the CSRF cookie.
- ``POST /anfrage/{token}`` (multipart: the fields, up to three images each with its alt
  text, ``csrf``) checks everything; problems bring the form back with German messages
  and the values entered. A complete request is stored with its images in one step, then
  the app's ``on_request_submitted`` callback starts its Prefect run (errors are logged:
  the request is stored either way, and ``newsroom requests sweep`` starts it later).
- ``GET|POST /anfrage/antwort/{token}``: the requester answers a question the office asked
  back (the link from the e-mail), may change the request, and sends it again.

The body is read up to :data:`MAX_BODY` (the guard in front, :mod:`newsroom.web.guard`,
counts it too) into a temporary file that stays in memory only up to 1 MiB, and parsed
with the standard library's MIME parser. A revoked invitation
(:mod:`newsroom.invitations`) shows that it was withdrawn; its POST stores nothing.
"""

from __future__ import annotations

import email.policy
import email.utils
import inspect
import logging
import re
import secrets
import tempfile
from email.message import EmailMessage
from email.parser import BytesFeedParser
from typing import IO, Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsroom import invitations, store
from newsroom import requests as domain
from newsroom.approval import channel_label
from newsroom.errors import NewsroomError
from newsroom.requests import ImageUpload, InvalidRequest, InviteRefused, RequestForm
from newsroom.web.pages import WebContext, get_context

logger = logging.getLogger("newsroom.web.requests")

router = APIRouter(prefix="/anfrage")
Context = Annotated[WebContext, Depends(get_context)]

CSRF_COOKIE = "newsroom_csrf_anfrage"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
# Three images at the limit, one a little over it (to say so on the form), and the text.
MAX_BODY = (domain.MAX_IMAGES + 1) * domain.MAX_IMAGE_BYTES + 1024 * 1024
_MAX_PARTS = 40
_SPOOL_IN_MEMORY = 1024 * 1024  # a posted form larger than this waits on disk
_ASK = "Bitte wenden Sie sich an das Amt für Kommunikation."
_FIELDS = ("title", "topic", "date_from", "date_to", "time", "text", "hashtags", "links",
           "notes", "contact_name", "contact_email")


# The summary of problems lists them in the order of the form.
_ORDER = {name: n for n, name in enumerate((
    "answer", "title", "topic", "date_from", "date_to", "time", "channels", "text", "hashtags",
    "links", *(f"{kind}_{k}" for k in range(1, domain.MAX_IMAGES + 1)
               for kind in ("bild", "alt")), "contact_name", "contact_email"))}


class FormUnreadable(NewsroomError, ValueError):
    pass


def _refusal(context: WebContext, exc: InviteRefused) -> Response:
    pages = context.pages
    if exc.reason == "revoked":
        return pages.error(410, "Dieser Einladungslink wurde zurückgezogen",
                           "Das Amt für Kommunikation hat diesen Link zum Anfrageformular "
                           "zurückgezogen; er gilt nicht mehr. Über ihn wird nichts "
                           "angenommen.",
                           "Bitte fordern Sie beim Amt für Kommunikation einen neuen Link an.")
    if exc.reason == "expired":
        return pages.error(410, "Dieser Einladungslink ist abgelaufen",
                           "Der Link zum Anfrageformular gilt nicht mehr.",
                           "Bitte fordern Sie beim Amt für Kommunikation einen neuen Link an.")
    if exc.reason == "closed":
        return pages.error(409, "Diese Rückfrage ist erledigt",
                           "Die Rückfrage wurde bereits beantwortet, oder über die Anfrage "
                           "wurde schon entschieden.", "Bei Fragen: " + _ASK)
    if exc.reason == "unknown":
        return pages.error(404, "Anfrage nicht möglich",
                           "Das Dezernat oder Amt dieses Links ist nicht (mehr) verzeichnet.",
                           _ASK)
    return pages.error(400, "Dieser Link ist ungültig",
                       "Der Link ist unvollständig, wurde verändert oder gehört zu einer "
                       "anderen Aktion.",
                       "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut und kopieren Sie ihn "
                       "vollständig. " + _ASK)


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    value = request.cookies.get(CSRF_COOKIE, "")
    if _COOKIE_VALUE.match(value):
        return value, False
    return secrets.token_urlsafe(32), True


def _with_cookie(request: Request, response: Response, cookie: str, new: bool) -> Response:
    if new:
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/anfrage")
    return response


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):  # from the parser: bytes kept as surrogates
        raw = raw.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "replace")


def parse_multipart(content_type: str, body: bytes | IO[bytes]
                    ) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
    """The fields and the files (name -> (filename, data)) of a multipart/form-data body
    (or of an url-encoded one, which has no files), given as bytes or a binary file."""
    if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
        data = body if isinstance(body, bytes) else body.read()
        parsed = parse_qs(data.decode("utf-8", "replace"), keep_blank_values=True,
                          max_num_fields=_MAX_PARTS)
        return parsed, {}
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in \
            content_type:
        raise FormUnreadable("not multipart/form-data")
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    # The HTTP policy makes EmailMessages; typeshed learns that only from the factory.
    parser = BytesFeedParser(EmailMessage, policy=email.policy.HTTP)
    parser.feed(header)
    if isinstance(body, bytes):
        parser.feed(body)
    else:
        for chunk in iter(lambda: body.read(_SPOOL_IN_MEMORY), b""):
            parser.feed(chunk)
    message = parser.close()
    if not message.is_multipart():
        raise FormUnreadable("no parts")
    fields: dict[str, list[str]] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for count, part in enumerate(message.iter_parts()):
        if count >= _MAX_PARTS:
            raise FormUnreadable("too many parts")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        name = _text(name)
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):  # None for a nested multipart part
            payload = b""
        filename = part.get_param("filename", header="content-disposition")
        if filename is not None:
            if isinstance(filename, tuple):  # RFC 2231 encoded
                filename = email.utils.collapse_rfc2231_value(filename)
            files[name] = (_text(str(filename)), payload)
        else:
            fields.setdefault(name, []).append(_text(payload))
    return fields, files


async def _read_form(request: Request
                     ) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]] | str:
    """The parsed form, or the German reason it cannot be read."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        return "too_large"
    # Not in memory: a slow or huge upload holds at most 1 MiB of it here.
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                return "too_large"
            spool.write(chunk)
        spool.seek(0)
        try:
            # Parsing megabytes of images takes a moment: not on the event loop.
            return await run_in_threadpool(parse_multipart,
                                           request.headers.get("content-type", ""), spool)
        except (FormUnreadable, ValueError, LookupError):
            return "unreadable"


def _form_error(context: WebContext, reason: str) -> Response:
    if reason == "too_large":
        return context.pages.error(
            413, "Die Anfrage ist zu groß",
            f"Zusammen dürfen die Bilder höchstens {domain.MAX_IMAGES} × "
            f"{domain.MAX_IMAGE_BYTES // 1024 // 1024} MB groß sein.",
            "Bitte gehen Sie zurück, verkleinern Sie die Bilder und senden Sie das Formular "
            "erneut.")
    return context.pages.error(400, "Formular nicht lesbar",
                               "Die Anfrage kam nicht als Formular dieser Seite an.",
                               "Bitte öffnen Sie den Link erneut und füllen Sie das Formular "
                               "dort aus.")


def _request_form(fields: dict[str, list[str]], files: dict[str, tuple[str, bytes]]
                  ) -> RequestForm:
    def one(name: str) -> str:
        return (fields.get(name) or [""])[-1]

    images = []
    for n in range(1, domain.MAX_IMAGES + 1):
        filename, data = files.get(f"bild_{n}", ("", b""))
        images.append(ImageUpload(n, filename, data, one(f"alt_{n}")))
    return RequestForm(**{name: one(name) for name in _FIELDS},
                       channels=tuple(fields.get("channels", [])), images=tuple(images))


def _values(form: RequestForm | None) -> dict[str, Any]:
    if form is None:
        return {name: "" for name in _FIELDS} | {
            "channels": [], "alts": [""] * domain.MAX_IMAGES}
    return {name: getattr(form, name) for name in _FIELDS} | {
        "channels": list(form.channels),
        "alts": [u.alt for u in form.images] + [""] * (domain.MAX_IMAGES - len(form.images))}


def _page(context: WebContext, *, action: str, requester: domain.Requester, csrf: str,
          form: RequestForm | None = None, error: InvalidRequest | None = None,
          answer: dict[str, Any] | None = None, status: int = 200,
          existing_images: int = 0) -> Response:
    catalog = context.catalog
    channels = [{"name": name, "label": channel_label(catalog, name)}
                for name in catalog.accounts]
    errors: dict[str, list[str]] = {}
    for problem in (error.problems if error else []):
        errors.setdefault(problem.field, []).append(problem.de)
    return context.pages.render("request_form.html", {
        "action": action, "csrf": csrf, "requester": requester, "values": _values(form),
        "channels": channels, "errors": errors,
        "summary": sorted(((p.field, p.de) for p in (error.problems if error else [])),
                          key=lambda item: _ORDER.get(item[0], len(_ORDER))),
        "max_images": domain.MAX_IMAGES - existing_images,
        "max_mb": domain.MAX_IMAGE_BYTES // 1024 // 1024,
        "answer": answer,
    }, status=status)


async def _started(request: Request, request_id: int) -> None:
    """Start the request's Prefect run through the app's callback; never fail the page."""
    callback = getattr(request.app.state, "on_request_submitted", None)
    if callback is None:
        return
    try:
        result = callback(request_id)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:  # the request is stored; the sweep starts the run later
        logger.error("starting the run of request %s failed: %s", request_id,
                     type(exc).__name__)


def _check_invite(context: WebContext, token: str):
    if not isinstance(token, str) or len(token) > 4096:
        raise InviteRefused("too long", reason="forged")
    return invitations.check_invite(context.engine, context.signer, context.catalog, token)


@router.get("/{token}")
async def show(token: str, request: Request, context: Context) -> Response:
    try:
        requester, nonce = await run_in_threadpool(_check_invite, context, token)
    except InviteRefused as exc:
        return _refusal(context, exc)
    cookie, new = _csrf_cookie(request)
    response = _page(context, action=f"/anfrage/{token}", requester=requester,
                     csrf=context.signer.csrf_value(cookie, nonce))
    return _with_cookie(request, response, cookie, new)


_CSRF_FAILED = ("Formular abgelaufen",
                "Das Formular konnte nicht als Ihres erkannt werden (etwa weil Cookies "
                "blockiert sind oder es aus einem anderen Fenster kam).",
                "Bitte öffnen Sie den Link erneut und senden Sie das Formular dann noch "
                "einmal ab.")


async def _checked_form(request: Request, context: WebContext, nonce: str) -> Any:
    """The posted form's (fields, files), or the page refusing it: unreadable, or the
    CSRF value does not belong to this link."""
    parsed = await _read_form(request)
    if isinstance(parsed, str):
        return _form_error(context, parsed)
    fields, files = parsed
    cookie = request.cookies.get(CSRF_COOKIE)
    if not context.signer.csrf_ok(cookie, nonce, (fields.get("csrf") or [""])[-1]):
        return context.pages.error(400, *_CSRF_FAILED)
    return fields, files


@router.post("/{token}")
async def submit(token: str, request: Request, context: Context) -> Response:
    try:
        requester, nonce = await run_in_threadpool(_check_invite, context, token)
    except InviteRefused as exc:
        return _refusal(context, exc)
    checked = await _checked_form(request, context, nonce)
    if isinstance(checked, Response):
        return checked
    fields, files = checked
    cookie = request.cookies.get(CSRF_COOKIE)
    form = _request_form(fields, files)
    try:
        draft = await run_in_threadpool(domain.check_request, form, context.catalog)
    except InvalidRequest as exc:
        return _page(context, action=f"/anfrage/{token}", requester=requester,
                     csrf=context.signer.csrf_value(cookie or "", nonce), form=form,
                     error=exc, status=422)
    request_id = await run_in_threadpool(
        domain.submit_request, context.engine, context.settings.data_dir, requester, draft,
        invite_nonce=nonce)
    await _started(request, request_id)
    return context.pages.render("request_done.html", {
        "request_id": request_id, "title": draft.title, "requester": requester,
        "again": f"/anfrage/{token}", "answered": False})


# --- answering a question asked back ------------------------------------------------------


def _check_answer(context: WebContext, token: str):
    if not isinstance(token, str) or len(token) > 4096:
        raise InviteRefused("too long", reason="forged")
    row, nonce = domain.check_answer_link(context.signer, context.engine, token)
    requester = domain.requester_for(context.catalog, row.requester_kind, row.requester_id)
    _, images = domain.load_request(context.engine, store.stored_id(row))
    return row, images, requester, nonce


def _form_of(row) -> RequestForm:
    return RequestForm(
        title=row.title, topic=row.topic, date_from=row.desired_from.isoformat(),
        date_to=row.desired_to.isoformat() if row.desired_to else "",
        time=row.desired_time or "", channels=tuple(row.channels), text=row.text,
        hashtags=" ".join(row.hashtags), links="\n".join(row.links), notes=row.notes,
        contact_name=row.contact_name, contact_email=row.contact_email)


def _answer_view(row, images, answer: str = "") -> dict[str, Any]:
    return {"request_id": row.id, "question": row.question or "", "text": answer,
            "images": [{"position": i.position, "filename": i.filename, "alt": i.alt}
                       for i in images]}


@router.get("/antwort/{token}")
async def show_answer(token: str, request: Request, context: Context) -> Response:
    try:
        row, images, requester, nonce = await run_in_threadpool(_check_answer, context, token)
    except InviteRefused as exc:
        return _refusal(context, exc)
    cookie, new = _csrf_cookie(request)
    response = _page(context, action=f"/anfrage/antwort/{token}", requester=requester,
                     csrf=context.signer.csrf_value(cookie, nonce), form=_form_of(row),
                     answer=_answer_view(row, images), existing_images=len(images))
    return _with_cookie(request, response, cookie, new)


@router.post("/antwort/{token}")
async def submit_answer(token: str, request: Request, context: Context) -> Response:
    try:
        row, images, requester, nonce = await run_in_threadpool(_check_answer, context, token)
    except InviteRefused as exc:
        return _refusal(context, exc)
    checked = await _checked_form(request, context, nonce)
    if isinstance(checked, Response):
        return checked
    fields, files = checked
    cookie = request.cookies.get(CSRF_COOKIE)
    form = _request_form(fields, files)
    answer = (fields.get("answer") or [""])[-1]
    missing = [] if answer.strip() else [domain.Problem(
        "answer", "Bitte beantworten Sie die Rückfrage.", "the answer is missing")]
    try:
        try:
            draft = await run_in_threadpool(lambda: domain.check_request(
                form, context.catalog, existing_images=len(images)))
        except InvalidRequest as exc:
            raise InvalidRequest(missing + exc.problems) from None
        if missing:
            raise InvalidRequest(missing)
        await run_in_threadpool(lambda: domain.resubmit_request(
            context.engine, context.settings.data_dir, row.id, draft, answer=answer))
    except InvalidRequest as exc:
        return _page(context, action=f"/anfrage/antwort/{token}", requester=requester,
                     csrf=context.signer.csrf_value(cookie or "", nonce), form=form,
                     error=exc, answer=_answer_view(row, images, answer), status=422,
                     existing_images=len(images))
    except domain.WrongState:
        return _refusal(context, InviteRefused("answered", reason="closed"))
    await _started(request, row.id)
    return context.pages.render("request_done.html", {
        "request_id": row.id, "title": draft.title, "requester": requester, "again": None,
        "answered": True})
