"""The request form: what it sends (:class:`RequestForm`, :class:`ImageUpload`) and checking
it (:func:`check_request`) into a :class:`RequestDraft`, with every problem at once —
German for the form, English for the command line."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from newsroom.catalog.catalog import Catalog
from newsroom.channels import measure_text, requires_image
from newsroom.media import sniff_image_type
from newsroom.rendering.hashtags import check_hashtag, hashtags_in
from newsroom.requests.errors import InvalidRequest, Problem
from newsroom.timeutil import BERLIN

__all__ = [
    "ALLOWED_IMAGE_TYPES",
    "CheckedImage",
    "ImageUpload",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_LINKS",
    "MAX_TEXT",
    "RequestDraft",
    "RequestForm",
    "check_request",
    "clean_text",
]

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGES = 3
MAX_TEXT = 5000
MAX_LINKS = 5
ALLOWED_IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


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


def clean_text(value: str, limit: int) -> str:
    """``value`` NFC-normalised, stripped, cut one past ``limit`` (so a caller can tell
    "too long" from "just right")."""
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
        text = " ".join(clean_text(value, limit).split())  # one line: names, titles, addresses
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
    notes = clean_text(form.notes, 2000)[:2000]

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
        alt = clean_text(upload.alt, 1000)
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
