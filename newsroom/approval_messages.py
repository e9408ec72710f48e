"""The German e-mails of the approval gate: request, reminder, deadline notice.

Only rendering, no I/O (:mod:`newsroom.approval` sends them through a ``Notifier``).
Every message has a plain-text body and an HTML body. The request and the reminder open
with the person's salutation from the registry (``Sehr geehrte Frau Bürgermeisterin
Akdeniz,``), name the channels as people know them, and lead with a button to the
person's short link; their HTML is ``newsroom/templates/approval_mail.html``. The e-mail's
text part is derived from the HTML by apprise, so every link in the HTML is also written
out as visible text: a mail program that shows only text still shows the full link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from newsroom.html_templates import render_html
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

_MAIL_TEMPLATE = "approval_mail.html"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class PostPreview:
    channel_name: str  # the channel as people know it (approval.channel_label)
    post: RenderedPost


@dataclass(frozen=True)
class ApprovalMessageData:
    """Everything one approval e-mail says."""

    title: str
    occurrence_date: date
    requested_by: str
    salutation: str  # the first line, comma included (Person.salutation_line)
    on_behalf_of: str | None  # the absent person a deputy stands in for
    deadline: datetime
    link: str
    posts: tuple[PostPreview, ...]
    others: tuple[str, ...]  # the other people asked (display names)
    rule: str  # German: how many must approve
    joint: bool  # the post names its signatories
    changed: bool = False  # a new version after an earlier one was decided on
    # An approval chain: the reader's step ("Stufe 2 von 3: Sportdezernat") and every
    # step in one line each (what is done, who decided when, what comes next).
    step: str | None = None
    chain: tuple[str, ...] = ()


def local_when(moment: datetime) -> str:
    """``Mittwoch, 27. Januar 2027, 09:00 Uhr (MEZ)`` (Europe/Berlin; seconds when the
    time has them): :func:`newsroom.timeutil.format_local_german`."""
    return format_local_german(moment)


_SIGNATORY_NOTE = (
    "Dies ist eine gemeinsame Erklärung. Der Text, den Sie prüfen, nennt alle Angefragten "
    "als Unterzeichnende. Veröffentlicht werden nur die Namen derer, die bis zur Frist "
    "freigegeben haben."
)
_CHANGED_HEAD = "Achtung: Dies ist eine geänderte Fassung."
_CHANGED_NOTE = "Frühere Freigaben gelten nicht mehr; die Seite zeigt, was sich geändert hat."
_BUTTON = "Prüfen und entscheiden"
_CHAIN_HEAD = "Freigabe in Stufen"
_FOOTER = "Der Link ist persönlich und gilt bis zur Frist. Bitte nicht weiterleiten."
_SENDER = "Newsroom – Amt für Kommunikation, Wissenschaftsstadt Darmstadt"


def _post_text_block(preview: PostPreview) -> str:
    post = preview.post
    lines = [f"--- {preview.channel_name} · {local_when(post.publish_at)} ---", post.text]
    for item in post.media:
        lines.append(f"[Bild: {item.alt}]")
    return "\n".join(lines)


def _facts(data: ApprovalMessageData) -> list[tuple[str, str]]:
    facts = [
        ("Kampagne", data.title),
        ("Datum", german_date(data.occurrence_date)),
        ("Angefragt von", data.requested_by),
        ("Kanäle", join_german([p.channel_name for p in data.posts])),
        ("Freigabe bis", local_when(data.deadline)),
        ("Regel", data.rule),
    ]
    if data.step:
        facts.insert(3, ("Ihre Stufe", data.step))
    if data.others:
        facts.append(("Ebenfalls angefragt", join_german(list(data.others))))
    return facts


def _deputy_line(data: ApprovalMessageData) -> str | None:
    if not data.on_behalf_of:
        return None
    return f"Sie werden in Vertretung für {data.on_behalf_of} angefragt."


def _text(data: ApprovalMessageData, lead: str) -> str:
    text = [data.salutation, "", lead, ""]
    if deputy := _deputy_line(data):
        text += [deputy, ""]
    text += ["Zum Freigeben, Ablehnen oder Anfordern von Änderungen öffnen Sie bitte "
             "diesen Link:", data.link, ""]
    text += [f"{label}: {value}" for label, value in _facts(data)]
    if data.chain:
        text += ["", f"{_CHAIN_HEAD}:", *data.chain]
    if data.changed:
        text += ["", f"{_CHANGED_HEAD} {_CHANGED_NOTE}"]
    if data.joint:
        text += ["", _SIGNATORY_NOTE]
    text += ["", "Die Beiträge im Wortlaut:", ""]
    text += [_post_text_block(p) + "\n" for p in data.posts]
    text += [_FOOTER, "", _SENDER]
    return "\n".join(text)


def _html(data: ApprovalMessageData, subject: str, lead: str) -> str:
    posts = [{"channel": p.channel_name, "when": local_when(p.post.publish_at),
              "lines": p.post.text.split("\n"), "alts": [item.alt for item in p.post.media]}
             for p in data.posts]
    return render_html(
        _MAIL_TEMPLATE, subject=subject, salutation=data.salutation, lead=lead,
        deputy=_deputy_line(data), changed=data.changed, changed_head=_CHANGED_HEAD,
        changed_note=_CHANGED_NOTE,
        link=data.link, button=_BUTTON, facts=_facts(data), joint=data.joint,
        chain_head=_CHAIN_HEAD, chain=data.chain,
        signatory_note=_SIGNATORY_NOTE, posts=posts, footer=_FOOTER, sender=_SENDER)


def _message(data: ApprovalMessageData, subject: str, lead: str) -> Message:
    return Message(subject, _text(data, lead), _html(data, subject, lead))


def _step_tag(data: ApprovalMessageData) -> str:
    """`` (Stufe 2 von 3)`` for a step of a chain, else nothing."""
    return f" ({data.step.split(':', 1)[0]})" if data.step else ""


def _subject_tail(data: ApprovalMessageData) -> str:
    return f"{data.title} – {german_date(data.occurrence_date)}"


def approval_request_message(data: ApprovalMessageData) -> Message:
    lead = ("bitte prüfen Sie die folgenden Beiträge und geben Sie sie frei, lehnen Sie sie "
            "ab oder fordern Sie Änderungen an.")
    prefix = "Geänderte Fassung – Freigabe erbeten" if data.changed else "Freigabe erbeten"
    return _message(data, f"{prefix}{_step_tag(data)}: {_subject_tail(data)}", lead)


def reminder_message(data: ApprovalMessageData) -> Message:
    lead = (f"Erinnerung: Ihre Freigabe steht noch aus. Die Frist endet am "
            f"{local_when(data.deadline)}.")
    return _message(data, f"Erinnerung – Freigabe erbeten{_step_tag(data)}: "
                          f"{_subject_tail(data)}", lead)


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
    html = render_html("deadline_mail.html", what=what, facts=facts,
                            sender="Newsroom – Wissenschaftsstadt Darmstadt")
    head = "Freigabe-Frist abgelaufen" if outcome != "approved" else "Freigabe-Frist erreicht"
    return Message(f"{head}: {title} – {german_date(occurrence_date)}", text, html)
