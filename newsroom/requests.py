"""Requests from Dezernate and Ämter to the communications office.

A Dezernat (by its portfolio) or an Amt proposes posts through a signed invitation link
(:func:`invite_link`): topic, desired date or window, channels, draft text, images with
alt text, links. The office then decides::

    submitted ──► accepted      a campaign draft file is written into the catalog
        │    └──► declined      with a reason
        └──► asked_back ──► resubmitted ──► (accepted | asked_back | declined)

Everything here is the domain core (no Prefect): checking a form (:func:`check_request`,
German messages for the form, English for the command line), storing a request and its
images in one step (:func:`submit_request`, :func:`resubmit_request`), the decisions
(:func:`accept_request`, :func:`ask_back`, :func:`decline_request`), turning an accepted
request into a campaign file that ``newsroom validate`` accepts (:func:`campaign_draft`),
and telling people (:func:`notify_step`). Every step is written to the audit trail under
``request-<id>``.

Errors::

    RequestError
    ├── InvalidRequest     the form's content is not usable (``problems``: field, de, en)
    ├── RequestNotFound    no request with that id
    ├── WrongState         the step does not fit the request's state (declined twice …)
    ├── InviteRefused      the invitation or answer link is forged, expired or unknown
    └── DraftInvalid       the campaign draft did not validate (``issues``)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import Engine

from newsroom import store
from newsroom.catalog.catalog import IMAGES_DIR, Catalog
from newsroom.catalog.validation import load_catalog
from newsroom.channels import measure_text, requires_image
from newsroom.channels.base import sniff_image_type
from newsroom.errors import CatalogIssue, NewsroomError
from newsroom.rendering.hashtags import check_hashtag, hashtags_in
from newsroom.signing import Expired, InvalidToken, Signer
from newsroom.store import requests_crud as crud
from newsroom.store.models import (
    CampaignRequest,
    RequesterKind,
    RequestImage,
    RequestStatus,
    utcnow,
)
from newsroom.timeutil import BERLIN, format_local

__all__ = [
    "ALLOWED_IMAGE_TYPES",
    "ANSWER",
    "INVITE",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGES",
    "AcceptedRequest",
    "DraftInvalid",
    "ImageUpload",
    "InvalidRequest",
    "InviteRefused",
    "Problem",
    "RequestDraft",
    "RequestError",
    "RequestForm",
    "RequestNotFound",
    "Requester",
    "WrongState",
    "accept_request",
    "answer_link",
    "authorize_decision",
    "ask_back",
    "campaign_draft",
    "check_answer_link",
    "check_invite",
    "check_request",
    "decline_request",
    "invite_link",
    "parse_publish_at",
    "notify_step",
    "pending_step",
    "requester_for",
    "resubmit_request",
    "submit_request",
]

INVITE = "request-invite"  # signing purpose of the invitation links
ANSWER = "request-answer"  # signing purpose of the links to answer a question
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 3
MAX_TEXT = 5000
MAX_LINKS = 5
# The campaign variable an accepted request's links 2–5 are kept in (content.variables).
EXTRA_LINKS = "weitere_links"
ALLOWED_IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
DEFAULT_TIME = time(10, 0)
DEFAULT_DEADLINE = timedelta(hours=48)
UPLOADS_DIR = "requests"  # under the data dir
CATALOG_IMAGES_SUBDIR = "anfragen"  # under the catalog's images/
DRAFTS_DIR = ".anfragen-entwuerfe"  # hidden: never read as a campaign
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DECIDABLE = {RequestStatus.SUBMITTED.value, RequestStatus.RESUBMITTED.value}


# --- errors ------------------------------------------------------------------------------


class RequestError(NewsroomError):
    """A request to the communications office cannot take this step."""


@dataclass(frozen=True)
class Problem:
    """One problem with a form field: German for the form, English for the CLI."""

    field: str
    de: str
    en: str


class InvalidRequest(RequestError):
    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.field}: {p.en}" for p in self.problems))

    def for_field(self, name: str) -> list[str]:
        return [p.de for p in self.problems if p.field == name]


class RequestNotFound(RequestError):
    pass


class WrongState(RequestError):
    pass


class InviteRefused(RequestError):
    """``reason`` is ``forged``, ``expired``, ``unknown`` (requester gone) or ``closed``
    (an answer link whose question was answered or decided already)."""

    def __init__(self, message: str, *, reason: str):
        self.reason = reason
        super().__init__(message)


class DraftInvalid(RequestError):
    def __init__(self, message: str, issues: Sequence[CatalogIssue] = ()):
        self.issues = list(issues)
        detail = "\n".join(issue.format() for issue in self.issues)
        super().__init__(message + (f"\n{detail}" if detail else ""))


# --- who asks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Requester:
    """A Dezernat (``kind`` portfolio) or an Amt (``kind`` office), as the directory has it."""

    kind: RequesterKind
    id: str
    name: str  # "Sportdezernat", "Wahlamt"
    notify_tag: str  # who is told: the Dezernent, or the Amt itself
    notify_name: str  # "Oberbürgermeister Hanno Benz", "Wahlamt"
    approver: dict[str, str] | None  # the campaign's approver; None: the office decides

    @property
    def ref(self) -> dict[str, str]:
        return {self.kind.value: self.id}


def requester_for(catalog: Catalog, kind: str, requester_id: str) -> Requester:
    """The requester from the directory; LookupError when it is not (or no longer) there."""
    index = catalog.index
    if kind == RequesterKind.PORTFOLIO.value:
        portfolio = index.portfolios.get(requester_id)
        if portfolio is None:
            raise LookupError(f"no portfolio {requester_id!r} in registry/people.yaml; known: "
                              f"{', '.join(sorted(index.portfolios))}")
        person = index.responsible_for(requester_id)
        return Requester(RequesterKind.PORTFOLIO, requester_id, portfolio.name, person.id,
                         person.display, {"portfolio": requester_id})
    if kind == RequesterKind.OFFICE.value:
        office = index.offices.get(requester_id)
        if office is None:
            raise LookupError(f"no office {requester_id!r} in registry/people.yaml; known: "
                              f"{', '.join(sorted(index.offices))}")
        # The directory does not (yet) say which Dezernat an Amt belongs to; when it does
        # (an office's `portfolio`), its Dezernent approves, else the office names one.
        linked = getattr(office, "portfolio", None)
        return Requester(RequesterKind.OFFICE, requester_id, office.name, office.id,
                         office.name, {"portfolio": linked} if linked else None)
    raise LookupError(f"requester kind must be portfolio or office, not {kind!r}")


# --- links -------------------------------------------------------------------------------


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


# --- the form ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageUpload:
    """One image slot of the form (``position`` 1..MAX_IMAGES); either part may be empty."""

    position: int
    filename: str
    data: bytes
    alt: str

    @property
    def field(self) -> str:
        return f"bild_{self.position}"


@dataclass(frozen=True)
class RequestForm:
    """What the form (or a test) sends, as text."""

    title: str = ""
    topic: str = ""
    date_from: str = ""
    date_to: str = ""
    time: str = ""
    channels: tuple[str, ...] = ()
    text: str = ""
    hashtags: str = ""
    links: str = ""
    notes: str = ""
    contact_name: str = ""
    contact_email: str = ""
    images: tuple[ImageUpload, ...] = ()


@dataclass(frozen=True)
class CheckedImage:
    position: int
    filename: str
    data: bytes
    alt: str
    content_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class RequestDraft:
    """A checked form: every field in its type."""

    title: str
    topic: str
    desired_from: date
    desired_to: date | None
    desired_time: str | None
    channels: tuple[str, ...]
    text: str
    hashtags: tuple[str, ...]
    links: tuple[str, ...]
    notes: str
    contact_name: str
    contact_email: str
    images: tuple[CheckedImage, ...] = ()


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".replace(".", ",")


def _clean(value: str, limit: int) -> str:
    return unicodedata.normalize("NFC", (value or "").replace("\r\n", "\n")).strip()[:limit + 1]


def _split_hashtags(value: str) -> list[str]:
    return [t.lstrip("#") for t in re.split(r"[\s,;]+", value or "") if t.strip("#")]


def _compose(text: str, link: str | None, hashtags: Sequence[str]) -> str:
    lines = [text.strip()]
    if link:
        lines.append(link)
    if hashtags:
        lines.append(" ".join(f"#{t}" for t in hashtags))
    return "\n".join(lines)


def check_request(form: RequestForm, catalog: Catalog, *, today: date | None = None,
                  existing_images: int = 0) -> RequestDraft:
    """The checked request, or InvalidRequest listing every problem at once."""
    today = today or datetime.now(BERLIN).date()
    problems: list[Problem] = []

    def need(name: str, value: str, de: str, en: str, limit: int) -> str:
        text = " ".join(_clean(value, limit).split())  # one line: names, titles, addresses
        if not text:
            problems.append(Problem(name, f"Bitte geben Sie {de} an.", f"{en} is missing"))
        elif len(text) > limit:
            problems.append(Problem(name, f"Bitte kürzen Sie {de} auf höchstens {limit} "
                                    "Zeichen.", f"{en} is longer than {limit} characters"))
        return text[:limit]

    title = need("title", form.title, "einen Titel", "the title", 120)
    topic = need("topic", form.topic, "das Thema", "the topic", 80)
    contact_name = need("contact_name", form.contact_name, "eine Ansprechperson",
                        "the contact person", 120)
    contact_email = need("contact_email", form.contact_email,
                         "eine E-Mail-Adresse für Rückfragen", "the contact e-mail", 200)
    if contact_email and not _EMAIL.match(contact_email):
        problems.append(Problem("contact_email", "Die E-Mail-Adresse ist nicht vollständig "
                                "(Beispiel: name@darmstadt.de).",
                                f"{contact_email!r} is not an e-mail address"))
    text = need("text", form.text, "einen Textentwurf", "the draft text", MAX_TEXT)
    notes = _clean(form.notes, 2000)[:2000]

    desired_from: date | None = None
    desired_to: date | None = None
    if not form.date_from.strip():
        problems.append(Problem("date_from", "Bitte geben Sie das gewünschte Datum an.",
                                "the desired date is missing"))
    else:
        try:
            desired_from = date.fromisoformat(form.date_from.strip())
        except ValueError:
            problems.append(Problem("date_from", "Bitte geben Sie das Datum als TT.MM.JJJJ an.",
                                    f"{form.date_from!r} is not a date (YYYY-MM-DD)"))
        else:
            if desired_from < today:
                problems.append(Problem("date_from", "Das gewünschte Datum liegt in der "
                                        "Vergangenheit.", f"{desired_from} is in the past"))
    if form.date_to.strip():
        try:
            desired_to = date.fromisoformat(form.date_to.strip())
        except ValueError:
            problems.append(Problem("date_to", "Bitte geben Sie das Enddatum als TT.MM.JJJJ an.",
                                    f"{form.date_to!r} is not a date (YYYY-MM-DD)"))
        else:
            if desired_from and desired_to < desired_from:
                problems.append(Problem("date_to", "Das Enddatum liegt vor dem gewünschten "
                                        "Datum.", "the window ends before it starts"))
    desired_time = form.time.strip() or None
    if desired_time and not _TIME.match(desired_time):
        problems.append(Problem("time", "Bitte geben Sie die Uhrzeit als HH:MM an.",
                                f"{desired_time!r} is not a time (HH:MM)"))

    channels = tuple(dict.fromkeys(c for c in form.channels if c))
    unknown = [c for c in channels if c not in catalog.accounts]
    if not channels:
        problems.append(Problem("channels", "Bitte wählen Sie mindestens einen Kanal.",
                                "choose at least one channel"))
    elif unknown:
        problems.append(Problem("channels", "Diesen Kanal gibt es nicht: "
                                + ", ".join(unknown) + ".",
                                f"unknown channel(s) {', '.join(unknown)}; known: "
                                f"{', '.join(sorted(catalog.accounts))}"))

    links = [line.strip() for line in (form.links or "").splitlines() if line.strip()]
    if len(links) > MAX_LINKS:
        problems.append(Problem("links", f"Bitte nennen Sie höchstens {MAX_LINKS} Links.",
                                f"at most {MAX_LINKS} links"))
    for link in links:
        if not re.match(r"^https://[^\s/]+\.[^\s]+$", link):
            problems.append(Problem("links", f"„{link[:80]}“ ist kein sicherer Link: bitte "
                                    "vollständig mit https:// angeben.",
                                    f"{link!r} is not an https:// link"))
    hashtags = _split_hashtags(form.hashtags)
    for tag in hashtags + [t.lstrip("#") for t in hashtags_in(text)]:
        if check_hashtag(f"#{tag}") is not None:
            problems.append(Problem("hashtags" if tag in hashtags else "text",
                                    f"Hashtag #{tag}: bitte ohne Leer- und Sonderzeichen und "
                                    "mit großen Wortanfängen schreiben (z. B. "
                                    "#SportInDarmstadt), damit Screenreader ihn vorlesen "
                                    "können.", check_hashtag(f"#{tag}").message))  # type: ignore[union-attr]

    images = _check_images(form.images, problems, existing=existing_images)
    has_image = bool(images) or existing_images > 0
    if text and channels and not unknown:
        composed = _compose(text + "".join(f"\n{x}" for x in links[1:]),
                            links[0] if links else None, hashtags)
        for channel in channels:
            account = catalog.accounts[channel]
            label = account.display_name
            if requires_image(account) and not has_image:
                problems.append(Problem("channels", f"Für {label} ({account.type.value}) ist "
                                        "mindestens ein Bild nötig.",
                                        f"{channel} needs an image"))
            for measurement in measure_text(composed, account, has_image=has_image):
                if not measurement.ok:
                    problems.append(Problem(
                        "text", f"Der Text ist für {label} ({account.type.value}) zu lang: "
                        f"{measurement.length} von höchstens {measurement.limit} "
                        f"{measurement.unit_de} (mit Links und Hashtags). Bitte kürzen Sie "
                        f"ihn um {measurement.excess_de} oder wählen Sie diesen "
                        "Kanal ab.",
                        f"too long for {channel}: {measurement.describe()}"))
    if problems or desired_from is None:
        raise InvalidRequest(problems)
    return RequestDraft(title=title, topic=topic, desired_from=desired_from,
                        desired_to=desired_to, desired_time=desired_time, channels=channels,
                        text=text, hashtags=tuple(hashtags), links=tuple(links), notes=notes,
                        contact_name=contact_name, contact_email=contact_email,
                        images=tuple(images))


def _check_images(uploads: Sequence[ImageUpload], problems: list[Problem], *,
                  existing: int) -> list[CheckedImage]:
    checked: list[CheckedImage] = []
    given = [u for u in uploads if u.data or u.alt.strip()]
    if len(given) + existing > MAX_IMAGES:
        problems.append(Problem("bild_1", f"Bitte höchstens {MAX_IMAGES} Bilder anhängen.",
                                f"at most {MAX_IMAGES} images"))
    for upload in given:
        n, name = upload.position, _safe_filename(upload.filename)
        label = f"Bild {n}" + (f" („{name}“)" if name else "")
        alt = _clean(upload.alt, 1000)
        if not upload.data:
            problems.append(Problem(upload.field, f"Zu Alternativtext {n} fehlt das Bild: "
                                    "bitte wählen Sie die Datei aus.",
                                    f"image {n}: alt text without a file"))
            continue
        if len(upload.data) > MAX_IMAGE_BYTES:
            problems.append(Problem(upload.field, f"{label} ist {_mb(len(upload.data))} MB "
                                    f"groß; erlaubt sind höchstens {_mb(MAX_IMAGE_BYTES)} MB. "
                                    "Bitte verkleinern Sie es und wählen Sie es erneut aus.",
                                    f"image {n} is {len(upload.data)} bytes; at most "
                                    f"{MAX_IMAGE_BYTES}"))
            continue
        kind = sniff_image_type(upload.data)
        if kind not in ALLOWED_IMAGE_TYPES:
            problems.append(Problem(upload.field, f"{label} ist kein JPEG-, PNG- oder "
                                    "WebP-Bild. Bitte wählen Sie ein Foto oder eine Grafik in "
                                    "einem dieser Formate.",
                                    f"image {n} is not JPEG, PNG or WebP (by its content)"))
            continue
        if len(alt) < 5:
            problems.append(Problem(f"alt_{n}", f"Bitte beschreiben Sie {label} in einem "
                                    "Alternativtext (mindestens 5 Zeichen) – für Menschen, "
                                    "die es nicht sehen können.",
                                    f"image {n} needs an alt text (at least 5 characters)"))
            continue
        checked.append(CheckedImage(n, name or f"bild-{n}", upload.data, alt[:1000], kind))
    return checked


def _safe_filename(name: str) -> str:
    base = Path((name or "").replace("\\", "/")).name
    base = unicodedata.normalize("NFC", base)
    return re.sub(r"[^\w.\- ]", "_", base)[:120]


# --- storing -----------------------------------------------------------------------------


def _write_images(data_dir: Path, request_id: int, images: Sequence[CheckedImage],
                  written: list[Path]) -> list[tuple[CheckedImage, str]]:
    """Write each image (temp file, then rename); record every path in ``written``."""
    folder = data_dir / UPLOADS_DIR / str(request_id)
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for image in images:
        relative = Path(UPLOADS_DIR) / str(request_id) / (
            f"{image.position}-{image.sha256[:12]}{ALLOWED_IMAGE_TYPES[image.content_type]}")
        target = data_dir / relative
        temporary = target.with_suffix(target.suffix + ".part")
        written.append(temporary)
        temporary.write_bytes(image.data)
        os.replace(temporary, target)
        written.append(target)
        stored.append((image, relative.as_posix()))
    return stored


def _remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
    for folder in {p.parent for p in paths}:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            pass


def _draft_fields(draft: RequestDraft) -> dict[str, Any]:
    return dict(title=draft.title, topic=draft.topic, desired_from=draft.desired_from,
                desired_to=draft.desired_to, desired_time=draft.desired_time,
                channels=list(draft.channels), text=draft.text, hashtags=list(draft.hashtags),
                links=list(draft.links), notes=draft.notes, contact_name=draft.contact_name,
                contact_email=draft.contact_email)


def submit_request(engine: Engine, data_dir: Path, requester: Requester, draft: RequestDraft,
                   *, invite_nonce: str, actor: str = "") -> int:
    """Store a checked request with its images in one transaction; its id.

    The image files are written inside the transaction and removed again when it does
    not commit: a request is stored whole or not at all.
    """
    written: list[Path] = []
    try:
        with store.session_scope(engine) as session:
            row = crud.create_request(session, requester_kind=requester.kind.value,
                                      requester_id=requester.id, invite_nonce=invite_nonce,
                                      **_draft_fields(draft))
            assert row.id is not None
            for image, relative in _write_images(data_dir, row.id, draft.images, written):
                crud.add_request_image(session, request_id=row.id, position=image.position,
                                       filename=image.filename, stored_path=relative,
                                       content_type=image.content_type,
                                       size=len(image.data), sha256=image.sha256,
                                       alt=image.alt)
            request_id = row.id
            store.record_audit(  # commits the request, its images and this event together
                session, campaign_id=crud.audit_key(request_id),
                actor=actor or f"{requester.kind.value}:{requester.id}",
                action="request.submitted", content_hash=_request_hash(row, draft.images),
                detail={"requester": requester.ref, "title": draft.title,
                        "channels": list(draft.channels), "images": len(draft.images),
                        "invite_nonce": invite_nonce, "via": "form"})
    except BaseException:
        _remove(written)
        raise
    return request_id


def resubmit_request(engine: Engine, data_dir: Path, request_id: int, draft: RequestDraft,
                     *, answer: str, actor: str = "") -> CampaignRequest:
    """The requester's answer to a question asked back: the request, changed, goes back to
    the office (state ``resubmitted``, next revision); new images are added."""
    answer = _clean(answer, 4000)[:4000]
    if not answer:
        raise InvalidRequest([Problem("answer", "Bitte beantworten Sie die Rückfrage.",
                                      "the answer is missing")])
    written: list[Path] = []
    try:
        with store.session_scope(engine) as session:
            row = crud.get_request(session, request_id=request_id, for_update=True)
            if row is None:
                raise RequestNotFound(f"no request {request_id}")
            if row.status != RequestStatus.ASKED_BACK.value:
                raise WrongState(f"request {request_id} is {row.status}; only a request that "
                                 "was asked back can be answered")
            existing = crud.request_images(session, request_id=request_id)
            offset = max((i.position for i in existing), default=0)
            renumbered = [CheckedImage(offset + k + 1, i.filename, i.data, i.alt,
                                       i.content_type) for k, i in enumerate(draft.images)]
            for key, value in _draft_fields(draft).items():
                setattr(row, key, value)
            row.answer, row.status = answer, RequestStatus.RESUBMITTED.value
            row.revision += 1
            row.flow_run_id = None
            row.updated_at = utcnow()
            session.add(row)
            for image, relative in _write_images(data_dir, request_id, renumbered, written):
                crud.add_request_image(session, request_id=request_id,
                                       position=image.position, filename=image.filename,
                                       stored_path=relative, content_type=image.content_type,
                                       size=len(image.data), sha256=image.sha256,
                                       alt=image.alt)
            session.flush()
            store.record_audit(session, campaign_id=crud.audit_key(request_id),
                               actor=actor or f"{row.requester_kind}:{row.requester_id}",
                               action="request.resubmitted",
                               content_hash=_request_hash(row, renumbered),
                               detail={"revision": row.revision, "answer": answer,
                                       "images_added": len(renumbered)})
    except BaseException:
        _remove(written)
        raise
    return row


def _request_hash(row: CampaignRequest, images: Sequence[Any]) -> str:
    parts = [row.title, row.topic, str(row.desired_from), str(row.desired_to),
             str(row.desired_time), ",".join(row.channels), row.text, ",".join(row.hashtags),
             ",".join(row.links), *(getattr(i, "sha256", "") for i in images)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def load_request(engine: Engine, request_id: int) -> tuple[CampaignRequest, list[RequestImage]]:
    with store.session_scope(engine) as session:
        row = crud.get_request(session, request_id=request_id)
        if row is None:
            raise RequestNotFound(f"no request {request_id}; `newsroom requests` lists them")
        return row, crud.request_images(session, request_id=request_id)


# --- decisions ---------------------------------------------------------------------------


def _decidable(session: Any, request_id: int, step: str) -> CampaignRequest:
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
        row = _decidable(session, request_id, step)
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
    from newsroom.catalog.roles import NotPermitted, Permission, authorize

    try:
        return f"admin:{authorize(catalog.index, by, Permission.DECIDE_REQUEST).id}"
    except NotPermitted as exc:
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
    question = _clean(question, 4000)
    if not question:
        raise InvalidRequest([Problem("question", "Bitte formulieren Sie die Rückfrage.",
                                      "the question is empty; say what you need to know")])
    return _decide(engine, request_id, step="asked back", status=RequestStatus.ASKED_BACK,
                   by=by, via=via, detail={"question": question}, question=question,
                   answer=None)


def decline_request(engine: Engine, request_id: int, *, reason: str, by: str,
                    via: str = "cli") -> CampaignRequest:
    """The office declines, with a reason the requester is told."""
    reason = _clean(reason, 4000)
    if not reason:
        raise InvalidRequest([Problem("reason", "Bitte nennen Sie den Grund der Absage.",
                                      "the reason is empty; the requester is told why")])
    return _decide(engine, request_id, step="declined", status=RequestStatus.DECLINED, by=by,
                   via=via, detail={"reason": reason}, reason=reason)


@dataclass(frozen=True)
class AcceptedRequest:
    request: CampaignRequest
    campaign_id: str
    path: Path
    publish_at: datetime
    approvers: tuple[dict[str, str], ...]


def _slug(text: str) -> str:
    ascii_text = (unicodedata.normalize("NFKD", text.replace("ß", "ss"))
                  .encode("ascii", "ignore").decode())
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:40].strip("-")


def _approver_ref(catalog: Catalog, requester: Requester, approver: str | None
                  ) -> dict[str, str]:
    if approver:
        if approver in catalog.index.portfolios:
            return {"portfolio": approver}
        if approver in catalog.index.people:
            return {"person": approver}
        raise InvalidRequest([Problem("approver", "Diese Person bzw. dieses Dezernat gibt es "
                                      "nicht.", f"approver {approver!r} is neither a portfolio "
                                      "nor a person in registry/people.yaml; known portfolios: "
                                      f"{', '.join(sorted(catalog.index.portfolios))}")])
    if requester.approver:
        return requester.approver
    raise InvalidRequest([Problem("approver", "Bitte wählen Sie, wer freigibt.",
                                  f"{requester.name} is an Amt that registry/people.yaml links "
                                  "to no Dezernat: name the approver (a portfolio or a person "
                                  "id), e.g. --approver sport")])


class _Literal(str):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", str(value), style="|"))


def _inline_template(text: str) -> str:
    """The requester's text as a Jinja template that renders to exactly that text."""
    if not any(mark in text for mark in ("{{", "{%", "{#")):
        return text
    # Every "{" becomes an expression printing "{": nothing the requester wrote can open a
    # tag (a raw block could be closed from inside the text).
    return text.replace("{", "{{ '{' }}")


