"""The German e-mails about requests to the communications office.

Only rendering, no I/O (:func:`newsroom.requests.notify_step` sends them). Each message has
a plain-text and an HTML body; every link in the HTML is also written out as text (apprise
derives the text part from the HTML).
"""

from __future__ import annotations

from collections.abc import Sequence

from newsroom.approval_messages import Message
from newsroom.catalog.catalog import Catalog
from newsroom.html_templates import render_html
from newsroom.rendering.templates import german_date
from newsroom.store.models import CampaignRequest, RequestImage

__all__ = ["accepted_message", "asked_message", "declined_message", "office_message",
           "received_message"]

_SIGNATURE = "Amt für Kommunikation · Wissenschaftsstadt Darmstadt"


def _when(request: CampaignRequest) -> str:
    text = german_date(request.desired_from, "EEEE, d. MMMM yyyy")
    if request.desired_to:
        text += f" bis {german_date(request.desired_to, 'EEEE, d. MMMM yyyy')}"
    if request.desired_time:
        text += f", gegen {request.desired_time} Uhr"
    return text


def _facts(request: CampaignRequest, requester_name: str,
           images: Sequence[RequestImage] = ()) -> list[tuple[str, str]]:
    facts = [("Anfrage", f"#{request.id}"), ("Von", requester_name),
             ("Ansprechperson", f"{request.contact_name} <{request.contact_email}>"),
             ("Titel", request.title), ("Thema", request.topic),
             ("Gewünscht", _when(request)), ("Kanäle", ", ".join(request.channels))]
    if request.hashtags:
        facts.append(("Hashtags", " ".join(f"#{t}" for t in request.hashtags)))
    for link in request.links:
        facts.append(("Link", link))
    for image in images:
        facts.append((f"Bild {image.position}", f"{image.filename} – Alternativtext: "
                      f"{image.alt}"))
    if request.notes:
        facts.append(("Hinweise", request.notes))
    if request.answer:
        facts.append(("Rückfrage", request.question or ""))
        facts.append(("Antwort", request.answer))
    return facts


def _render(subject: str, paragraphs: Sequence[str], facts: Sequence[tuple[str, str]] = (),
            text_block: str | None = None, link: tuple[str, str] | None = None) -> Message:
    lines = ["Guten Tag,", ""]
    for paragraph in paragraphs:
        lines += [paragraph, ""]
    if link:
        label, url = link
        lines += [f"{label}:", url, ""]
    if facts:
        width = max(len(k) for k, _ in facts)
        lines += [f"{k + ':':<{width + 1}} {v}" for k, v in facts] + [""]
    if text_block is not None:
        lines += ["Textentwurf:", "---", text_block, "---", ""]
    lines += ["Mit freundlichen Grüßen", _SIGNATURE]
    html = render_html(
        "request_mail.html", paragraphs=paragraphs, link=link, facts=facts,
        text_lines=None if text_block is None else text_block.splitlines(),
        signature=_SIGNATURE)
    return Message(subject, "\n".join(lines), html)


def office_message(request: CampaignRequest, images: Sequence[RequestImage], requester,
                   base_url: str) -> Message:
    """To the office: a new (or answered) request and how to decide on it."""
    again = request.revision > 1
    subject = (f"{'Antwort auf Rückfrage' if again else 'Neue Anfrage'} #{request.id} von "
               f"{requester.name}: {request.title}")
    how = (f"Entscheiden Sie in der Prefect-Oberfläche (Lauf „anfrage {request.id}“, "
           "Schaltfläche „Resume“: annehmen, nachfragen oder ablehnen) oder auf der "
           f"Kommandozeile: newsroom requests accept {request.id} | newsroom requests ask "
           f"{request.id} --question „…“ | newsroom requests decline {request.id} --reason „…“.")
    intro = (f"{requester.name} hat die Rückfrage zur Anfrage #{request.id} beantwortet."
             if again else f"{requester.name} bittet um Beiträge zu „{request.title}“.")
    return _render(subject, [intro, how], _facts(request, requester.name, images),
                   request.text)


def received_message(request: CampaignRequest, requester, catalog: Catalog) -> Message:
    return _render(
        f"Ihre Anfrage #{request.id} ist eingegangen: {request.title}",
        [f"vielen Dank: Ihre Anfrage „{request.title}“ ist beim Amt für Kommunikation "
         "eingegangen. Wir melden uns, sobald wir sie geprüft haben – mit einer Zusage, einer "
         "Rückfrage oder einer Begründung, falls wir sie nicht umsetzen können."],
        _facts(request, requester.name), request.text)


def asked_message(request: CampaignRequest, requester, link: str) -> Message:
    return _render(
        f"Rückfrage zu Ihrer Anfrage #{request.id}: {request.title}",
        [f"zu Ihrer Anfrage „{request.title}“ haben wir eine Rückfrage:",
         request.question or "",
         "Bitte antworten Sie über den folgenden Link. Dort können Sie auch Text, Datum, "
         "Kanäle und Bilder anpassen. Der Link gilt 30 Tage."],
        link=("Antworten", link))


def accepted_message(request: CampaignRequest, requester, catalog: Catalog) -> Message:
    approver = "die Dezernentin bzw. der Dezernent"
    if request.requester_kind == "portfolio":
        approver = requester.notify_name
    return _render(
        f"Ihre Anfrage #{request.id} wurde angenommen: {request.title}",
        [f"das Amt für Kommunikation hat Ihre Anfrage „{request.title}“ angenommen und als "
         f"Kampagne „{request.campaign_id}“ angelegt.",
         f"Vor der Veröffentlichung gibt {approver} die Beiträge frei; dafür kommt eine "
         "eigene E-Mail mit einem Freigabe-Link."],
        _facts(request, requester.name))


def declined_message(request: CampaignRequest, requester, catalog: Catalog) -> Message:
    return _render(
        f"Ihre Anfrage #{request.id} wird nicht umgesetzt: {request.title}",
        [f"das Amt für Kommunikation kann Ihre Anfrage „{request.title}“ leider nicht "
         "umsetzen. Die Begründung:", request.reason or "",
         "Bei Fragen wenden Sie sich bitte direkt an das Amt für Kommunikation."],
        _facts(request, requester.name))
