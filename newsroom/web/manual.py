"""``/manual/{token}``: the owner of a manual channel confirms a post made by hand.

The token is the signed link from the notification (purpose "manual-confirm", see
:mod:`newsroom.signing`); it names the publication, the post and its content hash.

- ``GET /manual/{token}`` shows the copy-ready text, the images with their alt text,
  channel and time, and the confirmation form. It never changes state (it only sets
  the CSRF cookie).
- ``POST /manual/{token}`` (form: ``csrf``, optional ``url``) marks the publication
  published and writes ``publication.confirmed`` to the audit trail. Once published,
  the link is spent: the database state refuses a second confirmation.
- ``GET /manual/{token}/bild/{n}`` serves the n-th image of the post (approved bytes
  only), so the page can show it under ``img-src 'self'``.

CSRF: a signed double-submit cookie. The form carries HMAC(cookie, link nonce); a POST
needs the cookie and the matching field.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsroom import store
from newsroom.catalog.models import ChannelAccount
from newsroom.channels.manual import NETWORK_NAMES
from newsroom.errors import StoreError
from newsroom.media import sniff_image_type
from newsroom.posts import RenderedPost
from newsroom.rendering.templates import german_date
from newsroom.signing import MANUAL_CONFIRM, BadSignature, Expired, TokenClaims, WrongPurpose
from newsroom.store import PostRecord, Publication, PublicationStatus
from newsroom.timeutil import BERLIN, format_local_german, german_clock
from newsroom.web.pages import WebContext, get_context

logger = logging.getLogger("newsroom.web.manual")

router = APIRouter(prefix="/manual")
Context = Annotated[WebContext, Depends(get_context)]

CSRF_COOKIE = "newsroom_csrf"
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_MAX_FORM_BYTES = 8192
_MAX_URL = 2000
_URL_ERROR = ("Bitte geben Sie eine vollständige Adresse an, die mit https:// beginnt, "
              "oder lassen Sie das Feld leer.")
_AGAIN = "Bitte öffnen Sie den Link aus Ihrer E-Mail erneut."
_ASK = ("Bei Fragen wenden Sie sich bitte an das Amt für Kommunikation; dort kann die "
        "Veröffentlichung auch direkt vermerkt werden.")


@dataclass
class _Target:
    """What a valid link points at."""

    claims: TokenClaims
    publication: Publication
    post: PostRecord
    rendered: RenderedPost


def _load(context: WebContext, token: str) -> _Target | Response:
    pages = context.pages
    try:
        claims = context.signer.verify(token, purpose=MANUAL_CONFIRM)
    except Expired:
        return pages.error(410, "Dieser Link ist abgelaufen",
                           "Der Bestätigungslink ist nicht mehr gültig.", _ASK)
    except WrongPurpose:
        return pages.error(400, "Dieser Link gehört nicht hierher",
                           "Der Link ist für eine andere Aktion ausgestellt worden.", _AGAIN)
    except BadSignature:
        return pages.error(400, "Dieser Link ist ungültig",
                           "Der Link ist unvollständig oder wurde verändert.",
                           _AGAIN + " Achten Sie darauf, ihn vollständig zu kopieren.")
    with store.session_scope(context.engine) as session:
        publication = session.get(Publication, claims.subject.get("publication"))
        post = session.get(PostRecord, publication.post_id) if publication else None
    if publication is None or post is None or post.id != claims.subject.get("post"):
        return pages.error(404, "Beitrag nicht gefunden",
                           "Zu diesem Link gibt es keinen Beitrag (mehr).", _ASK)
    if post.content_hash != claims.content_hash:
        return pages.error(410, "Der Beitrag wurde geändert",
                           "Der Text oder die Bilder dieses Beitrags haben sich geändert, "
                           "seit der Link verschickt wurde.", _ASK)
    return _Target(claims, publication, post, post.to_rendered())


def _not_open(context: WebContext, target: _Target) -> Response | None:
    """The error page when the publication no longer waits for a person; else None."""
    publication = target.publication
    if publication.status == PublicationStatus.AWAITING_MANUAL:
        return None
    if publication.status == PublicationStatus.PUBLISHED:
        when = ""
        if publication.published_at is not None:
            local = publication.published_at.astimezone(BERLIN)
            when = f" am {german_date(local)} um {german_clock(local)}"
        return context.pages.error(
            410, "Bereits bestätigt",
            f"Dieser Beitrag wurde{when} bereits als veröffentlicht vermerkt. Der Link kann "
            "nur einmal verwendet werden.", "Es ist nichts weiter zu tun.")
    return context.pages.error(410, "Nicht mehr offen",
                               "Dieser Beitrag wartet nicht mehr auf eine Veröffentlichung "
                               "von Hand.", _ASK)


def _account(context: WebContext, channel: str) -> ChannelAccount | None:
    return context.catalog.accounts.get(channel)


def _media_path(context: WebContext, source: str) -> Path | None:
    """The file of a catalog image, only if it lies inside the catalog folder."""
    if urlsplit(source).scheme:
        return None
    root = context.catalog.root.resolve()
    path = (root / source).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _page(context: WebContext, target: _Target, token: str, csrf: str, *,
          url_value: str = "", url_error: str = "", status: int = 200) -> Response:
    post = target.rendered
    account = _account(context, post.channel)
    display = account.display_name if account else post.channel
    network = account.network if account and account.network else "manuell"
    local = post.publish_at.astimezone(BERLIN)
    media: list[dict[str, str | None]] = []
    for index, item in enumerate(post.media):
        if _media_path(context, item.source) is not None:
            src = f"/manual/{token}/bild/{index}"
            media.append({"src": src, "download": f"{src}?download=1", "alt": item.alt})
        elif urlsplit(item.source).scheme in ("http", "https"):
            media.append({"src": None, "download": item.source, "alt": item.alt})
        else:
            media.append({"src": None, "download": None, "alt": item.alt})
    link = post.link if post.link and urlsplit(post.link).scheme in ("http", "https") else None
    return context.pages.render("manual.html", {
        "title": post.title or post.campaign_id,
        "channel_name": display,
        "network": NETWORK_NAMES.get(network, network.capitalize()),
        "when": format_local_german(local),
        "publish_at_iso": local.isoformat(),
        "text": post.text,
        "rows": min(20, max(4, post.text.count("\n") + 2 + len(post.text) // 40)),
        "link": link,
        "media": media,
        "action": f"/manual/{token}",
        "csrf": csrf,
        "url_value": url_value,
        "url_error": url_error,
    }, status=status)


def _csrf_cookie(request: Request) -> tuple[str, bool]:
    """The browser's CSRF cookie, or a new one (second item: whether it must be set)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    if _COOKIE_VALUE.match(value):
        return value, False
    return secrets.token_urlsafe(32), True