def campaign_draft(request: CampaignRequest, images: Sequence[tuple[RequestImage, str]],
                   catalog: Catalog, *, campaign_id: str, publish_at: datetime,
                   approver: dict[str, str], deadline_before: str, kind: str,
                   accepted_by: str) -> str:
    """The YAML text of the campaign file an accepted request becomes.

    ``images`` pairs each stored image with its file name under the catalog's images/.
    """
    requester = requester_for(catalog, request.requester_kind, request.requester_id)
    body = _inline_template(request.text.strip())
    # Links are data the template prints, never template text: a link may hold "{{" or
    # "{%" (a URL's path may); as a variable's value it is printed as it is.
    if request.links[1:]:
        body += "\n{% for extra in " + EXTRA_LINKS + " %}\n{{ extra }}\n{% endfor %}"
    if request.links:
        body += "\n{{ link }}"
    if request.hashtags:
        body += "\n{{ hashtags }}"
    content: dict[str, Any] = {"text": _Literal(body + "\n")}
    if request.links:
        content["link"] = request.links[0]
    if request.hashtags:
        content["hashtags"] = list(request.hashtags)
    if images:
        content["images"] = [{"file": name, "alt": image.alt} for image, name in images]
    if request.links[1:]:
        content["variables"] = {EXTRA_LINKS: list(request.links[1:])}
    document = {
        "id": campaign_id,
        "title": request.title,
        "topic": request.topic,
        "kind": kind,
        "requested_by": requester.ref,
        "contact": request.contact_email,
        "approval": {"approvers": [approver], "mode": "one",
                     "deadline_before": deadline_before, "on_timeout": "cancel"},
        "slots": [{"at": publish_at.astimezone(BERLIN).strftime("%Y-%m-%d %H:%M:%S"),
                   "channels": list(request.channels)}],
        "content": content,
    }
    window = (f"{request.desired_from.isoformat()}"
              + (f" to {request.desired_to.isoformat()}" if request.desired_to else "")
              + (f", {request.desired_time}" if request.desired_time else ""))
    contact = " ".join(f"{request.contact_name} <{request.contact_email}>".split())
    header = (f"# From request #{request.id} of {requester.name} (revision {request.revision}),"
              f" accepted by {' '.join(accepted_by.split())}.\n"
              f"# Desired: {window}. Contact: {contact}.\n"
              "# The requesting Dezernat approves (`approval`); edit text, time or deadline "
              "here if needed.\n")
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                              width=100)


