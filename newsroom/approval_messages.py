"""The German e-mails of the approval gate: request, reminder, deadline notice.

Only rendering, no I/O (:mod:`newsroom.approval` sends them through a ``Notifier``).
Every message has a plain-text body and an HTML body. The e-mail's text part is derived
from the HTML by apprise, so every link in the HTML is also written out as visible text:
a mail program that shows only text still shows the full link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from html import escape

from newsroom.posts import RenderedPost
from newsroom.rendering.templates import german_date, join_german
from newsroom.timeutil import format_local_german

__all__ = [
    "ApprovalMessageData",
    "Message",
    "approval_request_message",
    "deadline_message",
    "local_when",
    "reminder_message",
]


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class PostPreview:
    channel_name: str
    post: RenderedPost


@dataclass(frozen=True)
class ApprovalMessageData:
    """Everything one approval e-mail says."""

    title: str
    occurrence_date: date
    requested_by: str
    person_name: str  # who gets the message
    on_behalf_of: str | None  # the absent person a deputy stands in for
    deadline: datetime
    link: str
    posts: tuple[PostPreview, ...]
    others: tuple[str, ...]  # the other people asked (display names)
    rule: str  # German: how many must approve
    joint: bool  # the post names its signatories
    changed: bool = False  # a new version after an earlier one was decided on


def local_when(moment: datetime) -> str:
    """``Mittwoch, 27. Januar 2027, 09:00 Uhr (MEZ)`` (Europe/Berlin; seconds when the
    time has them): :func:`newsroom.timeutil.format_local_german`."""
    return format_local_german(moment)


_SIGNATORY_NOTE = (
    "Dies ist eine gemeinsame Erklärung. Der Text, den Sie prüfen, nennt alle Angefragten "
    "als Unterzeichnende. Veröffentlicht werden nur die Namen derer, die bis zur Frist "
    "freigegeben haben."
)


def _post_text_block(preview: PostPreview) -> str:
    post = preview.post
    lines = [f"--- {preview.channel_name} · {local_when(post.publish_at)} ---", post.text]
    for item in post.media:
        lines.append(f"[Bild: {item.alt}]")
    return "\n".join(lines)


def _post_html_block(preview: PostPreview) -> str:
    post = preview.post
    text = escape(post.text).replace("\n", "<br>")
    media = "".join(f"<p><em>Bild – Alternativtext: {escape(item.alt)}</em></p>"
                    for item in post.media)
    return (f'<div style="border:1px solid #999;padding:8px;margin:8px 0">'
            f"<p><strong>{escape(preview.channel_name)}</strong> · "
            f"{escape(local_when(post.publish_at))}</p><p>{text}</p>{media}</div>")


def _link_html(link: str) -> str:
    # The link text is the URL itself, so the text part derived from the HTML keeps it.
    return f'<p><a href="{escape(link)}">{escape(link)}</a></p>'


def _intro(data: ApprovalMessageData) -> str:
    who = data.person_name
    if data.on_behalf_of:
        who += f" (in Vertretung für {data.on_behalf_of})"
    return f"Guten Tag {who},"


def _body(data: ApprovalMessageData, lead: str) -> tuple[str, str]:
    channels = join_german([p.channel_name for p in data.posts])
    facts = [
        ("Kampagne", data.title),
        ("Datum", german_date(data.occurrence_date)),
        ("Angefragt von", data.requested_by),
        ("Kanäle", channels),
        ("Freigabe bis", local_when(data.deadline)),
        ("Regel", data.rule),
    ]
    if data.others:
        facts.append(("Ebenfalls angefragt", join_german(list(data.others))))
    text = [_intro(data), "", lead, ""]
    text += [f"{label}: {value}" for label, value in facts]
    if data.changed:
        text += ["", "Achtung: Dies ist eine geänderte Fassung. Frühere Freigaben gelten "
                 "nicht mehr; die Seite zeigt, was sich geändert hat."]
    if data.joint:
        text += ["", _SIGNATORY_NOTE]
    text += ["", "Zum Freigeben, Ablehnen oder Anfordern von Änderungen öffnen Sie bitte "
             "diesen Link:", data.link, "",
             "Die Beiträge im Wortlaut:", ""]
    text += [_post_text_block(p) + "\n" for p in data.posts]
    text += ["Der Link ist persönlich und gilt bis zur Frist. Bitte nicht weiterleiten.",
             "", "Newsroom – Amt für Kommunikation, Wissenschaftsstadt Darmstadt"]

    html = [f"<p>{escape(_intro(data))}</p>", f"<p>{escape(lead)}</p>", "<table>"]
    html += [f"<tr><th align=\"left\">{escape(label)}</th><td>{escape(value)}</td></tr>"
             for label, value in facts]
    html.append("</table>")
    if data.changed:
        html.append("<p><strong>Achtung: Dies ist eine geänderte Fassung.</strong> Frühere "
                    "Freigaben gelten nicht mehr; die Seite zeigt, was sich geändert hat.</p>")
    if data.joint:
        html.append(f"<p>{escape(_SIGNATORY_NOTE)}</p>")
    html.append("<p>Zum Freigeben, Ablehnen oder Anfordern von Änderungen öffnen Sie bitte "
                "diesen Link:</p>")
    html.append(_link_html(data.link))
    html.append("<h3>Die Beiträge im Wortlaut</h3>")
    html += [_post_html_block(p) for p in data.posts]
    html.append("<p>Der Link ist persönlich und gilt bis zur Frist. Bitte nicht "
                "weiterleiten.</p><p>Newsroom – Amt für Kommunikation, Wissenschaftsstadt "
                "Darmstadt</p>")
    return "\n".join(text), "\n".join(html)


def _subject_tail(data: ApprovalMessageData) -> str:
    return f"{data.title} – {german_date(data.occurrence_date)}"


def approval_request_message(data: ApprovalMessageData) -> Message:
    lead = ("bitte prüfen Sie die folgenden Beiträge und geben Sie sie frei, lehnen Sie sie "
            "ab oder fordern Sie Änderungen an.")
    text, html = _body(data, lead)
    prefix = "Geänderte Fassung – Freigabe erbeten" if data.changed else "Freigabe erbeten"
    return Message(f"{prefix}: {_subject_tail(data)}", text, html)


def reminder_message(data: ApprovalMessageData) -> Message:
    lead = (f"Erinnerung: Ihre Freigabe steht noch aus. Die Frist endet am "
            f"{local_when(data.deadline)}.")
    text, html = _body(data, lead)
    return Message(f"Erinnerung – Freigabe erbeten: {_subject_tail(data)}", text, html)


_OUTCOME_TEXT = {
    "escalated": "Die Frist ist abgelaufen, ohne dass genug Freigaben vorliegen. "
                 "Bitte entscheiden Sie (Prefect-Oberfläche oder `newsroom approve`), ob "
                 "veröffentlicht wird.",
    "cancelled": "Die Frist ist abgelaufen, ohne dass genug Freigaben vorliegen. Die "
                 "Veröffentlichung wurde abgesagt.",
    "approved": "Die Frist ist abgelaufen; das Quorum ist erreicht. Es wird mit den Namen "
                "derer veröffentlicht, die freigegeben haben.",
}


def deadline_message(*, title: str, occurrence_date: date, outcome: str, deadline: datetime,
                     approved: list[str], missing: list[str], declined: list[str],
                     rule: str) -> Message:
    """To the Amt für Kommunikation (and ``escalate_to``) when a deadline passed."""
    what = _OUTCOME_TEXT.get(outcome, f"Ergebnis: {outcome}")
    facts = [
        ("Kampagne", title),
        ("Datum", german_date(occurrence_date)),
        ("Frist", local_when(deadline)),
        ("Regel", rule),
        ("Freigegeben", join_german(approved) or "niemand"),
        ("Abgelehnt oder Änderungen erbeten", join_german(declined) or "niemand"),
        ("Keine Antwort", join_german(missing) or "niemand"),
    ]
    text = "\n".join([what, "", *(f"{label}: {value}" for label, value in facts), "",
                      "Newsroom – Wissenschaftsstadt Darmstadt"])
    html = "\n".join([f"<p>{escape(what)}</p>", "<table>",
                      *(f"<tr><th align=\"left\">{escape(label)}</th><td>{escape(value)}</td>"
                        "</tr>" for label, value in facts),
                      "</table>", "<p>Newsroom – Wissenschaftsstadt Darmstadt</p>"])
    head = "Freigabe-Frist abgelaufen" if outcome != "approved" else "Freigabe-Frist erreicht"
    return Message(f"{head}: {title} – {german_date(occurrence_date)}", text, html)