def _set_cookie(request: Request, response: Response, value: str) -> None:
    response.set_cookie(CSRF_COOKIE, value, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/manual")


@router.get("/{token}")
async def show(token: str, request: Request,
               context: Context) -> Response:
    target = await run_in_threadpool(_load, context, token)
    if isinstance(target, Response):
        return target
    if (closed := _not_open(context, target)) is not None:
        return closed
    cookie, new = _csrf_cookie(request)
    response = _page(context, target, token,
                     context.signer.csrf_value(cookie, target.claims.nonce))
    if new:
        _set_cookie(request, response, cookie)
    return response


@router.get("/{token}/bild/{index}")
async def image(token: str, index: int, request: Request,
                context: Context) -> Response:
    target = await run_in_threadpool(_load, context, token)
    if isinstance(target, Response):
        return target
    media = target.rendered.media
    path = _media_path(context, media[index].source) if 0 <= index < len(media) else None
    data = await run_in_threadpool(path.read_bytes) if path is not None else b""
    item = media[index] if path is not None else None
    content_type = sniff_image_type(data) if data else None
    if path is None or item is None or content_type is None or (
            item.sha256 and hashlib.sha256(data).hexdigest() != item.sha256):
        return context.pages.error(404, "Bild nicht gefunden",
                                   "Dieses Bild gibt es nicht (mehr) in der freigegebenen "
                                   "Fassung.", _ASK)
    disposition = "attachment" if request.query_params.get("download") else "inline"
    return Response(data, media_type=content_type, headers={
        "content-disposition": f"{disposition}; filename*=UTF-8''{quote(path.name)}",
        "cache-control": "private, no-store",
    })


def _valid_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # "http://[" and other broken hosts
        return False
    return (len(value) <= _MAX_URL and parts.scheme in ("http", "https")
            and bool(hostname) and value.isprintable() and not any(c.isspace() for c in value))


def _confirm(context: WebContext, target: _Target, remote_url: str | None) -> bool:
    """Mark the publication published; False if it was not awaiting confirmation."""
    publication_id = store.stored_id(target.publication)
    with store.session_scope(context.engine) as session:
        current = session.get(Publication, publication_id, with_for_update=True,
                              populate_existing=True)
        if current is None or current.status != PublicationStatus.AWAITING_MANUAL:
            return False
        try:
            store.mark_published(session, publication_id=publication_id, remote_id=None,
                                 remote_url=remote_url)
        except StoreError:
            session.rollback()
            return False
        store.record_audit(
            session, campaign_id=target.rendered.campaign_id,
            occurrence_date=target.rendered.occurrence, actor=target.claims.person or "owner",
            action="publication.confirmed", channel=target.post.channel,
            content_hash=target.post.content_hash,
            detail={"publication_id": publication_id, "post_id": target.post.id,
                    "remote_url": remote_url, "via": "link",
                    "token_nonce": target.claims.nonce},
        )
    return True


@router.post("/{token}")
async def confirm(token: str, request: Request,
                  context: Context) -> Response:
    pages = context.pages
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if content_type != "application/x-www-form-urlencoded" or len(body) > _MAX_FORM_BYTES:
        return pages.error(400, "Formular nicht lesbar",
                           "Die Bestätigung kam nicht als Formular dieser Seite an.", _AGAIN)
    form = {key: values[-1] for key, values in parse_qs(
        body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10).items()}
    target = await run_in_threadpool(_load, context, token)
    if isinstance(target, Response):
        return target
    cookie = request.cookies.get(CSRF_COOKIE)
    if not context.signer.csrf_ok(cookie, target.claims.nonce, form.get("csrf")):
        return pages.error(400, "Formular abgelaufen",
                           "Das Formular konnte nicht als Ihres erkannt werden (etwa weil "
                           "Cookies blockiert sind oder es aus einem anderen Fenster kam).",
                           _AGAIN + " Senden Sie das Formular dann noch einmal ab.")
    if (closed := _not_open(context, target)) is not None:
        return closed
    remote_url = form.get("url", "").strip()
    if remote_url and not _valid_url(remote_url):
        return _page(context, target, token, form.get("csrf", ""),
                     url_value=remote_url[:_MAX_URL], url_error=_URL_ERROR, status=400)
    if not await run_in_threadpool(_confirm, context, target, remote_url or None):
        refreshed = await run_in_threadpool(_load, context, token)
        if isinstance(refreshed, Response):
            return refreshed
        return _not_open(context, refreshed) or pages.error(
            409, "Nicht bestätigt", "Die Bestätigung konnte nicht gespeichert werden.", _AGAIN)
    post = target.rendered
    account = _account(context, post.channel)
    return pages.render("manual_done.html", {
        "title": post.title or post.campaign_id,
        "channel_name": account.display_name if account else post.channel,
        "remote_url": remote_url or None,
    })