def _publish_at(request: CampaignRequest, publish_at: datetime | None) -> datetime:
    if publish_at is not None:
        if publish_at.tzinfo is None:
            publish_at = publish_at.replace(tzinfo=BERLIN)
        return publish_at
    hour = time.fromisoformat(request.desired_time) if request.desired_time else DEFAULT_TIME
    return datetime.combine(request.desired_from, hour, tzinfo=BERLIN)


def parse_publish_at(value: str | None) -> datetime | None:
    """``YYYY-MM-DD HH:MM[:SS]`` in Darmstadt time (None when empty); else InvalidRequest."""
    from newsroom.timeutil import localize, parse_local_datetime

    if not value or not value.strip():
        return None
    try:
        return localize(parse_local_datetime(value))
    except ValueError as exc:
        raise InvalidRequest([Problem("publish_at", "Ungültiger Zeitpunkt.",
                                      f"{exc}; write YYYY-MM-DD HH:MM in Darmstadt time")]
                             ) from None


def _deadline_before(publish_at: datetime, now: datetime) -> str:
    """48 h before the post, or half the time left when that is less (never in the past)."""
    left = publish_at - now
    if left >= 2 * DEFAULT_DEADLINE:
        return "48h"
    return f"{max(int(left.total_seconds() // 2), 1)}s"


def accept_request(engine: Engine, catalog: Catalog, data_dir: Path, request_id: int, *,
                   by: str,
                   via: str = "cli", campaign_id: str | None = None,
                   publish_at: datetime | None = None, approver: str | None = None,
                   kind: str = "service_information",
                   now: datetime | None = None) -> AcceptedRequest:
    """Accept: write the campaign draft (and its images) into the catalog, validated.

    The file appears under its final name only when it validates; the request is marked
    accepted in the same step. If anything fails, the files written are removed again.
    """
    now = now or datetime.now(UTC)
    request, images = load_request(engine, request_id)
    with store.session_scope(engine) as session:
        _decidable(session, request_id, "accepted")
    requester = requester_for(catalog, request.requester_kind, request.requester_id)
    approver_ref = _approver_ref(catalog, requester, approver)
    when = _publish_at(request, publish_at)
    if when <= now + timedelta(seconds=30):
        raise InvalidRequest([Problem("publish_at", "Der Zeitpunkt liegt in der "
                                      "Vergangenheit.", f"the publication time "
                                      f"{format_local(when)} has passed (or is too close); "
                                      "give a later one, e.g. --at '2027-06-04 09:00'")])
    campaign_id = campaign_id or f"anfrage-{request_id}-{_slug(request.title) or 'beitrag'}"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", campaign_id):
        raise InvalidRequest([Problem("campaign_id", "Ungültige Kampagnen-Kennung.",
                                      f"{campaign_id!r} is not a campaign id: lower-case "
                                      "letters, digits and hyphens")])
    root = catalog.root
    target = root / f"{campaign_id}.yaml"
    if target.exists() or campaign_id in catalog.campaigns:
        raise InvalidRequest([Problem("campaign_id", "Diese Kampagne gibt es schon.",
                                      f"a campaign {campaign_id!r} exists already; give "
                                      "another id with --campaign-id")])
    written: list[Path] = []
    try:
        pairs = []
        image_dir = root / IMAGES_DIR / CATALOG_IMAGES_SUBDIR
        if images:
            image_dir.mkdir(parents=True, exist_ok=True)
        for image in images:
            name = f"{campaign_id}-{image.position}{Path(image.stored_path).suffix}"
            destination = image_dir / name
            written.append(destination)
            shutil.copyfile(data_dir / image.stored_path, destination)
            pairs.append((image, f"{CATALOG_IMAGES_SUBDIR}/{name}"))
        text = campaign_draft(request, pairs, catalog, campaign_id=campaign_id,
                              publish_at=when, approver=approver_ref,
                              deadline_before=_deadline_before(when, now), kind=kind,
                              accepted_by=by)
        drafts = root / DRAFTS_DIR
        drafts.mkdir(exist_ok=True)
        draft_path = drafts / f"{campaign_id}.yaml"
        written.append(draft_path)
        draft_path.write_text(text, encoding="utf-8")
        report = load_catalog(root, only=[draft_path],
                              today=now.astimezone(BERLIN).date())
        errors = [i for i in report.issues if i.is_error]
        if errors:
            raise DraftInvalid(f"the campaign draft of request {request_id} does not "
                               "validate", errors)
        os.replace(draft_path, target)
        written.append(target)
        with store.session_scope(engine) as session:
            row = _decidable(session, request_id, "accepted")
            now_db = utcnow()
            row.status, row.decided_by, row.decided_at = (RequestStatus.ACCEPTED.value, by,
                                                          now_db)
            row.campaign_id, row.campaign_file = campaign_id, target.name
            row.updated_at = now_db
            session.add(row)
            session.flush()
            detail = {"revision": row.revision, "via": via, "campaign_id": campaign_id,
                      "file": target.name, "publish_at": when.isoformat(),
                      "approvers": [approver_ref]}
            store.record_audit(session, campaign_id=campaign_id, actor=by,
                               action="request.became_campaign",
                               detail={"request_id": request_id, **detail})
            store.record_audit(session, campaign_id=crud.audit_key(request_id), actor=by,
                               action="request.accepted", detail=detail)
    except BaseException:
        _remove(written)
        try:
            (root / DRAFTS_DIR).rmdir()
        except OSError:
            pass
        raise
    try:
        (root / DRAFTS_DIR).rmdir()
    except OSError:
        pass
    return AcceptedRequest(row, campaign_id, target, when, (approver_ref,))


# --- telling people ----------------------------------------------------------------------


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
    from newsroom import request_messages as messages

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
